"""Write an ASE structure as a LAMMPS data file (``atom_style atomic``, metal units), exactly.

Positions, the box and velocities are written with 17 significant digits, so LAMMPS
reads back the same float64 numbers. Atom type k is ``elements[k - 1]``: use the same
list in ``pair_coeff * * ...``.

Periodic structures must be periodic along all three axes with a cell in LAMMPS's
form (a along x, b in the xy plane: a lower-triangular cell matrix), so no rotation
is applied and forces compare one to one; ``ase.io.write(..., format="lammps-data")``
rotates any other cell. Open structures (no periodic axis) get a box around them with
a margin, for ``boundary f f f``.
"""

import os
from pathlib import Path
from typing import Sequence, Union

import numpy as np
from ase import units as ase_units
from ase.data import atomic_masses, atomic_numbers

from ..errors import GeoffInputError
from ..io import atomic_path

#: 1 Å/ps (LAMMPS metal velocity) in ASE's velocity unit (Å per ASE time unit)
ANGSTROM_PER_PS = 1.0 / (1000.0 * ase_units.fs)


def box_bounds(atoms, margin: float = 10.0):
    """(lo [3], hi [3], tilts (xy, xz, yz)) of the LAMMPS box for ``atoms`` (Å)."""
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.all():
        cell = np.asarray(atoms.cell[:], dtype=np.float64)
        if cell[0, 1] != 0.0 or cell[0, 2] != 0.0 or cell[1, 2] != 0.0:
            raise GeoffInputError("the cell is not in LAMMPS's form (a along x, b in the xy plane); rotate the "
                                  "structure first, or write it with ase.io.write(path, atoms, format='lammps-data').")
        if min(cell[0, 0], cell[1, 1], cell[2, 2]) <= 0.0:
            raise GeoffInputError("the cell's diagonal must be positive (a right-handed cell in LAMMPS's form).")
        return np.zeros(3), np.diag(cell).copy(), (cell[1, 0], cell[2, 0], cell[2, 1])
    if pbc.any():
        raise GeoffInputError(f"periodic along some axes only (pbc={pbc.tolist()}): write_data handles fully "
                              "periodic or fully open structures.")
    pos = atoms.positions
    return pos.min(0) - margin, pos.max(0) + margin, None


def write_data(atoms, path: Union[str, os.PathLike], elements: Sequence[str], velocities: bool = True,
               margin: float = 10.0) -> Path:
    """Write ``atoms`` to a LAMMPS data file (atomic style; velocities in Å/ps if ``velocities``).

    Args:
        atoms: an ``ase.Atoms``, fully periodic (cell in LAMMPS's form) or fully open.
        path: the data file (written atomically).
        elements: element of each atom type, in type order; must cover every element in ``atoms``.
        margin: Å of empty space around an open structure.
    """
    symbols = atoms.get_chemical_symbols()
    missing = sorted(set(symbols) - set(elements))
    if missing:
        raise GeoffInputError(f"elements {list(elements)} do not cover {missing}; add them to the type list.")
    lo, hi, tilt = box_bounds(atoms, margin)
    lines = ["LAMMPS data file written by geoff", "", f"{len(atoms)} atoms", f"{len(elements)} atom types", ""]
    for k, axis in enumerate("xyz"):
        lines.append(f"{lo[k]:.17g} {hi[k]:.17g} {axis}lo {axis}hi")
    if tilt is not None and any(t != 0.0 for t in tilt):  # orthogonal boxes stay orthogonal in LAMMPS
        lines.append(f"{tilt[0]:.17g} {tilt[1]:.17g} {tilt[2]:.17g} xy xz yz")
    lines += ["", "Masses", ""]
    lines += [f"{k + 1} {atomic_masses[atomic_numbers[e]]:.17g}  # {e}" for k, e in enumerate(elements)]
    lines += ["", "Atoms  # atomic", ""]
    types = [list(elements).index(s) + 1 for s in symbols]
    for i, (t, p) in enumerate(zip(types, atoms.positions)):
        lines.append(f"{i + 1} {t} {p[0]:.17g} {p[1]:.17g} {p[2]:.17g}")
    if velocities:
        v = atoms.get_velocities() / ANGSTROM_PER_PS
        lines += ["", "Velocities", ""]
        lines += [f"{i + 1} {w[0]:.17g} {w[1]:.17g} {w[2]:.17g}" for i, w in enumerate(v)]
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path
