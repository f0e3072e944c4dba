"""Training throughput: configurations per second of geoff's training step.

    .venv/bin/python benchmarks/training_throughput.py                      # shipped EGNN size, ethanol
    .venv/bin/python benchmarks/training_throughput.py --model se3 --steps 20
    .venv/bin/python benchmarks/training_throughput.py --batch-sizes 4 8 16 32 --threads 1 2
    .venv/bin/python benchmarks/training_throughput.py --compile --threads 1 --no-ddp --batch-sizes 8

One row per (threads, batch size): the full training step of ``geoff train``
(energy + forces forward, the force loss's double backward, AdamW, EMA) on the
950 ethanol training configurations of ../shared/data/ethanol/train.xyz with their
neighbour lists precomputed, as ``Trainer.train_step`` runs it. A row "DDP 2×1"
runs the same global batch split over two processes of one thread each
(``torchrun --nproc_per_node 2``, gloo), which is how ``geoff train`` uses two cores
with data parallelism. Prints a markdown table: ms per step, configurations per
second, epochs (950 configurations) per minute. Timings exclude the first
``--warmup`` steps.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from systems import DATA  # noqa: E402

SIZES = {
    "egnn": {"type": "egnn", "cutoff": 5.0, "hidden": 64, "num_layers": 4, "num_basis": 8},
    "se3": {"type": "se3_transformer", "cutoff": 5.0, "parity_even": True},
}


def _config(model: str, batch_size: int) -> dict:
    return {
        "run_dir": tempfile.mkdtemp(prefix="geoff-throughput-"), "seed": 0, "progress": False, "plots": False,
        "data": {"train": os.path.join(DATA, "ethanol", "train.xyz"), "n_train": 950, "n_valid": 50,
                 "isolated_atoms": os.path.join(DATA, "ethanol", "isolated_atoms.xyz")},
        "model": dict(SIZES[model]),
        "loss": {"energy_weight": 5.0, "forces_weight": 1.0},
        "optim": {"batch_size": batch_size, "warmup_steps": 0, "lr": 1e-3},
    }


def measure(model: str, batch_size: int, steps: int, warmup: int, compile: bool = False) -> dict:
    """ms per training step in this process (rank/world from torchrun when set).

    ``compile``: the per-atom energy network goes through ``torch.compile`` (dynamic shapes); forces
    and the force loss's double backward stay in autograd around it. Returns the error text instead
    of timings when the step fails (torch 2.9: AOTAutograd has no double backward)."""
    import numpy as np
    import torch

    from geoff.training.config import make_config
    from geoff.training.setup import prepare
    from geoff.training.trainer import Trainer, distributed_context

    rank, world = distributed_context()
    cfg = make_config(_config(model, batch_size))
    torch.manual_seed(0)
    data, net = prepare(cfg)
    if compile:
        import torch._functorch.config as functorch_config

        functorch_config.donated_buffer = False  # else the first error is about donated buffers
        net.atomic_energies_raw = torch.compile(net.atomic_energies_raw, dynamic=True)
    trainer = Trainer(cfg, net, data, rank, world)
    order = np.random.default_rng(0).permutation(len(data.train))
    times = []
    for k in range(warmup + steps):
        idx = order[(k * batch_size) % (len(order) - batch_size):][:batch_size]
        t0 = time.perf_counter()
        try:
            trainer.train_step(idx)
        except RuntimeError as exc:
            return {"error": str(exc).strip().splitlines()[-1], "rank": rank}
        times.append(time.perf_counter() - t0)
    ms = 1e3 * float(np.median(times[warmup:]))
    return {"ms_per_step": ms, "configs_per_s": batch_size / ms * 1e3,
            "epochs_per_min": 60.0 * batch_size / ms * 1e3 / len(data.train), "rank": rank}


def run_single(args, threads: int, batch_size: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=ROOT)
    cmd = [sys.executable, __file__, "--worker", "--model", args.model, "--batch-sizes", str(batch_size),
           "--steps", str(args.steps), "--warmup", str(args.warmup)] + (["--compile"] if args.compile else [])
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_ddp(args, batch_size: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT, GEOFF_DDP_BACKEND="gloo")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           __file__, "--worker", "--model", args.model, "--batch-sizes", str(batch_size),
           "--steps", str(args.steps), "--warmup", str(args.warmup)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [r for r in rows if r["rank"] == 0][0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(SIZES), default="egnn")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--no-ddp", action="store_true", help="skip the two-process data-parallel rows")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--compile", action="store_true", help="torch.compile the energy network inside the step")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(args.model, args.batch_sizes[0], args.steps, args.warmup, args.compile)), flush=True)
        return 0
    print(f"training step, {args.model} ({SIZES[args.model]}), ethanol 950 configurations, "
          f"median of {args.steps} steps; load average {os.getloadavg()[0]:.1f} at the start")
    print("| workers | batch | ms/step | configurations/s | epochs/min |")
    print("|---|---|---|---|---|")
    for bs in args.batch_sizes:
        rows = [(f"1 process × {t} thread{'s' if t > 1 else ''}", run_single(args, t, bs)) for t in args.threads]
        if not args.no_ddp:
            rows.append(("DDP 2 processes × 1 thread", run_ddp(args, bs)))
        for name, r in rows:
            if "error" in r:
                print(f"| {name}{' compiled' if args.compile else ''} | {bs} | fails: {r['error']} | – | – |",
                      flush=True)
                continue
            print(f"| {name} | {bs} | {r['ms_per_step']:.1f} | {r['configs_per_s']:.0f} | {r['epochs_per_min']:.2f} |",
                  flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
