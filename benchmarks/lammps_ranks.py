"""LAMMPS ``pair_style geoff`` on 1 and 2 MPI ranks next to geoff's own single-process path (ASE).

    OMP_NUM_THREADS=1 python benchmarks/lammps_ranks.py                      # water 1 536 and 6 144 atoms
    OMP_NUM_THREADS=1 python benchmarks/lammps_ranks.py --sizes 1536 6144 20736 62208 --max-gb 100

For each periodic water box (benchmarks/systems.py) and the shipped potential (float32, one torch
thread per rank): velocity-Verlet steps in LAMMPS on 1 and 2 ranks (one warm-up step, then
``--steps`` timed steps), and the same steps with geoff's ASE calculator in one process. Printed
and written to benchmarks/results/lammps-ranks.{md,json,png}, one row per run as it finishes:

- atom-steps/s from wall time and from CPU time (on a shared machine the CPU figure is the one
  that compares; the wall figure is what a user waits);
- ghost overhead: (local + ghost atoms) / local atoms per rank, from LAMMPS's own statistics, and
  each rank's domain (Å): the price of the exact scheme (ghost shell = layers × cutoff + skin);
- peak memory of the largest rank (GNU time, where /usr/bin/time exists).

A run whose estimated memory exceeds ``--max-gb`` is skipped and says so (estimate: atoms in one
rank's domain plus ghost shell × the memory per atom measured on the smallest run).
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from systems import WATER_VOLUME, water_box  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
SKIN = 2.0  # Å, LAMMPS's default neighbour skin in metal units
#: memory per atom of a rank's domain + ghost shell, GB, before the smallest run measures it
#: (measured here: 3.3 GB for 32 k atoms, the shipped 64 × 4 EGNN in float32, pruned layers)
GB_PER_ATOM_GUESS = 1.1e-4


def lammps_run(data: Path, model: Path, ranks: int, steps: int, folder: Path) -> dict:
    from geoff.lammps.build import build_plugin, lammps_executable, mpirun_executable, runtime_environment

    deck = f"""units metal
atom_style atomic
boundary p p p
read_data {data}
plugin load {build_plugin()}
pair_style geoff {model}
pair_coeff * * H O
velocity all create 300 4928459 dist gaussian
timestep 0.0005
fix nve all nve
thermo_style custom step temp pe etotal
run 1
run {steps} pre no
"""
    (folder / "in.bench").write_text(deck)
    env = runtime_environment()
    env["OMP_NUM_THREADS"] = "1"
    # each rank's peak memory through GNU time where it exists (getrusage of children keeps the maximum of
    # every earlier run as well)
    timer = ["/usr/bin/time", "-f", "peak-kb %M", "-a", "-o", "peak.txt"] if Path("/usr/bin/time").exists() else []
    done = subprocess.run([str(mpirun_executable()), "-np", str(ranks), *timer, str(lammps_executable()), "-in",
                           "in.bench", "-log", "log.bench", "-screen", "none"], cwd=folder, env=env,
                          capture_output=True, text=True)
    peaks = [float(v) for v in re.findall(r"peak-kb (\d+)", (folder / "peak.txt").read_text())] \
        if (folder / "peak.txt").exists() else []
    log = (folder / "log.bench").read_text() if (folder / "log.bench").exists() else ""
    if done.returncode != 0:
        raise RuntimeError(f"LAMMPS failed on {ranks} ranks:\n{log[-2000:]}\n{done.stderr[-2000:]}")
    loops = [float(m) for m in re.findall(r"Loop time of ([\d.e+-]+) on \d+ procs for \d+ steps", log)]
    nlocal = float(re.findall(r"Nlocal:\s+([\d.e+-]+) ave", log)[-1])
    nghost = float(re.findall(r"Nghost:\s+([\d.e+-]+) ave", log)[-1])
    cpu_use = float(re.findall(r"([\d.]+)% CPU use with \d+ MPI tasks", log)[-1])
    # CPU seconds of all ranks in the timed loop: its wall time × the ranks' mean CPU use
    return {"wall_s": loops[1], "nlocal": nlocal, "nghost": nghost, "cpu_loop_s": loops[1] * cpu_use / 100 * ranks,
            "cpu_use_percent": cpu_use, "peak_gb": max(peaks) / 1024 ** 2 if peaks else float("nan")}


def ase_run(atoms, potential, steps: int) -> dict:
    import torch
    from ase import units
    from ase.md.verlet import VelocityVerlet

    import geoff

    torch.set_num_threads(1)
    atoms = atoms.copy()
    atoms.calc = geoff.GeoffCalculator(potential)
    rng = np.random.default_rng(0)
    masses = atoms.get_masses()[:, None]
    atoms.set_momenta(rng.normal(size=(len(atoms), 3)) * np.sqrt(masses * units.kB * 300.0))
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    dyn.run(1)
    wall, cpu = time.perf_counter(), time.process_time()
    dyn.run(steps)
    return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}


def domain_atoms(n_atoms: int, ranks: int, layers: int, cutoff: float) -> float:
    """Atoms in one rank's domain plus ghost shell (cubic box split along one axis)."""
    side = (n_atoms / 3 * WATER_VOLUME) ** (1 / 3)
    shell = layers * cutoff + SKIN
    return n_atoms / side ** 3 * (side / ranks + 2 * shell) * (side + 2 * shell) ** 2


def write_tables(rows, meta, out: Path) -> None:
    from geoff.io import atomic_path

    lines = [f"# LAMMPS pair_style geoff on MPI ranks vs geoff's single-process path ({meta['date']})", "",
             f"Potential {meta['potential']} ({meta['dtype']}, {meta['layers']} layers × {meta['cutoff']} Å: ghost shell "
             f"{meta['ghost_cutoff']} Å), {meta['steps']} timed velocity-Verlet steps after one warm-up, one torch thread "
             f"per rank, machine: {meta['machine']}.", "",
             "| atoms | path | ranks | domain per rank (Å) | local+ghost / local | wall s/step | atom-steps/s (wall) "
             "| CPU s/step (all ranks) | atom-steps per CPU-s | peak GB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("skipped"):
            lines.append(f"| {r['atoms']} | {r['path']} | {r.get('ranks', '')} | | | skipped: {r['skipped']} | | | | |")
            continue
        lines.append(f"| {r['atoms']} | {r['path']} | {r.get('ranks', 1)} | {r.get('domain', '')} | "
                     f"{r.get('ghost_ratio', 1.0):.2f} | {r['wall_per_step']:.3g} | {r['atom_steps_wall']:.4g} | "
                     f"{r['cpu_per_step']:.3g} | {r['atom_steps_cpu']:.4g} | {r.get('peak_gb', float('nan')):.2f} |")
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    with atomic_path(out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


def plot(rows, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from geoff.io import atomic_path

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, key in (("geoff / ASE, 1 process", ("ase", 1)), ("LAMMPS, 1 rank", ("lammps", 1)),
                       ("LAMMPS, 2 ranks", ("lammps", 2))):
        pts = sorted((r["atoms"], r["atom_steps_cpu"]) for r in rows
                     if not r.get("skipped") and (r["path"], r.get("ranks", 1)) == key)
        if pts:
            ax.plot(*zip(*pts), "o-", label=label)
    ax.set_xscale("log")
    ax.set_xlabel("atoms (periodic water box)")
    ax.set_ylabel("atom-steps per CPU-second")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(out.with_suffix(".png")) as tmp:
        fig.savefig(tmp, format="png", dpi=120)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1536, 6144])
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--potential", default=str(ROOT / "potentials" / "ethanol-egnn" / "ethanol-egnn.pt"))
    p.add_argument("--max-gb", type=float, default=10.0, help="skip runs estimated to need more memory (GB)")
    p.add_argument("--no-ase", action="store_true", help="skip geoff's own single-process path")
    p.add_argument("--out", default=str(RESULTS / "lammps-ranks"))
    args = p.parse_args(argv)

    import geoff
    from geoff.lammps import export
    from geoff.lammps.data import write_data

    potential = geoff.load(args.potential)
    layers, cutoff = potential.message_passing_layers(), potential.cutoff
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "potential": Path(args.potential).stem,
            "dtype": str(potential.reference_energies.dtype).replace("torch.", ""), "layers": layers,
            "cutoff": cutoff, "ghost_cutoff": layers * cutoff + SKIN, "steps": args.steps,
            "machine": f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start"}
    out = Path(args.out)
    rows = []
    gb_per_atom = GB_PER_ATOM_GUESS
    with tempfile.TemporaryDirectory(prefix="geoff-lammps-bench-") as tmp:
        tmp = Path(tmp)
        model = export(potential, tmp / "model.pt")
        for n in args.sizes:
            atoms = water_box(n // 3)
            data = write_data(atoms, tmp / f"water-{n}.data", ["H", "O"], velocities=False)
            side = float(atoms.cell[0, 0])
            for ranks in args.ranks:
                per_rank = domain_atoms(n, ranks, layers, cutoff)
                need = per_rank * ranks * gb_per_atom
                row = {"atoms": n, "path": "lammps", "ranks": ranks,
                       "domain": f"{side / ranks:.1f} × {side:.1f} × {side:.1f}"}
                if need > args.max_gb:
                    row["skipped"] = f"needs ~{need:.0f} GB (--max-gb {args.max_gb:g})"
                else:
                    folder = tmp / f"run-{n}-{ranks}"
                    folder.mkdir()
                    res = lammps_run(data, model, ranks, args.steps, folder)
                    ghost_ratio = (res["nlocal"] + res["nghost"]) / res["nlocal"]
                    if math.isfinite(res["peak_gb"]):
                        gb_per_atom = max(gb_per_atom if rows else 0.0,
                                          res["peak_gb"] / (res["nlocal"] + res["nghost"]))
                    row.update(ghost_ratio=ghost_ratio, wall_per_step=res["wall_s"] / args.steps,
                               atom_steps_wall=n * args.steps / res["wall_s"], peak_gb=res["peak_gb"],
                               cpu_per_step=res["cpu_loop_s"] / args.steps, cpu_use_percent=res["cpu_use_percent"],
                               nlocal=res["nlocal"], nghost=res["nghost"])
                    row["atom_steps_cpu"] = n / row["cpu_per_step"]
                rows.append(row)
                print(json.dumps(row), flush=True)
                write_tables(rows, meta, out)
            if not args.no_ase:
                res = ase_run(atoms, potential, args.steps)
                row = {"atoms": n, "path": "ase", "ranks": 1, "domain": f"{side:.1f}³ (whole box)",
                       "wall_per_step": res["wall_s"] / args.steps, "atom_steps_wall": n * args.steps / res["wall_s"],
                       "cpu_per_step": res["cpu_s"] / args.steps, "atom_steps_cpu": n * args.steps / res["cpu_s"]}
                rows.append(row)
                print(json.dumps(row), flush=True)
                write_tables(rows, meta, out)
    plot(rows, out)
    print((out.with_suffix(".md")).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
