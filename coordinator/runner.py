"""Running the coordinator: store + model + engine + gRPC server, with graceful shutdown."""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

from coordinator.backbone_host import make_host
from coordinator.config import CoordinatorConfig
from coordinator.engine import Engine
from coordinator.memory import pin_mmap_threshold
from coordinator.server import RunningServer, start_server
from coordinator.store import Store

log = logging.getLogger(__name__)


@dataclass
class Coordinator:
    cfg: CoordinatorConfig
    store: Store
    engine: Engine
    server: RunningServer

    @property
    def port(self) -> int:
        return self.server.port

    def stop(self) -> None:
        self.engine.stop()

    def close(self, grace_s: float = 3.0) -> None:
        self.server.stop(grace_s)
        self.store.close()


def build(cfg: CoordinatorConfig) -> Coordinator:
    """Open (or resume) the store, load the model, start serving."""
    pin_mmap_threshold()
    cfg.state_dir.mkdir(parents=True, exist_ok=True)
    store = Store(cfg.state_dir / "greenfed.sqlite")
    if store.get_meta("run_id") is None:
        store.set_meta("run_id", uuid.uuid4().hex[:12])
    if cfg.metrics_port > 0:  # Prometheus metrics, read from the store at scrape time
        from coordinator.metrics import listen_host, serve_metrics

        serve_metrics(store, listen_host(cfg.listen), cfg.metrics_port)
    host = make_host(cfg)  # plain, fine-tuning a backbone, or LoRA adapters on it
    engine = Engine(cfg, store, host)
    engine.resume()
    server = start_server(cfg, engine)
    return Coordinator(cfg, store, engine, server)


def serve(
    cfg: CoordinatorConfig,
    on_round: Optional[Callable[[Dict[str, Any]], None]] = None,
    on_ready: Optional[Callable[[Coordinator], None]] = None,
    stop: Optional[threading.Event] = None,
) -> int:
    """Run until ``cfg.rounds`` rounds have completed (or stop); returns completed rounds."""
    coord = build(cfg)
    if stop is not None:
        event = stop

        def stop_when_set() -> None:
            event.wait()
            coord.stop()

        threading.Thread(target=stop_when_set, name="stop-watch", daemon=True).start()
    try:
        if on_ready is not None:
            on_ready(coord)
        coord.engine.run(on_round)
        # Let waiting agents hear FINISHED before the server goes away.
        coord.engine.linger(min(cfg.poll_interval_s, 5.0))
        return coord.store.completed_rounds()
    finally:
        coord.close()
