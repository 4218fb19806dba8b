"""Building, running and stopping the coordinator's gRPC server.

Every server option is set on purpose and commented. Non-loopback addresses require mutual
TLS unless the configuration says ``tls.insecure = true``.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import threading
from concurrent import futures
from dataclasses import dataclass
from typing import Any, Callable, Optional

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from coordinator.config import CoordinatorConfig, TlsConfig
from coordinator.engine import Engine
from coordinator.errors import ServerConfigError
from coordinator.servicer import FleetServicer
from greenfed.v1 import fleet_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = "greenfed.v1.Fleet"


def is_loopback(listen: str) -> bool:
    host = listen.rsplit(":", 1)[0].strip("[]")
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_credentials(tls: TlsConfig) -> Optional[grpc.ServerCredentials]:
    if tls.cert is None and tls.key is None and tls.ca is None:
        return None
    if tls.cert is None or tls.key is None or tls.ca is None:
        raise ServerConfigError("tls needs all of cert, key and ca (PEM files)")
    try:
        cert, key, ca = tls.cert.read_bytes(), tls.key.read_bytes(), tls.ca.read_bytes()
    except OSError as e:
        raise ServerConfigError(f"cannot read TLS file: {e}") from e
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=True
    )


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    servicer: FleetServicer
    health: health.HealthServicer

    def stop(self, grace_s: float = 5.0) -> None:
        self.health.enter_graceful_shutdown()
        self.servicer.watchdog.stop()
        self.server.stop(grace_s).wait()


def start_server(cfg: CoordinatorConfig, engine: Engine) -> RunningServer:
    creds = server_credentials(cfg.tls)
    if creds is None and not is_loopback(cfg.listen) and not cfg.tls.insecure:
        raise ServerConfigError(
            f"refusing to listen on {cfg.listen} without TLS: give tls.cert, tls.key and "
            "tls.ca (scripts/make-certs creates them), or set tls.insecure = true "
            "(--insecure) if you accept unauthenticated devices"
        )
    limit = cfg.chunk_bytes + 64 * 1024
    options = [
        # One message carries at most one chunk plus its framing; larger ones are refused
        # by gRPC before they reach Python.
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", limit),
        # Detect dead boards (Wi-Fi drops) within about a minute.
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        # Agents long-poll every few seconds: allow pings between calls.
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_pings_without_data", 0),
        # Bound concurrent streams per connection (slow-loris).
        ("grpc.max_concurrent_streams", 16),
        # Fixed per-stream flow-control window: with BDP probing on, loopback-fast uploads grow
        # their windows until whole updates sit in transport buffers (measured: 16 concurrent
        # 3.4 MiB uploads cost 130 MiB of RSS). A fixed window keeps the bytes on the senders.
        ("grpc.http2.bdp_probe", 0),
        ("grpc.http2.lookahead_bytes", 256 * 1024),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=cfg.max_workers, thread_name_prefix="grpc"),
        options=options,
        # Calls beyond the thread pool are refused with RESOURCE_EXHAUSTED, not queued forever.
        maximum_concurrent_rpcs=cfg.max_workers * 4,
    )
    servicer = FleetServicer(engine, tls=creds is not None)
    pb_grpc.add_FleetServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if creds is None:
        port = server.add_insecure_port(cfg.listen)
    else:
        port = server.add_secure_port(cfg.listen, creds)
    if port == 0:
        raise ServerConfigError(f"could not bind {cfg.listen} (address in use?)")
    server.start()
    health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "coordinator listening on %s (port %d, %s)",
        cfg.listen,
        port,
        "mTLS" if creds else "insecure",
    )
    return RunningServer(server, port, servicer, health_servicer)


def install_signal_handlers(on_stop: Callable[[], None]) -> None:
    """SIGTERM and SIGINT stop the run gracefully (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: Any) -> None:
        log.info("signal %d: stopping", signum)
        on_stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
