"""Pick the power source: try each backend in order, else the explicit estimated model."""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Dict, List, Optional, Type, cast

from .base import PowerSource, Probe, SourceContext
from .config import SensingConfig
from .errors import SensingError, SourceUnavailable
from .estimated import EstimatedSource
from .registry import FALLBACK, SOURCES
from .sysfs import CommandRunner, default_runner

log = logging.getLogger(__name__)


def _load(spec: str) -> Type[PowerSource]:
    module, cls = spec.split(":")
    return cast(Type[PowerSource], getattr(importlib.import_module(f".{module}", __package__), cls))


#: name -> backend class, in the order of :data:`.registry.SOURCES`, the fallback last.
BACKENDS: Dict[str, Type[PowerSource]] = {
    name: _load(spec) for name, spec in [*SOURCES.items(), FALLBACK]
}


def make_context(
    cfg: Optional[SensingConfig] = None,
    sysfs_root: Path = Path("/"),
    runner: Optional[CommandRunner] = None,
) -> SourceContext:
    """``runner`` defaults to this host's programs for ``/`` and to the outputs recorded in
    the tree for any other root (nothing of the host leaks into a copied board)."""
    return SourceContext(
        cfg=cfg or SensingConfig(),
        sysfs_root=Path(sysfs_root),
        runner=runner or default_runner(sysfs_root),
    )


def probe_sources(ctx: SourceContext) -> List[Probe]:
    """Every backend's probe, in the configured order (estimated last)."""
    out = []
    for name in ctx.cfg.sources:
        if name not in BACKENDS:
            out.append(Probe(name, False, "unknown source name"))
            continue
        out.append(BACKENDS[name].probe(ctx))
    out.append(EstimatedSource.probe(ctx))
    return out


def detect_power_source(
    cfg: Optional[SensingConfig] = None,
    sysfs_root: Path = Path("/"),
    runner: Optional[CommandRunner] = None,
) -> PowerSource:
    """The first available source of ``cfg.sources``, else :class:`EstimatedSource`.

    A source named explicitly (``cfg.source != "auto"``) must open or this raises
    :class:`SourceUnavailable`, and so must an emulated board's (``cfg.emulated``); in
    ``auto`` mode the fallback is logged with every reason.
    """
    ctx = make_context(cfg, sysfs_root, runner)
    if ctx.cfg.emulated is not None and ctx.cfg.source == "auto":
        # An emulated board's power is its board's or nothing: a broken cgroup is an error,
        # never a silent fall back to a model of this whole machine.
        return BACKENDS["emulated-board"].open(ctx)
    if ctx.cfg.source != "auto":
        if ctx.cfg.source not in BACKENDS:
            raise SourceUnavailable(f"unknown source {ctx.cfg.source!r}; known: {list(BACKENDS)}")
        return BACKENDS[ctx.cfg.source].open(ctx)
    reasons: Dict[str, str] = {}
    for name in ctx.cfg.sources:
        backend = BACKENDS.get(name)
        if backend is None:
            reasons[name] = "unknown source name"
            continue
        try:
            src = backend.open(ctx)
        except SensingError as e:
            reasons[name] = str(e)
            continue
        log.info("power source: %s (%s)", src.name, src.scope)
        return src
    src = EstimatedSource.open(ctx, reasons=reasons)
    log.warning(
        "no power sensor available; using the ESTIMATED model (%s). Reasons: %s",
        src.scope,
        "; ".join(f"{k}: {v}" for k, v in reasons.items()),
    )
    return src
