"""Many replicas at once: TorchSim's batched NVE vs. the same replicas stepped one by one with ASE.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/torchsim_replicas.py          # prints the table (~5 min)
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/torchsim_replicas.py --save   # + results/torchsim-replicas.*

Needs TorchSim (Python >= 3.12, ``pip install 'geoff[torchsim]'``). The potential is the shipped
ethanol-egnn (EGNN 64 × 4 layers, cutoff 5 Å, float32), the same on every path.

Cases: 1, 16, 64 and 256 ethanol replicas (9 atoms each, open boundaries; every replica rattled
by 0.05 Å and given its own 300 K velocities, seeded), and 8 periodic water boxes of 192 atoms
(benchmarks/systems.py, water-192, different seeds; run with the ethanol potential, its elements
are H, C, O: speed does not depend on the chemistry).

Paths (each its own default settings):
  torchsim (geoff nl)     geoff.torchsim.GeoffModel(neighbour_list="geoff"): all replicas in one
                          SimState, one batched graph per step (torch-cluster for molecules, vesin
                          per cell for periodic boxes), TorchSim's nve_step (velocity Verlet).
  torchsim (torchsim nl)  the same with TorchSim's batched neighbour list (torchsim_nl).
  metatomic-torchsim      the exported metatomic file through metatomic_torchsim.MetatomicModel
                          (its own neighbour lists, one System per replica), same integrator.
  ase, one by one         geoff.GeoffCalculator (Verlet neighbour list, skin 0.5 Å) and ASE's
                          VelocityVerlet, replica after replica. Its cost per replica does not
                          depend on how many there are, so at most --ase-replicas of them are
                          timed (the "timed" column) and the throughput is theirs.

Every path: 0.5 fs, warm-up steps first (TorchScript profiling, allocator), then chunks of steps,
doubling until a chunk takes ≥ --seconds of CPU time. Throughput = steps × atoms / CPU second of
this process (one thread: OMP_NUM_THREADS=1 and torch.set_num_threads(1), so a shared machine's
load does not enter; wall time is kept in the JSON). "÷ ase" is a path's throughput over the ASE
path's in the same case, measured in the same run.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import systems  # noqa: E402  (benchmarks/systems.py)

TIMESTEP_FS = 0.5
CASES = [("ethanol", 1), ("ethanol", 16), ("ethanol", 64), ("ethanol", 256), ("water-192", 8)]
PATHS = ["torchsim (geoff nl)", "torchsim (torchsim nl)", "metatomic-torchsim", "ase, one by one"]


def replicas(name: str, count: int) -> List:
    """``count`` different copies of system ``name`` with 300 K velocities (seeded)."""
    from ase.md.velocitydistribution import thermalize_momenta

    out = []
    for k in range(count):
        atoms = systems.make_system("ethanol") if name == "ethanol" else systems.water_box(64, seed=k)
        if name == "ethanol":
            atoms.rattle(0.05, seed=k)
        thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(k))
        out.append(atoms)
    return out


def timed(path: Tuple[Callable[[], None], Callable[[int], None]], warmup: int, seconds: float
          ) -> Tuple[int, float, float]:
    """Warm up, then run chunks of doubling size until one takes ≥ ``seconds`` CPU time:
    (steps, CPU s, wall s) of that chunk. ``path`` is (reset, step): every chunk starts, untimed, from
    the same thermal start, so no chunk runs longer than itself (a potential outside its training
    data, such as ethanol-egnn on liquid water, would otherwise drift into unphysical geometries)."""
    reset, step = path
    reset()
    step(warmup)
    n = 1
    while True:
        reset()
        c0, w0 = time.process_time(), time.perf_counter()
        step(n)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        if cpu >= seconds or n >= 4096:
            return n, cpu, wall
        n *= 2


def torchsim_path(model, atoms_list) -> Tuple[Callable[[], None], Callable[[int], None]]:
    import torch_sim as ts
    from torch_sim.integrators.nve import nve_init, nve_step
    from ase import units

    dt = TIMESTEP_FS * units.fs
    holder = {}

    def reset() -> None:
        state = ts.initialize_state(atoms_list, device=torch.device("cpu"), dtype=torch.float32)
        state.momenta = torch.tensor(np.concatenate([a.get_momenta() for a in atoms_list]), dtype=torch.float32)
        holder["state"] = nve_init(state, model, kT=0.0)

    def step(n: int) -> None:
        for _ in range(n):
            holder["state"] = nve_step(holder["state"], model, dt=dt)
        assert torch.isfinite(holder["state"].positions).all()

    return reset, step


def ase_path(potential, atoms_list) -> Tuple[Callable[[], None], Callable[[int], None]]:
    from ase import units
    from ase.md.verlet import VelocityVerlet

    import geoff

    runs = []
    for atoms in atoms_list:
        a = atoms.copy()
        a.calc = geoff.GeoffCalculator(potential)
        runs.append(VelocityVerlet(a, timestep=TIMESTEP_FS * units.fs))

    def reset() -> None:
        for start, dyn in zip(atoms_list, runs):
            dyn.atoms.set_positions(start.positions)
            dyn.atoms.set_momenta(start.get_momenta())
            dyn.atoms.get_forces()  # the start's forces, as nve_init computes them for TorchSim

    def step(n: int) -> None:
        for dyn in runs:
            dyn.run(n)

    return reset, step


def measure(case: Tuple[str, int], paths: List[str], potential, metatomic_file, args) -> List[Dict[str, object]]:
    from geoff.torchsim import GeoffModel

    name, count = case
    atoms_list = replicas(name, count)
    n_atoms = sum(len(a) for a in atoms_list)
    rows = []
    for path in paths:
        timed_list = atoms_list
        if path.startswith("torchsim"):
            nl = "geoff" if "geoff nl" in path else "torchsim"
            path_fns = torchsim_path(GeoffModel(potential, device="cpu", neighbour_list=nl), atoms_list)
        elif path == "metatomic-torchsim":
            from metatomic_torchsim import MetatomicModel

            path_fns = torchsim_path(MetatomicModel(str(metatomic_file), device="cpu",
                                                    compute_stress=False), atoms_list)
        else:
            timed_list = atoms_list[:args.ase_replicas]
            path_fns = ase_path(potential, timed_list)
        steps, cpu, wall = timed(path_fns, args.warmup, args.seconds)
        atoms_timed = sum(len(a) for a in timed_list)
        rows.append({"system": name, "replicas": count, "atoms": n_atoms, "path": path,
                     "replicas_timed": len(timed_list), "steps": steps, "cpu_s": cpu, "wall_s": wall,
                     "ms_per_step": 1e3 * cpu / steps,
                     "atom_steps_per_s": steps * atoms_timed / cpu,
                     "wall_atom_steps_per_s": steps * atoms_timed / wall})
    ase = next((r for r in rows if r["path"] == "ase, one by one"), None)
    for r in rows:
        r["vs_ase"] = r["atom_steps_per_s"] / ase["atom_steps_per_s"] if ase else None
    return rows


def table(rows: List[Dict[str, object]], header: str) -> str:
    lines = [header, "",
             "| system | replicas | atoms | path | timed replicas | steps | ms/step (all timed) | steps × atoms / s | ÷ ase |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "1 (reference)" if r["path"] == "ase, one by one" else f"{r['vs_ase']:.2f}×"
        lines.append(f"| {r['system']} | {r['replicas']} | {r['atoms']} | {r['path']} | {r['replicas_timed']} | "
                     f"{r['steps']} | {r['ms_per_step']:.2f} | {r['atom_steps_per_s']:,.0f} | {ratio} |")
    return "\n".join(lines) + "\n"


def plot(rows: List[Dict[str, object]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = []
    for r in rows:
        if (r["system"], r["replicas"]) not in cases:
            cases.append((r["system"], r["replicas"]))
    paths = [p for p in PATHS if any(r["path"] == p for r in rows)]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.8 / len(paths)
    for k, p in enumerate(paths):
        values = [next((r["atom_steps_per_s"] for r in rows if (r["system"], r["replicas"]) == c and r["path"] == p),
                       np.nan) for c in cases]
        ax.bar(np.arange(len(cases)) + (k - (len(paths) - 1) / 2) * width, values, width, label=p)
    ax.set_xticks(np.arange(len(cases)), [f"{n} × {s}" for s, n in cases])
    ax.set_yscale("log")
    ax.set_ylabel("steps × atoms per CPU second")
    ax.set_title("ethanol-egnn NVE on one CPU thread: batched TorchSim vs. one-by-one ASE")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=2.0, help="CPU seconds of the timed chunk (default 2)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--ase-replicas", type=int, default=16, help="replicas timed on the ASE path (default 16)")
    p.add_argument("--potential", default="ethanol-egnn")
    p.add_argument("--save", action="store_true", help="write results/torchsim-replicas.{md,json,png}")
    args = p.parse_args(argv)

    torch.set_num_threads(1)
    from tqdm import tqdm

    import geoff

    potential = geoff.load(args.potential)
    paths = list(PATHS)
    try:
        import geoff.metatomic
        import metatomic_torchsim  # noqa: F401
    except ImportError:
        paths.remove("metatomic-torchsim")
    with tempfile.TemporaryDirectory() as tmp:
        metatomic_file = None
        if "metatomic-torchsim" in paths:
            metatomic_file = geoff.metatomic.export(potential, Path(tmp) / "model.pt")
        rows = []
        for case in tqdm(CASES, desc="cases", file=sys.stderr):
            rows.extend(measure(case, paths, potential, metatomic_file, args))

    import torch_sim
    from geoff.graph.build import HAVE_TORCH_CLUSTER

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = (f"# TorchSim replicas vs. one-by-one ASE\n\n"
              f"`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/torchsim_replicas.py --save`\n\n"
              f"{args.potential} (float32), NVE 0.5 fs, one CPU thread, throughput from process CPU time; "
              f"torch {torch.__version__}, torch-sim {torch_sim.__version__}, geoff {geoff.__version__}, "
              f"Python {platform.python_version()}; geoff nl for molecules: "
              f"{'torch-cluster' if HAVE_TORCH_CLUSTER else 'vesin (torch-cluster not installed)'}; "
              f"{now}, {platform.node()}, {os.cpu_count()} cores (shared)")
    text = table(rows, header)
    print(text)
    if args.save:
        out = HERE / "results"
        (out / "torchsim-replicas.md").write_text(text + "\n![throughput](torchsim-replicas.png)\n")
        (out / "torchsim-replicas.json").write_text(json.dumps({"rows": rows, "args": vars(args)}, indent=1))
        plot(rows, out / "torchsim-replicas.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
