"""Prometheus metrics of the coordinator, read from its SQLite store at scrape time.

The collector holds no counters of its own: every scrape runs a few aggregate queries on the
:class:`~coordinator.store.Store`, so the engine needs no instrumentation and the figures
survive a restart (they are the run's totals, not the process's). Exposed families::

    greenfed_rounds{status}                      rounds by status (open, completed, ...)
    greenfed_devices{state}                      registered (all enrolled) and revoked
    greenfed_uploaded_bytes_total               bytes of accepted uploads
    greenfed_energy_joules_total{window,estimated}  reported energy, compute / communicate,
                                                 measured ("false") or estimated ("true")
    greenfed_refusals_total                      requests refused (bad cert, revoked, ...)
    greenfed_last_round                          number of the last completed round
    greenfed_last_round_quality_fd               its Fréchet distance (absent until evaluated)
    greenfed_store_up                            1 when the store answered, else 0

Started by :func:`coordinator.runner.build` when ``metrics_port > 0`` (needs the
``prometheus-client`` package, >= 0.17: ``pip install 'greenfed[coordinator]'``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any, Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from coordinator.store import Store

log = logging.getLogger(__name__)

ROUND_STATUSES = ("open", "completed", "failed", "aborted")
WINDOWS = ("compute", "communicate")


class StoreCollector(Collector):
    """Turns the store's tables into metric families on every scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def describe(self) -> Iterator[Metric]:
        # Nothing up front: registering must not query the store.
        return iter(())

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("greenfed_store_up", "1 when the store answered the scrape")
        try:
            families = list(self._families())
        except sqlite3.Error as e:  # closed or locked store: say so, do not fail the scrape
            log.warning("metrics: store query failed: %s", e)
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield from families
        yield up

    def _families(self) -> Iterator[Metric]:
        t = self.store.totals()

        rounds = GaugeMetricFamily("greenfed_rounds", "Rounds by status", labels=["status"])
        by_status = t["rounds_by_status"]
        for status in sorted(set(ROUND_STATUSES) | set(by_status)):
            rounds.add_metric([status], float(by_status.get(status, 0)))
        yield rounds

        devices = GaugeMetricFamily(
            "greenfed_devices", "Devices: registered (all enrolled) and revoked", labels=["state"]
        )
        devices.add_metric(["registered"], float(t["devices"]))
        devices.add_metric(["revoked"], float(t["revoked"]))
        yield devices

        sent = CounterMetricFamily(
            "greenfed_uploaded", "Bytes of accepted update uploads", unit="bytes"
        )
        sent.add_metric([], t["uploaded_bytes"])
        yield sent

        energy = CounterMetricFamily(
            "greenfed_energy",
            "Energy reported by devices per window; estimated='true' where no sensor measured it",
            labels=["window", "estimated"],
            unit="joules",
        )
        for (window, estimated), joules in t["energy_j"].items():
            energy.add_metric([window, "true" if estimated else "false"], joules)
        yield energy

        refusals = CounterMetricFamily("greenfed_refusals", "Requests refused by the servicer")
        refusals.add_metric([], float(t["refusals"]))
        yield refusals

        last = self.store.last_completed_round()
        if last is not None:
            g = GaugeMetricFamily("greenfed_last_round", "Number of the last completed round")
            g.add_metric([], float(last["round"]))
            yield g
            if last["quality_fd"] is not None:
                fd = GaugeMetricFamily(
                    "greenfed_last_round_quality_fd",
                    "Fréchet distance of the last completed round's global model (lower is better)",
                )
                fd.add_metric([], float(last["quality_fd"]))
                yield fd


@dataclass
class MetricsServer:
    """A running metrics endpoint: ``http://host:port/metrics``."""

    host: str
    port: int
    _server: Any  # wsgiref's WSGIServer
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def listen_host(listen: str) -> str:
    """The host part of a ``HOST:PORT`` listen address (brackets of IPv6 removed)."""
    host = listen.rsplit(":", 1)[0] if ":" in listen else listen
    return host.strip("[]") or "0.0.0.0"


def serve_metrics(store: Store, host: str, port: int) -> MetricsServer:
    """Serve the store's metrics on ``host:port`` from a daemon thread (port 0: any free one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    server, thread = start_http_server(port, addr=host, registry=registry)
    bound = int(server.server_address[1])
    log.info("Prometheus metrics on http://%s:%d/metrics", host, bound)
    return MetricsServer(host, bound, server, thread)
