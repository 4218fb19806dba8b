#!/usr/bin/env python3
"""Benchmark of the update codec (greenfed.codec) against a naive numpy + zstd reference.

    .venv/bin/python scripts/bench_codec.py            # the table quoted in docs/codec.md
    .venv/bin/python scripts/bench_codec.py --quick    # 1 M parameters only, fewer repeats

Single thread (BLAS/OpenMP threads pinned to 1 before numpy loads). Throughputs are MB/s of
fp32 input (numel * 4 bytes, MB = 1e6 bytes), medians over --repeats runs. The machine is
shared: the load average is printed before and after so readers can judge the figures.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Callable, Dict, List, Optional, Tuple  # noqa: E402

import numpy as np  # noqa: E402
import zstandard  # noqa: E402

from greenfed.codec import CodecConfig, decode, encode  # noqa: E402
from greenfed.codec.quantize import quantize  # noqa: E402

MAX_FRAME, MAX_DECODED = 1 << 32, 1 << 33


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def synthetic_update(params: int, seed: int = 0) -> Dict[str, np.ndarray]:
    """Gaussian tensors with per-layer scales spread over two decades (like a UNet update):
    weight matrices of varied sizes plus small bias vectors."""
    rng = np.random.default_rng(seed)
    out: Dict[str, np.ndarray] = {}
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


def ddpm_state() -> Tuple[Optional[Dict[str, np.ndarray]], str]:
    try:
        import greenfed.ddpm as ddpm
    except ImportError as e:
        return None, f"greenfed.ddpm not importable ({e}): DDPM row skipped"
    try:
        model = ddpm.build_model(ddpm.preset("pi-base"), seed=0)
        arrays = ddpm.get_state_arrays(model)
    except Exception as e:  # the DDPM package is someone else's: report, do not fail
        return None, f"greenfed.ddpm present but building pi-base failed ({e!r}): row skipped"
    floats = {k: np.asarray(v, dtype=np.float32) for k, v in arrays.items() if v.dtype.kind == "f"}
    return floats, "DDPM row: pi-base UNet weights at initialisation (seed 0), float tensors"


def interleaved_times(fns: List[Callable[[], object]], repeats: int) -> List[List[float]]:
    """Wall times of each function over ``repeats`` rounds, run round-robin after one warm-up
    each, so the codec and the reference see the same background load (the machine is shared)."""
    for fn in fns:
        fn()
    times: List[List[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t)
    return times


def median_time(fn: Callable[[], object], repeats: int) -> float:
    return statistics.median(interleaved_times([fn], repeats)[0])


def entropy_bytes(sd: Dict[str, np.ndarray], bits: int, block: int) -> float:
    """Sum over tensors of n_t * H_t / 8: the order-0 empirical entropy of each tensor's
    quantized symbols (per tensor, which is tighter than one pooled histogram)."""
    total = 0.0
    bitgen = np.random.SFC64(0)
    for name, x in sd.items():
        sym = quantize(x, bits, block, bitgen, name).symbols
        counts = np.bincount(sym, minlength=1).astype(np.float64)
        p = counts[counts > 0] / sym.size
        total += sym.size * float(-(p * np.log2(p)).sum()) / 8.0
    return total


def naive_encode(sd: Dict[str, np.ndarray], bits: int, level: int) -> List[bytes]:
    """The reference: per tensor min/max, floor(x/Δ + U[0,1)) with float64 noise, one uint8
    (uint16 above 8 bits) per value, zstd."""
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


def naive_decode(blobs: List[bytes], sd: Dict[str, np.ndarray], bits: int) -> None:
    dctx = zstandard.ZstdDecompressor()
    dt = np.uint8 if bits <= 8 else np.uint16
    for blob, x in zip(blobs, sd.values()):
        s = np.frombuffer(dctx.decompress(blob), dtype=dt)
        _ = s.astype(np.float32) * np.float32(0.1) + np.float32(x.flat[0])


def row(label: str, sd: Dict[str, np.ndarray], bits: int, block: int, level: int,
        repeats: int) -> List[str]:  # fmt: skip
    numel = sum(v.size for v in sd.values())
    mb = numel * 4 / 1e6
    cfg = CodecConfig(bits=bits, block_size=block or None, zstd_level=level, seed=0)
    res = encode(sd, cfg)
    blobs = naive_encode(sd, bits, 3)
    enc, dec, n_enc, n_dec = interleaved_times(
        [
            functools.partial(encode, sd, cfg),
            functools.partial(
                decode, res.frame, max_frame_bytes=MAX_FRAME, max_decoded_bytes=MAX_DECODED
            ),
            functools.partial(naive_encode, sd, bits, 3),
            functools.partial(naive_decode, blobs, sd, bits),
        ],
        repeats,
    )
    t_enc, best_enc = statistics.median(enc), min(enc)
    t_dec, best_dec = statistics.median(dec), min(dec)
    t_naive, t_naive_dec = statistics.median(n_enc), statistics.median(n_dec)
    ent = entropy_bytes(sd, bits, block)
    header = res.frame_bytes - len(zstd_payload(res.frame))
    payload = len(zstd_payload(res.frame))
    naive_size = sum(len(b) for b in blobs)
    return [
        label, f"{bits}", f"{block or '-'}", f"{mb / t_enc:.0f}", f"{mb / best_enc:.0f}",
        f"{mb / t_dec:.0f}", f"{mb / best_dec:.0f}",
        f"{res.packed_bytes / 1e6:.3f}", f"{payload / 1e6:.3f}", f"{header}",
        f"{ent / 1e6:.3f}", f"{payload / ent:.3f}" if ent else "-",
        f"{mb / t_naive:.0f}", f"{t_naive / t_enc:.2f}", f"{mb / t_naive_dec:.0f}",
        f"{naive_size / 1e6:.3f}",
    ]  # fmt: skip


def zstd_payload(frame: bytes) -> bytes:
    manifest = int.from_bytes(frame[16:20], "little")
    stored = int.from_bytes(frame[32:40], "little")
    return frame[40 + manifest : 40 + manifest + stored]


HEAD = ["input", "bits", "block", "enc MB/s", "best", "dec MB/s", "best", "packed MB",
        "zstd MB", "hdr B", "H MB", "zstd/H", "naive enc", "enc/naive", "naive dec",
        "naive MB"]  # fmt: skip


def print_table(rows: List[List[str]]) -> None:
    widths = [max(len(r[i]) for r in [HEAD, *rows]) for i in range(len(HEAD))]
    for r in [HEAD, ["-" * w for w in widths], *rows]:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    sys.stdout.flush()


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 M parameters, 3 repeats")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--level", type=int, default=None, help="zstd level (default: codec's)")
    args = ap.parse_args(argv)
    from greenfed.codec import DEFAULT_ZSTD_LEVEL

    level = DEFAULT_ZSTD_LEVEL if args.level is None else args.level
    repeats = 3 if args.quick else args.repeats
    sizes = [1_000_000] if args.quick else [1_000_000, 10_000_000]
    print("command:", " ".join([os.path.basename(sys.executable), *sys.argv]))
    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, {platform.machine()}, "
          f"{platform.system()} {platform.release()}")  # fmt: skip
    print(f"versions: python {platform.python_version()}, numpy {np.__version__}, "
          f"zstandard {zstandard.__version__} (libzstd {zstandard.ZSTD_VERSION})")  # fmt: skip
    print(f"threads: 1 (OMP/OPENBLAS pinned); repeats: {repeats} (median); zstd level {level}")
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print()
    print("enc/dec MB/s: fp32 input bytes per second, median (best: fastest run, which other")
    print("processes on a shared machine disturb least); codec and naive runs are interleaved")
    print("round-robin so both see the same load; packed: bit-packed payload before zstd;")
    print("zstd: stored payload; hdr B: frame bytes besides the payload (header, manifest,")
    print("scales, sha256); H: sum over tensors of n*H/8, H the order-0 empirical entropy of the")
    print("tensor's symbols; naive: numpy floor(x/Δ+U) -> uint8 (uint16 > 8 bits) -> zstd -3.")
    print()
    rows: List[List[str]] = []
    for n in sizes:
        sd = synthetic_update(n)
        label = f"{n // 1_000_000}M"
        for bits in (1, 2, 4, 8, 16):
            rows.append(row(label, sd, bits, 0, level, repeats))
        rows.append(row(label, sd, 4, 4096, level, repeats))
    dd, note = ddpm_state()
    if dd is not None:
        label = f"ddpm {sum(v.size for v in dd.values()) / 1e6:.2f}M"
        for bits in (4, 8):
            rows.append(row(label, dd, bits, 0, level, repeats))
    print_table(rows)
    print(note)
    print()
    print("zstd level choice (largest size, 4 bits, per tensor):")
    sd = synthetic_update(sizes[-1])
    mb = sum(v.size for v in sd.values()) * 4 / 1e6
    for lv in (-1, 1, 3, 6, 9):
        cfg = CodecConfig(bits=4, zstd_level=lv, seed=0)
        res = encode(sd, cfg)
        t = median_time(functools.partial(encode, sd, cfg), repeats)
        print(f"  level {lv:>2}: zstd payload {len(zstd_payload(res.frame)) / 1e6:.4f} MB, "
              f"encode {mb / t:.0f} MB/s")  # fmt: skip
    print("load average at end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
