"""Start a coordinator and local agents as separate processes on loopback (demo, experiments).

Each process is a real ``greenfed-coordinator serve`` / ``greenfed-agent run`` started with
this interpreter, talking real gRPC over 127.0.0.1, or, given shaped links
(:mod:`coordinator.links`), with each agent in its own network namespace behind a tc-shaped
uplink and the coordinator in the run's hub namespace. Agents' logs go to ``<run>/logs``; the
coordinator's output is passed through (its round tables are the progress display).
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

from coordinator.errors import LaunchError
from coordinator.links.base import LinkSet
from coordinator.links.profile import LinkProfile


@dataclass
class AgentSpec:
    device_id: str
    data: str
    uplink_mbps: Optional[float] = None
    threads: int = 1
    link: Optional[LinkProfile] = None  # with the run's LinkSet: this link (else uplink_mbps)

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


def write_toml(path: Path, values: Mapping[str, Any]) -> None:
    """Flat keys and one level of tables (dict values)."""
    lines = [f"{k} = {toml_value(v)}" for k, v in values.items() if not isinstance(v, dict)]
    for k, v in values.items():
        if isinstance(v, dict):
            lines.append(f"\n[{k}]")
            lines += [f"{kk} = {toml_value(vv)}" for kk, vv in v.items()]
    path.write_text("\n".join(lines) + "\n")


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
        values.update(extra or {})
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


def start_coordinator(
    run_dir: Path,
    values: Mapping[str, Any],
    stdout: Any = None,
    ready_timeout_s: float = 120.0,
    links: Optional[LinkSet] = None,
) -> LocalRun:
    """Write ``coordinator.toml`` and start ``serve`` on a free loopback port.

    With ``links``, the coordinator runs where that link set says (shaped: the run's hub
    namespace) and the returned run owns the set; if the start fails it is closed here.
    """
    try:
        return _start_coordinator(run_dir, values, stdout, ready_timeout_s, links)
    except BaseException:
        if links is not None:
            links.close()
        raise


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
) -> LocalRun:
    run = start_coordinator(run_dir, coordinator_values, stdout=stdout, links=links)
    if links is not None:
        links.start_traces()
    try:
        for spec in agents:
            run.start_agent(spec)
    except Exception:
        run.close()
        raise
    return run
