"""Timing and memory harness shared by geoff's worker and the peer runners.

One measurement = one (model, system, path) in a fresh process, so that peak
memory is that cell's alone. The process prints one line ``RESULT {json}`` that
benchmarks/run.py collects. This module imports neither geoff nor any peer, so
both environments (.venv and benchmarks/.venv-peers) can use it.

Timing: ``warmup`` untimed steps (TorchScript / allocator warm-up), then steps
until ``repeats`` are done or ``max_seconds`` have passed (at least one timed
step); the median wall time of one step is reported, in ms.

Memory: peak resident set size of the process (``ru_maxrss``) after the timed
steps minus the resident set size just before the first step, MiB: the extra
memory one step needs on top of the loaded model and structure (Linux).
"""

import argparse
import json
import os
import resource
import sys
import time
import traceback
from typing import Callable, Dict, List, Optional

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def rss_mib() -> float:
    """Current resident set size of this process, MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_steps(step: Callable[[], None], warmup: int, repeats: int, max_seconds: float) -> Dict[str, object]:
    """Run ``step`` and return median ms, the timed samples and the memory numbers."""
    rss0 = rss_mib()
    t_start = time.perf_counter()
    for _ in range(warmup):
        step()
        if time.perf_counter() - t_start > max_seconds:
            break
    samples: List[float] = []
    t_start = time.perf_counter()
    while len(samples) < repeats:
        t0 = time.perf_counter()
        step()
        samples.append(time.perf_counter() - t0)
        if time.perf_counter() - t_start > max_seconds:
            break
    ms = 1e3 * float(np.median(samples))
    return {"ms": ms, "samples": len(samples), "ms_min": 1e3 * float(np.min(samples)),
            "rss_before_mib": rss0, "peak_mib": max(0.0, peak_rss_mib() - rss0)}


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True)
    parser.add_argument("--system", required=True)
    parser.add_argument("--path", default="torch", choices=["torch", "ase", "openmm", "openmm-py"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--max-seconds", type=float, default=10.0)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--device", default="cpu")


def emit(result: Dict[str, object]) -> None:
    print("RESULT " + json.dumps(result), flush=True)


def run_cell(args, build: Callable[[object], Dict[str, object]]) -> int:
    """Build the step with ``build(args)`` and time it; print RESULT (or an error RESULT)."""
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, HERE)
    base = {"model": args.model, "system": args.system, "path": args.path, "threads": args.threads,
            "dtype": args.dtype, "device": args.device, "torch": torch.__version__}
    try:
        cell = build(args)
        step = cell.pop("step")
        timing = time_steps(step, args.warmup, args.repeats, args.max_seconds)
        if args.device.startswith("cuda"):
            timing["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
        emit({**base, **cell, **timing, "ok": True})
        return 0
    except Exception as exc:  # report, never crash the whole table
        msg = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:300]
        traceback.print_exc(file=sys.stderr)
        emit({**base, "ok": False, "error": msg})
        return 1


def jitter(atoms, rng: Optional[np.random.Generator] = None, scale: float = 1e-3) -> None:
    """Move every atom by up to ``scale`` Å so no step sees identical input."""
    rng = rng or np.random.default_rng(0)
    atoms.positions = atoms.positions + rng.uniform(-scale, scale, size=atoms.positions.shape)
