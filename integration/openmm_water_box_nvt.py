"""A periodic water box in OpenMM, every atom by geoff: NVT (Langevin), printing ns/day and drift.

    .venv/bin/python integration/openmm_water_box_nvt.py --box-nm 2.0 --steps 2000
    .venv/bin/python integration/openmm_water_box_nvt.py --box-nm 5.0 --neighbour-list cells   # ~12 000 atoms

The box is filled with TIP3P-geometry water by OpenMM's Modeller (about 100
molecules per nm³). The potential must know H and O and its cutoff must be below
half the box; by default a random-weight EGNN (plumbing and speed, not physics).
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _openmm_common import pick_potential, report  # noqa: E402


def water_atoms(box_nm: float):
    """ASE Atoms of a cubic water box built by OpenMM's Modeller (Å, periodic)."""
    import numpy as np
    import openmm
    from ase import Atoms
    from openmm import app, unit

    ff = app.ForceField("amber14-all.xml", "amber14/tip3p.xml")
    modeller = app.Modeller(app.Topology(), [])
    modeller.addSolvent(ff, boxSize=openmm.Vec3(box_nm, box_nm, box_nm) * unit.nanometer)
    pos = np.asarray(modeller.positions.value_in_unit(unit.angstrom))
    numbers = [a.element.atomic_number for a in modeller.topology.atoms()]
    return Atoms(numbers=numbers, positions=pos, cell=np.eye(3) * box_nm * 10.0, pbc=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--potential", default="random")
    p.add_argument("--box-nm", type=float, default=1.6)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--timestep", type=float, default=0.5, help="fs")
    p.add_argument("--temperature", type=float, default=300.0)
    p.add_argument("--ensemble", choices=["nvt", "nve"], default="nvt")
    p.add_argument("--platform", default="CPU")
    p.add_argument("--backend", default="auto", choices=["auto", "torchforce", "pythonforce"])
    p.add_argument("--neighbour-list", default="auto", choices=["auto", "dense", "pairs", "cells"])
    p.add_argument("--output", default="runs/openmm-water")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    from geoff.openmm.md import run_openmm_md

    atoms = water_atoms(args.box_nm)
    pot = pick_potential(args.potential)
    res = run_openmm_md(atoms, pot, steps=args.steps, timestep_fs=args.timestep, temperature_k=args.temperature,
                        ensemble=args.ensemble, output_dir=args.output, log_every=max(1, args.steps // 100),
                        platform=args.platform, backend=args.backend, neighbour_list=args.neighbour_list,
                        progress=not args.no_progress)
    print(f"potential        {args.potential}")
    print(f"water box        {len(atoms)} atoms, {args.box_nm} nm, {args.ensemble.upper()}, "
          f"{args.steps} x {args.timestep} fs on {args.platform}")
    report(res, args.ensemble)
    return res


if __name__ == "__main__":
    main()
