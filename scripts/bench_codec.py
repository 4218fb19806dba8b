#!/usr/bin/env python3
"""Benchmark of the update codec (greenfed.codec) on real DDPM updates, against a naive
numpy + zstd reference and, optionally, against the codec of an earlier commit.

    .venv/bin/python scripts/bench_codec.py --baseline b5009e5     # the tables in docs/codec.md
    .venv/bin/python scripts/bench_codec.py --quick                # fewer repeats, no 10 M rows

Real updates: ``pi-small`` and ``pi-base`` from ``greenfed.ddpm``, initialised with seed 0 and
trained for ``--steps`` local steps (batch 64, one thread) on the shipped digits data; the update
is trained minus start, as an agent sends it. One thread (BLAS/OpenMP pinned to 1 before numpy
loads, torch set to 1). Throughputs are MB/s of fp32 input (numel * 4 bytes, MB = 1e6 bytes),
medians over ``--repeats`` rounds in which every timed function runs once, round-robin, so all
see the same background load. The load average is printed before and after.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import importlib.util  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tarfile  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402
from typing import Callable, Dict, List, Optional, Sequence, Tuple  # noqa: E402

import numpy as np  # noqa: E402
import zstandard  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import cpu_name  # noqa: E402

from greenfed import codec  # noqa: E402
from greenfed.codec.quantize import plan, quantize  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MAX_FRAME, MAX_DECODED = 1 << 32, 1 << 33
State = Dict[str, np.ndarray]


def real_update(preset: str, steps: int) -> State:
    """Trained minus start of one local round of ``preset`` on the digits train split."""
    import torch

    import greenfed.ddpm as ddpm
    from greenfed.updates import update_of

    torch.set_num_threads(1)
    data = ddpm.load_data("digits")
    c, h, _ = data.shape
    model = ddpm.build_model(ddpm.preset(preset, in_channels=c, image_size=h), seed=0)
    start = ddpm.get_state_arrays(model)
    cfg = ddpm.TrainConfig(steps=steps, batch_size=64, seed=0, num_threads=1)
    ddpm.train_local(model, ddpm.NoiseSchedule(), data.images, cfg)
    return update_of(ddpm.get_state_arrays(model), start)


def synthetic_update(params: int, seed: int = 0) -> State:
    """Gaussian tensors with per-layer scales spread over two decades: weight matrices of
    4 K-1 M values plus 64-value biases (the large-tensor rows of the earlier benchmark)."""
    rng = np.random.default_rng(seed)
    out: State = {}
    left, i = params, 0
    while left > 0:
        n = min(left, int(rng.choice([4096, 16384, 65536, 262144, 1048576])))
        scale = float(10 ** rng.uniform(-4, -2))
        out[f"layer{i}.weight"] = (rng.standard_normal(n) * scale).astype(np.float32)
        left -= n
        bias = min(left, 64)
        if bias:
            out[f"layer{i}.bias"] = (rng.standard_normal(bias) * scale * 0.1).astype(np.float32)
            left -= bias
        i += 1
    return out


def load_baseline(rev: str) -> Optional[ModuleType]:
    """``greenfed/codec`` as of git revision ``rev``, imported as a separate package."""
    tmp = Path(tempfile.mkdtemp(prefix="codec-baseline-"))
    archive = tmp / "codec.tar"
    try:
        with open(archive, "wb") as fh:
            subprocess.run(
                ["git", "-C", str(REPO), "archive", rev, "greenfed/codec"], check=True, stdout=fh
            )
        with tarfile.open(archive) as tar:
            tar.extractall(tmp)  # our own repository's archive
    except (OSError, subprocess.CalledProcessError, tarfile.TarError) as e:
        print(f"baseline {rev}: not available ({e}); old-vs-new rows skipped")
        return None
    init = tmp / "greenfed" / "codec" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "codec_baseline", init, submodule_search_locations=[str(init.parent)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["codec_baseline"] = module
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ the naive reference


def naive_encode(sd: State, bits: int, level: int = 3) -> List[bytes]:
    """Per tensor min/max, floor(x/Δ + U[0,1)) with float64 noise, one uint8 (uint16 above
    8 bits) per value, zstd -3: what one writes without a codec."""
    rng = np.random.default_rng(0)
    cctx = zstandard.ZstdCompressor(level=level)
    levels = (1 << bits) - 1
    out = []
    for x in sd.values():
        lo, hi = float(x.min()), float(x.max())
        delta = (hi - lo) / levels or 1.0
        s = np.floor((x.ravel() - lo) / delta + rng.random(x.size))
        s = np.minimum(s, levels).astype(np.uint8 if bits <= 8 else np.uint16)
        out.append(cctx.compress(s.tobytes()))
    return out


def naive_decode(blobs: List[bytes], sd: State, bits: int) -> None:
    dctx = zstandard.ZstdDecompressor()
    dt = np.uint8 if bits <= 8 else np.uint16
    for blob, x in zip(blobs, sd.values()):
        s = np.frombuffer(dctx.decompress(blob), dtype=dt)
        _ = s.astype(np.float32) * np.float32(0.1) + np.float32(x.flat[0])


# ------------------------------------------------------------------ measuring


def interleaved_times(fns: Sequence[Callable[[], object]], repeats: int) -> List[List[float]]:
    """Wall times of each function over ``repeats`` rounds, run round-robin after one warm-up
    each, so every function sees the same background load (the machine is shared)."""
    for fn in fns:
        fn()
    times: List[List[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t)
    return times


def mbps(sd: State, seconds: float) -> float:
    return sum(v.size for v in sd.values()) * 4 / 1e6 / seconds


def stored_payload_bytes(frame: bytes) -> int:
    return int.from_bytes(frame[32:40], "little")


def entropy_bounds(sd: State, bits: int, block: int) -> Tuple[float, float]:
    """(H, H_MM) in bytes over the symbols a frame with seed 0 carries: the sum over tensors of
    n*H/8, H the order-0 empirical entropy of the tensor's symbols (the issue's bound), and the
    same with the Miller-Madow correction (K - 1)/(2 n ln 2) bits per symbol (K: distinct
    symbols seen), which removes most of the plug-in estimate's bias when n is not much larger
    than 2**q."""
    arrays = [np.ascontiguousarray(v, dtype=np.float32).reshape(-1) for v in sd.values()]
    groups = plan([a.size for a in arrays], block)
    q = quantize(arrays, list(sd), groups, bits, np.random.SFC64(0))
    bounds = groups.tensor_starts.tolist()
    plain = corrected = 0.0
    for i in range(len(arrays)):
        sym = q.symbols[bounds[i] : bounds[i + 1]]
        counts = np.bincount(sym)
        p = counts[counts > 0] / sym.size
        h = float(-(p * np.log2(p)).sum())
        plain += sym.size * h / 8
        corrected += sym.size * (h + (p.size - 1) / (2 * sym.size * math.log(2))) / 8
    return plain, corrected


# ------------------------------------------------------------------ tables


def print_table(head: List[str], rows: List[List[str]]) -> None:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, ["-" * w for w in widths], *rows]:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    print()
    sys.stdout.flush()


def speed_rows(
    inputs: Dict[str, State], bits_list: Sequence[int], repeats: int, base: Optional[ModuleType]
) -> List[List[str]]:
    """Codec, naive and (if given) baseline codec, encode and decode, interleaved per row."""
    rows = []
    for label, sd in inputs.items():
        for bits in bits_list:
            cfg = codec.CodecConfig(bits=bits, seed=0)
            enc = codec.encode(sd, cfg)
            frame = enc.frame
            blobs = naive_encode(sd, bits)
            fns: List[Callable[[], object]] = [
                functools.partial(codec.encode, sd, cfg),
                functools.partial(
                    codec.decode, frame, max_frame_bytes=MAX_FRAME, max_decoded_bytes=MAX_DECODED
                ),
                functools.partial(naive_encode, sd, bits),
                functools.partial(naive_decode, blobs, sd, bits),
                # as the coordinator decodes: its spool has hashed the frame on arrival
                functools.partial(
                    codec.decode,
                    frame,
                    max_frame_bytes=MAX_FRAME,
                    max_decoded_bytes=MAX_DECODED,
                    verified_sha256=enc.sha256,
                ),
            ]
            if base is not None:
                old_cfg = base.CodecConfig(bits=bits, seed=0)
                old_frame = base.encode(sd, old_cfg).frame
                fns += [
                    functools.partial(base.encode, sd, old_cfg),
                    functools.partial(
                        base.decode,
                        old_frame,
                        max_frame_bytes=MAX_FRAME,
                        max_decoded_bytes=MAX_DECODED,
                    ),
                ]
            med = [statistics.median(t) for t in interleaved_times(fns, repeats)]
            row = [
                label, str(bits), f"{mbps(sd, med[0]):.0f}", f"{mbps(sd, med[2]):.0f}",
                f"{med[2] / med[0]:.2f}", f"{mbps(sd, med[1]):.0f}", f"{mbps(sd, med[3]):.0f}",
                f"{med[3] / med[1]:.2f}", f"{mbps(sd, med[4]):.0f}", f"{med[3] / med[4]:.2f}",
            ]  # fmt: skip
            if base is not None:
                row += [
                    f"{mbps(sd, med[5]):.0f}", f"{med[5] / med[0]:.2f}",
                    f"{mbps(sd, med[6]):.0f}", f"{med[6] / med[1]:.2f}",
                ]  # fmt: skip
            rows.append(row)
    return rows


def size_rows(inputs: Dict[str, State], base: Optional[ModuleType]) -> List[List[str]]:
    rows = []
    for label, sd in inputs.items():
        for bits in range(1, 17):
            frame = codec.encode(sd, codec.CodecConfig(bits=bits, seed=0)).frame
            payload = stored_payload_bytes(frame)
            plain, corrected = entropy_bounds(sd, bits, 0)
            row = [
                label, str(bits), f"{plain / 1e3:.1f}", f"{payload / 1e3:.1f}",
                f"{payload / plain:.3f}", f"{payload / corrected:.3f}",
            ]  # fmt: skip
            if base is not None:
                old = base.encode(sd, base.CodecConfig(bits=bits, seed=0)).frame
                row.append(f"{stored_payload_bytes(old) / plain:.3f}")
            rows.append(row)
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 repeats, no 10 M synthetic rows")
    ap.add_argument("--repeats", type=int, default=15, help="timed rounds per row (median)")
    ap.add_argument("--steps", type=int, default=30, help="local training steps per update")
    ap.add_argument(
        "--baseline",
        metavar="REV",
        help="also time the codec of this git revision (e.g. b5009e5, before issue 18)",
    )
    args = ap.parse_args(argv)
    repeats = 5 if args.quick else args.repeats
    print("command:", " ".join([os.path.basename(sys.executable), *sys.argv]))
    print(f"machine: {cpu_name()}, {os.cpu_count()} logical cores, {platform.machine()}, "
          f"{platform.system()} {platform.release()}")  # fmt: skip
    print(f"versions: python {platform.python_version()}, numpy {np.__version__}, "
          f"zstandard {zstandard.__version__} (libzstd {zstandard.ZSTD_VERSION}); "
          f"codec frame version {codec.VERSION}")  # fmt: skip
    print(f"threads: 1; repeats: {repeats} (median); zstd level {codec.DEFAULT_ZSTD_LEVEL}")
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    base = load_baseline(args.baseline) if args.baseline else None
    t0 = time.monotonic()
    real = {f"{p} Δ": real_update(p, args.steps) for p in ("pi-small", "pi-base")}
    print(f"real updates: pi-small and pi-base after {args.steps} local steps on digits, "
          f"minus their start ({time.monotonic() - t0:.1f} s to train both)\n")  # fmt: skip

    speed_head = ["input", "bits", "enc MB/s", "naive", "enc/naive", "dec MB/s", "naive",
                  "dec/naive", "dec* MB/s", "dec*/naive"]  # fmt: skip
    if base is not None:
        speed_head += ["old enc", "new/old", "old dec", "new/old"]
    print("1. Real updates, one thread: codec vs naive (and vs the baseline codec), interleaved")
    print("   dec*: decode as the coordinator runs it, the frame's sha256 already verified by the")
    print("   upload spool as the chunks arrived (every other check runs; naive verifies nothing)")
    print_table(speed_head, speed_rows(real, (4, 8), repeats, base))

    print("2. zstd payload / order-0 entropy bound on real updates (sizes deterministic, seed 0)")
    print("   H: sum over tensors of n*H/8 (plug-in entropy of each tensor's symbols);")
    print("   H_MM: the same with the Miller-Madow bias correction")
    size_head = ["input", "bits", "H kB", "zstd kB", "zstd/H", "zstd/H_MM"]
    if base is not None:
        size_head.append("old zstd/H")
    print_table(size_head, size_rows(real, base))

    sizes = [1_000_000] if args.quick else [1_000_000, 10_000_000]
    synthetic = {f"synthetic {n // 1_000_000}M": synthetic_update(n) for n in sizes}
    print("3. Large synthetic tensors (Gaussian, 4 K-1 M values per tensor)")
    print_table(speed_head, speed_rows(synthetic, (4, 8, 16), max(3, repeats // 3), base))
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
