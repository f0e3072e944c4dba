"""Ethanol in OpenMM with a geoff potential: NVT (Langevin) or NVE, printing ns/day and drift.

    .venv/bin/python integration/openmm_ethanol_nvt.py --steps 20000 --platform CPU
    .venv/bin/python integration/openmm_ethanol_nvt.py --ensemble nve --timestep 0.25 --dtype float64

Uses the shipped ethanol-egnn potential when it exists (else a random-weight
EGNN: plumbing only). Writes trajectory.dcd, energies.csv and energies.png.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _openmm_common import default_potential, pick_potential, report  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--potential", default=default_potential())
    p.add_argument("--steps", type=int, default=10000)
    p.add_argument("--timestep", type=float, default=0.5, help="fs")
    p.add_argument("--temperature", type=float, default=300.0)
    p.add_argument("--ensemble", choices=["nvt", "nve"], default="nvt")
    p.add_argument("--platform", default="CPU")
    p.add_argument("--backend", default="auto", choices=["auto", "torchforce", "pythonforce"])
    p.add_argument("--dtype", default=None, choices=[None, "float32", "float64"])
    p.add_argument("--output", default="runs/openmm-ethanol")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    from ase.build import molecule

    from geoff.openmm.md import run_openmm_md

    pot = pick_potential(args.potential)
    res = run_openmm_md(molecule("CH3CH2OH"), pot, steps=args.steps, timestep_fs=args.timestep,
                        temperature_k=args.temperature, ensemble=args.ensemble, output_dir=args.output,
                        log_every=max(1, args.steps // 200), platform=args.platform, backend=args.backend,
                        dtype=args.dtype, progress=not args.no_progress)
    print(f"potential        {args.potential}")
    print(f"ethanol          9 atoms, {args.ensemble.upper()}, {args.steps} x {args.timestep} fs on {args.platform}")
    report(res, args.ensemble)
    return res


if __name__ == "__main__":
    main()
