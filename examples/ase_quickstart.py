"""geoff in ASE: single point, geometry optimisation and a short MD run.

Run:  .venv/bin/python examples/ase_quickstart.py [--potential ethanol-egnn] [--steps 200]
"""

import argparse

import numpy as np
from ase import units
from ase.build import molecule
from ase.md.velocitydistribution import thermalize_momenta
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS

import geoff


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--potential", default="ethanol-egnn", help="shipped name or path to a .pt file")
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()

    atoms = molecule("CH3CH2OH")
    atoms.calc = geoff.GeoffCalculator(args.potential, device="cpu")

    # single point
    print(f"energy {atoms.get_potential_energy():.4f} eV, max |F| {np.abs(atoms.get_forces()).max():.4f} eV/Å")

    # relax
    BFGS(atoms, logfile=None).run(fmax=0.01, steps=200)
    print(f"relaxed: energy {atoms.get_potential_energy():.4f} eV, max |F| {np.abs(atoms.get_forces()).max():.4f}")

    # NVE MD at 0.5 fs from 300 K velocities
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(0))
    dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
    e0 = atoms.get_total_energy()
    dyn.run(args.steps)
    print(f"{args.steps} NVE steps: total energy changed by {1000 * (atoms.get_total_energy() - e0) / len(atoms):+.4f}"
          f" meV/atom, T = {atoms.get_temperature():.0f} K")


if __name__ == "__main__":
    main()
