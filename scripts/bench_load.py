#!/usr/bin/env python3
"""Load test: N lightweight devices (and H hostile ones) against one coordinator on loopback.

    .venv/bin/python scripts/bench_load.py --devices 64 --rounds 8              # honest only
    .venv/bin/python scripts/bench_load.py --devices 64 --hostile 8 --compare   # both, one run

The coordinator is the real ``greenfed-coordinator serve`` (pi-small model, no per-round
evaluation so the figure is the protocol's, not the quality metric's). Each device is a thread
in this process speaking raw gRPC on its own connection: it registers, long-polls, downloads the
global model, uploads a random update quantized at its assigned bits (the real codec) and
reports. No torch in the devices, so 64 of them fit on a laptop next to the coordinator. A
device encodes its update once per (mode, bits) and sends it again every round (the coordinator
verifies and decodes every upload all the same): the devices share this process's GIL and the
machine's cores, and the figure should be the coordinator's, not theirs.

A hostile device is enrolled and does its own part of each round (so rounds do not wait for
it: its attack is on the server, not its own update), and between rounds it attacks: it keeps
``--flood`` long polls in flight over several connections (each refused one fired again after
``--refire-s``) and holds two downloads of the open round with a small fixed receive window
that it never drains (re-opened whenever the server cuts them).

``--compare`` runs three fleets, interleaved ``--repeats`` times so that the machine's load
drifts over all of them alike: the N honest devices alone; N + H honest devices (the same
participants as the next, without the attack); N honest + H hostile devices. It prints each
run and the ratios of the p99 round times pooled per fleet: hostile vs N honest (the hostile
devices' rounds also carry their own uploads) and hostile vs N + H honest (the attack alone).
Each run prints p50/p99 round time (opened -> completed, from the store), the coordinator's
peak resident memory (VmHWM) and the machine's load average (the host is shared: read the
ratios, not the absolute times).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import grpc
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coordinator.launcher import start_coordinator
from greenfed import codec
from greenfed.v1 import fleet_pb2 as pb
from greenfed.v1 import fleet_pb2_grpc as pb_grpc
from scripts.benchlib import PROFILE, cpu_name

BUSY = grpc.StatusCode.RESOURCE_EXHAUSTED
OWN = [("grpc.use_local_subchannel_pool", 1)]  # own TCP connection, as separate boards have
TIGHT = [*OWN, ("grpc.http2.bdp_probe", 0)]  # a receive window that does not grow


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Counter:
    def __init__(self) -> None:
        self.values: Dict[str, int] = {}
        self.lock = threading.Lock()

    def add(self, key: str, n: int = 1) -> None:
        with self.lock:
            self.values[key] = self.values.get(key, 0) + n


class Device(threading.Thread):
    """An honest device: its rounds, with backoff when the server says it is busy."""

    def __init__(self, port: int, name: str, stats: Counter) -> None:
        super().__init__(name=name, daemon=True)
        self.dev = name
        self.md = (("greenfed-device-id", name),)
        self.ch = grpc.insecure_channel(f"127.0.0.1:{port}", options=OWN)
        self.stub = pb_grpc.FleetStub(self.ch)
        self.rng = np.random.default_rng(abs(hash(name)) % 2**32)
        self.stats = stats
        self.frames: Dict[Any, codec.EncodeResult] = {}
        self.error: str = ""

    def run(self) -> None:
        try:
            self._run()
        except Exception as e:  # reported by main
            self.error = f"{type(e).__name__}: {e}"

    def busy(self, fn: Any) -> Any:
        """Call ``fn`` until the server is not busy (RESOURCE_EXHAUSTED), as the agent does."""
        while True:
            try:
                return fn()
            except grpc.RpcError as e:
                if e.code() != BUSY:  # type: ignore[attr-defined]
                    raise
                self.stats.add("busy_retries")
                time.sleep(0.05 + 0.2 * self.rng.random())

    def register(self) -> None:
        grpc.channel_ready_future(self.ch).result(timeout=60)
        req = pb.RegisterRequest(samples=100, profile=PROFILE)
        self.stub.Register(req, metadata=self.md, timeout=60)

    def download(self, round_no: int) -> bytes:
        req = pb.DownloadRequest(round=round_no)
        return self.busy(
            lambda: b"".join(
                c.data for c in self.stub.DownloadModel(req, metadata=self.md, timeout=60)
            )
        )

    def encoded(self, frame: bytes, mode: str, bits: int) -> codec.EncodeResult:
        """This device's random update at (mode, bits), encoded once and sent every round."""
        key = (mode, bits)
        if key not in self.frames:
            params = codec.decode(frame, max_frame_bytes=1 << 28, max_decoded_bytes=1 << 28)
            update = {
                k: (self.rng.standard_normal(v.shape) * 1e-3).astype(v.dtype)
                if v.dtype.kind == "f"
                else np.zeros_like(v)
                for k, v in params.items()
            }
            cfg = codec.CodecConfig(mode=mode, bits=bits if mode == "stochastic" else 8)
            self.frames[key] = codec.encode(update, cfg)
        return self.frames[key]

    def do_round(self, a: pb.Assignment) -> None:
        enc = self.encoded(self.download(a.round), a.mode, a.bits)
        manifest = pb.UploadManifest(
            round=a.round,
            total_bytes=len(enc.frame),
            sha256=enc.sha256,
            samples=100,
            bits=a.bits,
            mode=a.mode,
        )
        msgs = [pb.UploadMessage(manifest=manifest)] + [
            pb.UploadMessage(chunk=pb.UploadChunk(data=c))
            for c in codec.iter_chunks(enc.frame, 1 << 20)
        ]
        self.busy(lambda: self.stub.UploadUpdate(iter(msgs), metadata=self.md, timeout=60))
        w = pb.EnergyWindow(name="compute", energy_j=1.0, duration_s=0.1, source="estimated")
        self.stub.ReportRound(
            pb.RoundReport(round=a.round, windows=[w], bytes_up=len(enc.frame), samples=100),
            metadata=self.md,
            timeout=30,
        )
        self.stats.add("uploads")

    def _run(self) -> None:
        self.register()
        last = -1
        while True:
            a = self.busy(
                lambda last=last: self.stub.WaitAssignment(
                    pb.WaitRequest(last_round=last), metadata=self.md, timeout=30
                )
            )
            if a.status == pb.Assignment.FINISHED:
                return
            if a.status != pb.Assignment.ASSIGNED:
                continue
            self.do_round(a)
            last = a.round


class Hostile(Device):
    """Enrolled; does its own rounds, and floods long polls and stalls downloads meanwhile."""

    def __init__(
        self,
        port: int,
        name: str,
        stats: Counter,
        flood: int,
        refire_s: float,
        stalls: int = 2,
        conns: int = 4,
    ) -> None:
        super().__init__(port, name, stats)
        self.stall_count = stalls
        self.port = port
        self.flood = flood
        self.refire_s = refire_s
        self.flood_stubs = [
            pb_grpc.FleetStub(grpc.insecure_channel(f"127.0.0.1:{port}", options=OWN))
            for _ in range(conns)
        ]
        self.cond = threading.Condition()
        self.assigned: Optional[pb.Assignment] = None
        self.finished = False
        self.last = -1
        self.stop = threading.Event()
        self.stalls: List[Any] = []

    def _publish(self, a: pb.Assignment) -> None:
        with self.cond:
            if a.status == pb.Assignment.FINISHED:
                self.finished = True
            elif a.status == pb.Assignment.ASSIGNED and a.round > self.last:
                self.assigned = a
            self.cond.notify_all()

    def _flooder(self) -> None:
        """Keep ``flood`` long polls in flight; the one that is let through waits for the next
        round, so the assignment may come back on any of them."""
        pending: List[Any] = [None] * self.flood
        while not self.stop.is_set():
            for i, f in enumerate(pending):
                if f is not None and not f.done():
                    continue
                stub = self.flood_stubs[i % len(self.flood_stubs)]
                pending[i] = stub.WaitAssignment.future(
                    pb.WaitRequest(last_round=self.last), metadata=self.md, timeout=30
                )
                pending[i].add_done_callback(self._answered)  # an assignment: act at once
                self.stats.add("flood_calls")
            self.stop.wait(self.refire_s)
        for f in pending:
            if f is not None:
                f.cancel()

    def _answered(self, f: Any) -> None:
        if f.cancelled():
            return
        try:
            self._publish(f.result())
        except grpc.RpcError as e:
            code = e.code()  # type: ignore[attr-defined]
            self.stats.add("flood_refused" if code == BUSY else f"flood_{code.name}")

    def _stall(self, round_no: int) -> None:
        """Hold one download of ``round_no`` without draining it; open it again when cut."""
        ch = grpc.insecure_channel(f"127.0.0.1:{self.port}", options=TIGHT)
        stub = pb_grpc.FleetStub(ch)
        try:
            while not self.stop.is_set():
                with self.cond:
                    if self.last != round_no or self.assigned is not None or self.finished:
                        return
                call = stub.DownloadModel(
                    pb.DownloadRequest(round=round_no), metadata=self.md, timeout=120
                )
                with self.cond:
                    self.stalls.append(call)
                try:
                    next(call)  # one piece, then nothing
                    self.stats.add("stalls_opened")
                    call.code()  # until the server cuts it, the round moves on, or we cancel
                except grpc.RpcError:
                    pass
                self.stats.add("stalls_ended")
                if call.code() == grpc.StatusCode.CANCELLED:
                    self.stats.add("stalls_cut_or_cancelled")
                self.stop.wait(0.1)
        finally:
            ch.close()

    def _run(self) -> None:
        self.register()
        flooder = threading.Thread(target=self._flooder, daemon=True)
        flooder.start()
        try:
            while True:
                with self.cond:
                    while self.assigned is None and not self.finished:
                        self.cond.wait(1.0)
                    if self.finished:
                        return
                    a = self.assigned
                    self.assigned = None
                    assert a is not None
                    self.last = a.round  # polls from now on wait for the next round
                    stalls, self.stalls = self.stalls, []
                for call in stalls:  # let our own download through first
                    call.cancel()
                self.do_round(a)
                for _ in range(self.stall_count):
                    threading.Thread(target=self._stall, args=(a.round,), daemon=True).start()
        finally:
            self.stop.set()
            with self.cond:
                for call in self.stalls:
                    call.cancel()


def hostile_fleet(
    port: int, n: int, flood: int, refire_s: float, stalls: int, stop: Any, out: Any
) -> None:  # pragma: no cover (runs in a child process)
    """The hostile devices, in their own process: their CPU and GIL are not the honest
    devices' (separate boards), only the machine's cores are shared."""
    stats = Counter()
    devices = [Hostile(port, f"hostile-{i}", stats, flood, refire_s, stalls) for i in range(n)]
    for d in devices:
        d.start()
    stop.wait()
    for d in devices:
        d.stop.set()
    for d in devices:
        d.join(timeout=10)
    out.put((stats.values, [f"{d.dev}: {d.error}" for d in devices if d.error]))


def run_fleet(args: argparse.Namespace, honest: int, hostile: int) -> Dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix="greenfed-load-"))
    total = honest + hostile
    values: Dict[str, Any] = {
        "rounds": args.rounds,
        "min_devices": total,
        "scheme": args.scheme,
        "model_preset": args.preset,
        "eval_samples": 0,
        "deadline_s": 300.0,
        "grace_s": 1.0,
        "poll_interval_s": 2.0,
        # Every long poll holds a server thread: the documented sizing, 2 x devices + 16.
        "max_workers": 2 * total + 16,
    }
    load_before = os.getloadavg()
    t0 = time.monotonic()
    with open(run_dir / "coordinator.log", "wb") as out:
        run = start_coordinator(run_dir, values, stdout=out)
    pid = run.coordinator.pid
    stats = Counter()
    devices: List[Device] = [Device(run.port, f"load-{i:02d}", stats) for i in range(honest)]
    ctx = multiprocessing.get_context("spawn")
    stop, answers = ctx.Event(), ctx.Queue()
    child = None
    if hostile:
        child = ctx.Process(
            target=hostile_fleet,
            args=(run.port, hostile, args.flood, args.refire_s, args.stalls, stop, answers),
        )
        child.start()
    peak = 0.0
    coordinator_cpu = 0.0
    hostile_stats: Dict[str, int] = {}
    errors: List[str] = []
    try:
        for d in devices:
            d.start()
        end = time.monotonic() + args.timeout_s
        while run.coordinator.poll() is None and any(d.is_alive() for d in devices):
            peak = max(peak, vm_hwm_mib(pid))
            coordinator_cpu = cpu_s(pid)
            if time.monotonic() > end:
                print(f"timed out after {args.timeout_s:.0f} s", file=sys.stderr)
                break
            time.sleep(0.5)
        try:
            code = run.wait(timeout_s=60)
        except Exception:
            code = -1
    finally:
        if child is not None:
            stop.set()
            try:
                hostile_stats, errors = answers.get(timeout=60)
            except Exception as e:
                errors = [f"hostile process: {type(e).__name__}: {e}"]
            child.join(timeout=30)
        run.close()
    load_after = os.getloadavg()
    errors = [f"{d.dev}: {d.error}" for d in devices if d.error] + errors
    con = sqlite3.connect(str(run_dir / "state" / "greenfed.sqlite"))
    rows = con.execute(
        "SELECT round, status, closed_at - started_at, arrived FROM rounds ORDER BY round"
    ).fetchall()
    refused = con.execute(
        "SELECT COUNT(*), COALESCE(SUM(count), 0) FROM events WHERE kind = 'refused'"
    ).fetchone()
    con.close()
    durations: List[float] = [r[2] for r in rows if r[1] == "completed"]
    s = dict(stats.values)
    for k, v in hostile_stats.items():
        s[k] = s.get(k, 0) + v
    return {
        "devices": honest,
        "hostile": hostile,
        "durations": durations,
        "rounds_completed": len(durations),
        "round_s_p50": float(np.percentile(durations, 50)) if durations else None,
        "round_s_p99": float(np.percentile(durations, 99)) if durations else None,
        "round_s_max": max(durations) if durations else None,
        "arrived_per_round": [r[3] for r in rows],
        "coordinator_peak_rss_mib": round(peak, 1),
        "coordinator_cpu_s": round(coordinator_cpu, 1),
        "busy_retries": s.get("busy_retries", 0),
        "uploads": s.get("uploads", 0),
        "flood_calls_issued": s.get("flood_calls", 0),
        "flood_calls_per_s": round(s.get("flood_calls", 0) / (time.monotonic() - t0), 1),
        "flood_refused": s.get("flood_refused", 0),
        "flood_other": {
            k: v
            for k, v in s.items()
            if k.startswith("flood_") and k not in ("flood_calls", "flood_refused")
        },
        "stalls_opened": s.get("stalls_opened", 0),
        "stalls_cut_or_cancelled": s.get("stalls_cut_or_cancelled", 0),
        "refusal_rows_and_count": list(refused),
        "load_avg_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
        "wall_s": round(time.monotonic() - t0, 1),
        "coordinator_exit": code,
        "errors": errors[:5],
        "run_dir": str(run_dir),
        "ok": code == 0 and not errors and len(durations) == args.rounds,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=64, help="honest devices")
    p.add_argument("--hostile", type=int, default=0, help="hostile devices (see above)")
    p.add_argument("--compare", action="store_true", help="the three fleets above, interleaved")
    p.add_argument("--repeats", type=int, default=2, help="--compare: runs of each fleet")
    p.add_argument("--flood", type=int, default=20, help="long polls each hostile keeps open")
    p.add_argument("--refire-s", type=float, default=0.25, help="pause of a hostile's flood loop")
    p.add_argument("--stalls", type=int, default=2, help="downloads each hostile stalls")
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--scheme", default="fixed-8")
    p.add_argument("--preset", default="pi-small")
    p.add_argument("--timeout-s", type=float, default=900.0, help="give up after this long")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args()
    print("command: " + " ".join([Path(sys.executable).name, *sys.argv]))
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs (shared), load {os.getloadavg()[0]:.2f}")
    n, h = args.devices, args.hostile
    fleets = [(n, 0), (n + h, 0), (n, h)] * args.repeats if args.compare else [(n, h)]
    results = [run_fleet(args, honest, hostile) for honest, hostile in fleets]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(f"--- {r['devices']} honest + {r['hostile']} hostile devices")
            for k, v in r.items():
                if k != "durations":
                    print(f"{k:26s} {v}")
    if args.compare:
        q: Dict[str, Dict[int, float]] = {}
        for name, key in (("alone", (n, 0)), ("same", (n + h, 0)), ("hostile", (n, h))):
            pooled = [
                d for r in results if (r["devices"], r["hostile"]) == key for d in r["durations"]
            ]
            q[name] = {p: float(np.percentile(pooled, p)) for p in (50, 99)}
            print(
                f"pooled round time, {key[0]} honest + {key[1]} hostile ({len(pooled)} rounds): "
                f"p50 {q[name][50]:.2f} s, p99 {q[name][99]:.2f} s"
            )
        for base, what in (("alone", f"{n} honest alone"), ("same", f"{n + h} honest")):
            print(
                f"{n} honest + {h} hostile vs {what}: p99 {q['hostile'][99] / q[base][99]:.2f}x"
                f", p50 {q['hostile'][50] / q[base][50]:.2f}x"
                + (" (target: p99 <= 1.5x)" if base == "alone" else " (the attack alone)")
            )
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
