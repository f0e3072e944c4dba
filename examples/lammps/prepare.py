"""Write the inputs of in.ethanol: the model file for pair_style geoff and a periodic box of ethanol.

    python examples/lammps/prepare.py            # writes ethanol-lammps.pt and ethanol-gas.data here
    geoff lammps run -np 2 examples/lammps/in.ethanol

The box holds 8 ethanol molecules (72 atoms) 12 Å apart in a 24 Å periodic cell: gas-phase
molecules, the conditions the shipped ethanol-egnn potential was trained on.
"""

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import molecule

import geoff.lammps
from geoff.lammps.data import write_data

HERE = Path(__file__).resolve().parent


def ethanol_gas(per_side: int = 2, spacing: float = 12.0, seed: int = 0) -> Atoms:
    rng = np.random.default_rng(seed)
    box = Atoms(cell=np.eye(3) * per_side * spacing, pbc=True)
    for ix in range(per_side):
        for iy in range(per_side):
            for iz in range(per_side):
                mol = molecule("CH3CH2OH")
                mol.rotate(rng.uniform(0, 360), rng.normal(size=3), center="COM")
                mol.translate((np.array([ix, iy, iz]) + 0.5) * spacing - mol.get_center_of_mass())
                box += mol
    return box


if __name__ == "__main__":
    model = geoff.lammps.export("ethanol-egnn", HERE / "ethanol-lammps.pt")
    data = write_data(ethanol_gas(), HERE / "ethanol-gas.data", ["H", "C", "O"], velocities=False)
    print(f"wrote {model} and {data}")
