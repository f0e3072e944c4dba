"""MD stability of a potential on ethanol: NVT at 300 K, then NVE, checking bonds and energy drift.

Run (the model card's figures: 100 ps NVT + 10 ps NVE, ~20-30 min on 2 cores):
    .venv/bin/python integration/ethanol_stability.py --potential ethanol-egnn --nvt-ps 100 --nve-ps 10
Quick check:
    .venv/bin/python integration/ethanol_stability.py --nvt-ps 1 --nve-ps 1

Prints and writes (to --output) stability.json and stability.png: the largest bond stretch
relative to the starting bond lengths, whether the bonding graph ever changed (a bond broke
or formed), the temperature, and the NVE total-energy drift in meV/atom/ps.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase import units
from ase.build import molecule
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from ase.md.verlet import VelocityVerlet
from ase.neighborlist import natural_cutoffs, neighbor_list
from tqdm.auto import tqdm

import geoff
from geoff.md.log import energy_drift
from geoff.io import atomic_path


def bonds(atoms):
    i, j = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=1.2))
    return {(a, b) for a, b in zip(i, j) if a < b}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--potential", default="ethanol-egnn")
    p.add_argument("--nvt-ps", type=float, default=100.0)
    p.add_argument("--nve-ps", type=float, default=10.0)
    p.add_argument("--timestep", type=float, default=0.5, help="fs")
    p.add_argument("--temperature", type=float, default=300.0)
    p.add_argument("--output", default="runs/ethanol-stability")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)

    atoms = molecule("CH3CH2OH")
    atoms.calc = geoff.GeoffCalculator(args.potential)
    rng = np.random.default_rng(args.seed)
    thermalize_momenta(atoms, temperature_K=args.temperature, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)
    ref_bonds = bonds(atoms)
    pairs = np.array(sorted(ref_bonds))
    d0 = atoms.get_distances(pairs[:, 0], pairs[:, 1]) if len(pairs) else np.zeros(0)
    every = 20
    n_nvt = int(round(args.nvt_ps * 1000 / args.timestep))
    n_nve = int(round(args.nve_ps * 1000 / args.timestep))
    log = {"t_ps": [], "T": [], "etot": [], "max_stretch": [], "phase": []}
    broken_at = None

    def sample(phase, step):
        nonlocal broken_at
        d = atoms.get_distances(pairs[:, 0], pairs[:, 1], mic=False)
        log["t_ps"].append(step * args.timestep / 1000)
        log["T"].append(atoms.get_temperature())
        log["etot"].append(atoms.get_total_energy())
        log["max_stretch"].append(float(np.max(np.abs(d / d0 - 1))))
        log["phase"].append(phase)
        if broken_at is None and bonds(atoms) != ref_bonds:
            broken_at = step * args.timestep / 1000

    t0 = time.perf_counter()
    nvt = Langevin(atoms, timestep=args.timestep * units.fs, temperature_K=args.temperature,
                   friction=0.01 / units.fs, fixcm=False, rng=rng)
    nve = VelocityVerlet(atoms, timestep=args.timestep * units.fs)
    with tqdm(total=n_nvt + n_nve, unit="step", desc="ethanol NVT then NVE") as bar:
        step = 0
        for dyn, n, phase in ((nvt, n_nvt, "nvt"), (nve, n_nve, "nve")):
            done = 0
            while done < n:
                k = min(every, n - done)
                dyn.run(k)
                done += k
                step += k
                sample(phase, step)
                bar.update(k)
    wall = time.perf_counter() - t0

    t = np.array(log["t_ps"])
    nve_mask = np.array(log["phase"]) == "nve"
    result = {
        "potential": str(args.potential),
        "nvt_ps": args.nvt_ps, "nve_ps": args.nve_ps, "timestep_fs": args.timestep,
        "mean_temperature_nvt_K": float(np.mean(np.array(log["T"])[~nve_mask])) if (~nve_mask).any() else None,
        "max_bond_stretch_fraction": float(np.max(log["max_stretch"])),
        "bonding_changed_at_ps": broken_at,
        "nve_drift_meV_per_atom_per_ps": energy_drift(t[nve_mask], np.array(log["etot"])[nve_mask], len(atoms))
        if nve_mask.sum() > 1 else None,
        "steps_per_s": (n_nvt + n_nve) / wall,
        "wall_s": wall,
    }
    with atomic_path(out / "stability.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(7, 8), sharex=True)
    axes[0].plot(t, log["T"])
    axes[0].set_ylabel("T / K")
    axes[1].plot(t, 100 * np.array(log["max_stretch"]))
    axes[1].set_ylabel("max bond stretch / %")
    axes[2].plot(t[nve_mask], 1000 * (np.array(log["etot"])[nve_mask] - log["etot"][int(np.argmax(nve_mask))])
                 / len(atoms))
    axes[2].set_ylabel("NVE E_tot − E_0 / meV/atom")
    axes[2].set_xlabel("time / ps")
    fig.suptitle(f"ethanol, {args.potential}: NVT {args.nvt_ps} ps then NVE {args.nve_ps} ps")
    fig.tight_layout()
    with atomic_path(out / "stability.png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    for k, v in result.items():
        print(f"{k:32s} {v}")
    print(f"wrote {out / 'stability.json'} and {out / 'stability.png'}")
    return 0 if broken_at is None else 1


if __name__ == "__main__":
    raise SystemExit(main())
