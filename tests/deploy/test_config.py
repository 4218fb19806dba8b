"""Configuration as a user meets it: every error message through the real CLIs (exit 2, the
message on stderr), the generated reference equal to the code, the example files valid."""

from __future__ import annotations

import dataclasses
import importlib.machinery
import importlib.util
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from coordinator import cli as coordinator_cli
from coordinator.config import CoordinatorConfig
from edge_agent import cli as agent_cli
from edge_agent.config import AgentConfig
from edge_agent.pool.config import MemberConfig
from greenfed.config import load_dataclass
from tests.deploy.conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

AGENT_OK = 'device_id = "pi-1"\n'


def load_script(name: str) -> types.ModuleType:
    path = REPO / "scripts" / name
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[loader.name] = mod  # dataclasses look their module up there
    loader.exec_module(mod)
    return mod


def cli_error(
    main: Callable[[Optional[List[str]]], int],
    argv: List[str],
    capsys: pytest.CaptureFixture[str],
) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    return err


# --------------------------------------------------------------------------- agent `run`
AGENT_CASES = [
    # unknown keys, named with their dotted path
    (AGENT_OK + 'coordinatr = "x:1"\n', "unknown key coordinatr (known keys: "),
    (AGENT_OK + '[tls]\ncrt = "a.pem"\n', "unknown key tls.crt"),
    (AGENT_OK + "[sensing]\nrate = 5\n", "unknown key sensing.rate"),
    (AGENT_OK + "[sensing.ina2xx]\nadress = 64\n", "unknown key sensing.ina2xx.adress"),
    # wrong types
    (AGENT_OK + 'num_threads = "2"\n', "num_threads: expected an integer, got '2'"),
    (AGENT_OK + "num_threads = true\n", "num_threads: expected an integer, got True"),
    (AGENT_OK + 'uplink_mbps = "fast"\n', "uplink_mbps: expected a number, got 'fast'"),
    (AGENT_OK + "exit_when_finished = 1\n", "exit_when_finished: expected true or false"),
    (AGENT_OK + "coordinator = 5\n", "coordinator: expected a string, got 5"),
    (AGENT_OK + "state_dir = 3\n", "state_dir: expected a path string, got 3"),
    (AGENT_OK + "tls = 3\n", "tls: expected a table, got int"),
    (AGENT_OK + '[sensing]\nsources = "rapl"\n', "sensing.sources: expected a list"),
    (AGENT_OK + "[sensing]\nsources = [1]\n", "sensing.sources[0]: expected a string"),
    # invalid values (__post_init__)
    ('coordinator = "h:1"\n', "AgentConfig: device_id is required"),
    ('device_id = "bad id!"\n', "device_id is required: 1-64 letters"),
    (AGENT_OK + "uplink_mbps = 0\n", "AgentConfig: uplink_mbps must be > 0"),
    (AGENT_OK + "num_threads = 0\n", "AgentConfig: num_threads must be >= 1"),
    (AGENT_OK + "bits_min = 17\n", "AgentConfig: bits_min must be 0 (any) or in 1..16"),
    (AGENT_OK + "bits_max = -1\n", "AgentConfig: bits_max must be 0 (any) or in 1..16"),
    (AGENT_OK + "[sensing]\nrate_hz = 0\n", "sensing: rate_hz must be > 0, got 0.0"),
    (AGENT_OK + '[sensing]\nsource = "bogus"\n', "sensing: unknown source 'bogus'; known: "),
    (AGENT_OK + "[sensing]\njtop_interval_s = 0.1\n", "sensing: jtop_interval_s must be >= 0.5"),
    # the file itself
    ("device_id = \n", "invalid TOML"),
]


@pytest.mark.parametrize("text, message", AGENT_CASES)
def test_agent_run_config_errors(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    err = cli_error(agent_cli.main, ["run", "--config", str(path)], capsys)
    assert err.startswith("greenfed-agent run: ")
    assert message in err


def test_agent_run_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.toml"
    err = cli_error(agent_cli.main, ["run", "--config", str(missing)], capsys)
    assert f"config file not found: {missing}" in err


def test_agent_flags_are_validated_like_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(AGENT_OK + "num_threads = 2\n")
    err = cli_error(agent_cli.main, ["run", "--config", str(path), "--threads", "0"], capsys)
    assert "num_threads must be >= 1" in err
    err = cli_error(agent_cli.main, ["run", "--uplink-mbps", "-1", "--device-id", "x"], capsys)
    assert "uplink_mbps must be > 0" in err


# ------------------------------------------------------------------ agent `probe` [sensing]
@pytest.mark.parametrize(
    "text, message",
    [
        ("rate = 5\nsource = 'auto'\n", "unknown key sensing.rate"),
        ("rate_hz = 0\n", "sensing: rate_hz must be > 0"),
        (AGENT_OK + "[sensing]\nrate_hz = -1\n", "sensing: rate_hz must be > 0"),
        (AGENT_OK + "sensing = 3\n", "sensing: expected a table, got int"),
        ("rate_hz = 5\n[sensing]\nsource = 'auto'\n", "sensing keys both at the top level"),
        (AGENT_OK + "[sensing.ina2xx]\nbus = 'one'\n", "sensing.ina2xx.bus: expected an integer"),
    ],
)
def test_probe_config_errors(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    err = cli_error(agent_cli.main, ["probe", "--config", str(path), "--json"], capsys)
    assert err.startswith("probe: ")
    assert message in err


def probe_json(path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> Dict[str, Any]:
    code = agent_cli.main(["probe", "--config", str(path), "--json", *extra])
    out = capsys.readouterr()
    assert code == 0, out.err
    return dict(json.loads(out.out))


@pytest.mark.parametrize(
    "text",
    [
        AGENT_OK + 'coordinator = "h:1"\n[sensing]\nsource = "estimated"\n',  # agent config
        'source = "estimated"\nrate_hz = 5\n',  # a sensing-only file
    ],
)
def test_probe_reads_sensing_of_agent_or_sensing_file(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert probe_json(path, capsys)["chosen"]["name"] == "estimated"


def test_probe_accepts_agent_config_without_sensing_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Used to fail with "unknown key sensing.coordinator": the whole file was taken as sensing.
    path = tmp_path / "agent.toml"
    path.write_text(AGENT_OK + 'coordinator = "h:1"\n')
    report = probe_json(path, capsys, "--source", "estimated")
    assert report["chosen"]["name"] == "estimated"


def test_probe_reads_the_agent_example(capsys: pytest.CaptureFixture[str]) -> None:
    report = probe_json(REPO / "deploy" / "agent.example.toml", capsys, "--source", "estimated")
    assert report["chosen"]["estimated"] is True


def test_calibrate_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(AGENT_OK + "[sensing]\nsource = 'nope'\n")
    out = tmp_path / "cal.json"
    err = cli_error(agent_cli.main, ["calibrate", "--config", str(path), "--out", str(out)], capsys)
    assert err.startswith("calibrate: ") and "unknown source 'nope'" in err
    assert not out.exists()


# ------------------------------------------------------------------- coordinator `serve`
COORDINATOR_CASES = [
    ("rouds = 3\n", "unknown key rouds (known keys: "),
    ("[tls]\ninsecur = true\n", "unknown key tls.insecur"),
    ('rounds = "5"\n', "rounds: expected an integer, got '5'"),
    ('min_fraction = "half"\n', "min_fraction: expected a number"),
    ('deadline_s = "soon"\n', "deadline_s: expected a number"),
    ("state_dir = []\n", "state_dir: expected a path string"),
    ('[tls]\nrevoked = "pi-1"\n', "tls.revoked: expected a list"),
    ('[tls]\ninsecure = "yes"\n', "tls.insecure: expected true or false"),
    ('scheme = "fixed-99"\n', "CoordinatorConfig: unknown scheme 'fixed-99': use on-demand"),
    ("rounds = 0\n", "CoordinatorConfig: rounds must be >= 1"),
    ("min_devices = 0\n", "CoordinatorConfig: min_devices must be >= 1"),
    ("min_fraction = 1.5\n", "CoordinatorConfig: min_fraction must be in (0, 1]"),
    ("local_steps = 0\n", "local_steps and batch_size must be >= 1"),
    ("batch_size = 0\n", "local_steps and batch_size must be >= 1"),
    ("chunk_bytes = 10\n", "chunk_bytes must be between 1 KiB and 4 MiB"),
    ("deadline_s = -1\n", "deadline_s must be > 0"),
    ("error_budget = 0\n", "error_budget must be > 0"),
    ("rounds = \n", "invalid TOML"),
]


@pytest.mark.parametrize("text, message", COORDINATOR_CASES)
def test_coordinator_serve_config_errors(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "coordinator.toml"
    path.write_text(text)
    err = cli_error(coordinator_cli.main, ["serve", "--config", str(path)], capsys)
    assert err.startswith("greenfed-coordinator serve: ")
    assert message in err
    assert not (tmp_path / "runs").exists()


def test_coordinator_flag_is_validated(capsys: pytest.CaptureFixture[str]) -> None:
    err = cli_error(coordinator_cli.main, ["serve", "--scheme", "fixed-0"], capsys)
    assert "unknown scheme 'fixed-0'" in err


def test_coordinator_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = cli_error(
        coordinator_cli.main, ["serve", "--config", str(tmp_path / "none.toml")], capsys
    )
    assert "config file not found" in err


# ------------------------------------------------------------------ reference and examples
@pytest.fixture(scope="module")
def gen() -> types.ModuleType:
    return load_script("gen-config-docs")


def test_reference_is_generated_from_the_code(gen: types.ModuleType) -> None:
    committed = (REPO / "docs" / "configuration.md").read_text()
    assert committed == gen.generate(), "run: .venv/bin/python scripts/gen-config-docs"


def test_every_key_is_documented(gen: types.ModuleType) -> None:
    assert gen.MISSING not in gen.generate()


def doc_sections() -> Dict[Tuple[str, str], Dict[str, str]]:
    """{(part, section): {key: default cell}} parsed from docs/configuration.md."""
    out: Dict[Tuple[str, str], Dict[str, str]] = {}
    part = section = ""
    for line in (REPO / "docs" / "configuration.md").read_text().splitlines():
        if line.startswith("## "):
            part = (
                "agent" if "Agent" in line else "member" if "Pool member" in line else "coordinator"
            )
        elif line.startswith("###"):
            title = line.lstrip("#").strip()
            section = "" if title == "top level" else title.strip("`[]")
        elif line.startswith("| `") and part:
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            if len(cells) == 4:
                out.setdefault((part, section), {})[cells[0].strip("`")] = cells[2].strip("`")
    return out


def nested_class(root: type, dotted: str) -> type:
    """The dataclass of a dotted section (``sensing.ina2xx``) under ``root``."""
    cls = root
    for name in filter(None, dotted.split(".")):
        hint = typing.get_type_hints(cls)[name]
        cls = next(a for a in (hint, *typing.get_args(hint)) if dataclasses.is_dataclass(a))  # type: ignore[assignment]
    return cls


def defaults(cls: type) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        else:
            out[f.name] = f.default_factory()  # type: ignore[misc,operator]
    return out


def test_documented_defaults_equal_the_code() -> None:
    sections = doc_sections()
    roots = {"agent": AgentConfig, "coordinator": CoordinatorConfig, "member": MemberConfig}
    assert ("agent", "sensing.ina2xx") in sections and ("coordinator", "tls") in sections
    checked = 0
    for (part, section), keys in sections.items():
        cls = nested_class(roots[part], section)
        code = defaults(cls)
        assert set(keys) == set(code), (part, section)
        for key, cell in keys.items():
            value = code[key]
            if cell == "(required)":
                assert (part, section, key) in {
                    ("agent", "", "device_id"),
                    ("member", "", "member_id"),
                }
                continue
            if cell == "see below":
                assert dataclasses.is_dataclass(value)
                continue
            if cell == "(unset)":
                assert value is None, (part, section, key)
                continue
            parsed = tomllib.loads(f"v = {cell}")["v"]
            expected = str(value) if isinstance(value, Path) else value
            assert parsed == expected, (part, section, key, cell)
            checked += 1
    assert checked > 50


@pytest.mark.parametrize(
    "name, cls",
    [("agent.example.toml", AgentConfig), ("coordinator.example.toml", CoordinatorConfig)],
)
def test_example_files_load(name: str, cls: type) -> None:
    cfg: object = load_dataclass(cls, REPO / "deploy" / name)
    assert isinstance(cfg, cls)


def test_flash_writes_a_loadable_agent_config(tmp_path: Path) -> None:
    flash = load_script("flash")
    path = tmp_path / "agent.toml"
    path.write_text(flash.agent_toml("jetson-3", "10.0.0.1:50051", "/opt/g", tls=True))
    cfg = load_dataclass(AgentConfig, path)
    assert (cfg.device_id, cfg.coordinator) == ("jetson-3", "10.0.0.1:50051")
    assert cfg.tls.ca == Path("/opt/g/certs/ca.crt")
