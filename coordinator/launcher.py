"""Start a coordinator and local agents as separate processes on loopback (demo, experiments).

Each process is a real ``greenfed-coordinator serve`` / ``greenfed-agent run`` started with
this interpreter, talking real gRPC over 127.0.0.1, or, given shaped links
(:mod:`coordinator.links`), with each agent in its own network namespace behind a tc-shaped
uplink and the coordinator in the run's hub namespace. Given emulated boards
(:mod:`coordinator.boards`), each agent runs in its own cgroup, its clock the CPU quota.
Agents' logs go to ``<run>/logs``; the coordinator's output is passed through (its round
tables are the progress display).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from coordinator.boards.emulated import BoardSet
from coordinator.errors import LaunchError
from coordinator.links.base import LinkSet
from coordinator.links.profile import LinkProfile
from greenfed.boards import get_profile


@dataclass
class AgentSpec:
    device_id: str
    data: str
    uplink_mbps: Optional[float] = None
    threads: int = 1
    link: Optional[LinkProfile] = None  # with the run's LinkSet: this link (else uplink_mbps)
    board: str = ""  # with the run's BoardSet: this board profile (else a plain agent)

    def link_profile(self) -> Optional[LinkProfile]:
        if self.link is not None:
            return self.link
        return LinkProfile(rate_mbps=self.uplink_mbps) if self.uplink_mbps else None


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def toml_lines(values: Mapping[str, Any], table: str = "") -> List[str]:
    """Keys, then tables (dict values, nested as ``[a.b]``)."""
    lines = [f"{k} = {toml_value(v)}" for k, v in values.items() if not isinstance(v, dict)]
    for k, v in values.items():
        if isinstance(v, dict):
            name = f"{table}.{k}" if table else k
            lines += [f"\n[{name}]", *toml_lines(v, name)]
    return lines


def write_toml(path: Path, values: Mapping[str, Any]) -> None:
    path.write_text("\n".join(toml_lines(values)) + "\n")


def merge_tables(base: Dict[str, Any], extra: Mapping[str, Any]) -> Dict[str, Any]:
    """``base`` updated by ``extra``, tables merged key by key rather than replaced."""
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_tables(out[k], v)
        else:
            out[k] = v
    return out


def _env(threads: int) -> Dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = str(threads)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class LocalRun:
    """Processes of one local run; ``wait()`` for the coordinator, ``close()`` always."""

    run_dir: Path
    coordinator: subprocess.Popen
    port: int
    agents: Dict[str, subprocess.Popen] = field(default_factory=dict)
    agent_specs: Dict[str, AgentSpec] = field(default_factory=dict)
    links: Optional[LinkSet] = None  # owned: closed by close()
    boards: Optional[BoardSet] = None  # owned: closed by close(), after the agents

    def start_agent(self, spec: AgentSpec, extra: Optional[Mapping[str, Any]] = None) -> None:
        logs = self.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        cfg_path = self.run_dir / f"agent-{spec.device_id}.toml"
        values: Dict[str, Any] = {
            "coordinator": f"127.0.0.1:{self.port}",
            "device_id": spec.device_id,
            "data": spec.data,
            "state_dir": str(self.run_dir / "agents" / spec.device_id),
            "num_threads": spec.threads,
        }
        prefix: List[str] = []
        profile = spec.link_profile()
        if self.links is not None and profile is not None:
            link = self.links.attach(spec.device_id, profile)
            values["coordinator"] = f"{link.coordinator_host}:{self.port}"
            values.update(link.agent_values)
            prefix = link.argv_prefix
        elif spec.uplink_mbps:
            values["uplink_mbps"] = float(spec.uplink_mbps)
        if self.boards is not None and spec.board:
            board = self.boards.attach(spec.device_id, get_profile(spec.board), spec.threads)
            values = merge_tables(values, board.agent_values)
            prefix = [*board.argv_prefix, *prefix]  # join the cgroup first: everything counts
        values = merge_tables(values, extra or {})
        write_toml(cfg_path, values)
        argv = [*prefix, sys.executable, "-m", "edge_agent.cli", "run", "--config", str(cfg_path)]
        with open(logs / f"{spec.device_id}.log", "ab") as log:  # the child keeps its copy
            self.agents[spec.device_id] = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_env(spec.threads),
            )
        self.agent_specs[spec.device_id] = spec

    def wait(self, timeout_s: Optional[float] = None) -> int:
        return self.coordinator.wait(timeout=timeout_s)

    def close(self, grace_s: float = 10.0) -> None:
        procs = [*self.agents.values(), self.coordinator]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        end = time.monotonic() + grace_s
        for p in procs:
            try:
                p.wait(timeout=max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.links is not None:
            self.links.close()
        if self.boards is not None:
            self.boards.close()


def start_coordinator(
    run_dir: Path,
    values: Mapping[str, Any],
    stdout: Any = None,
    ready_timeout_s: float = 120.0,
    links: Optional[LinkSet] = None,
    boards: Optional[BoardSet] = None,
) -> LocalRun:
    """Write ``coordinator.toml`` and start ``serve`` on a free loopback port.

    With ``links``, the coordinator runs where that link set says (shaped: the run's hub
    namespace); with ``boards``, agents whose spec names a board run as that emulated board.
    The returned run owns both sets; if the start fails they are closed here.
    """
    try:
        run = _start_coordinator(run_dir, values, stdout, ready_timeout_s, links)
    except BaseException:
        if links is not None:
            links.close()
        if boards is not None:
            boards.close()
        raise
    run.boards = boards
    return run


def _start_coordinator(
    run_dir: Path,
    values: Mapping[str, Any],
    stdout: Any,
    ready_timeout_s: float,
    links: Optional[LinkSet],
) -> LocalRun:
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = run_dir / "coordinator.toml"
    cfg: Dict[str, Any] = {"listen": "127.0.0.1:0", "state_dir": str(run_dir / "state")}
    cfg.update(values)
    prefix: List[str] = []
    if links is not None:
        cfg.update(links.coordinator_values())
        prefix = links.coordinator_argv_prefix()
    write_toml(cfg_path, cfg)
    port_file = run_dir / "port"
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [
            *prefix,
            sys.executable,
            "-m",
            "coordinator.cli",
            "serve",
            "--config",
            str(cfg_path),
            "--port-file",
            str(port_file),
        ],
        stdout=stdout,
        stderr=subprocess.STDOUT if stdout is not None else None,
        env=_env(int(cfg.get("eval_threads", 1))),
    )
    end = time.monotonic() + ready_timeout_s
    while not port_file.exists():
        if proc.poll() is not None:
            raise LaunchError(f"coordinator exited with code {proc.returncode} before serving")
        if time.monotonic() > end:
            proc.kill()
            raise LaunchError("coordinator did not start serving in time")
        time.sleep(0.1)
    return LocalRun(run_dir=run_dir, coordinator=proc, port=int(port_file.read_text()), links=links)


def launch(
    run_dir: Path,
    coordinator_values: Mapping[str, Any],
    agents: List[AgentSpec],
    stdout: Any = None,
    links: Optional[LinkSet] = None,
    boards: Optional[BoardSet] = None,
) -> LocalRun:
    run = start_coordinator(run_dir, coordinator_values, stdout=stdout, links=links, boards=boards)
    if links is not None:
        links.start_traces()
    try:
        for spec in agents:
            run.start_agent(spec)
    except Exception:
        run.close()
        raise
    return run
