"""Benchmark systems, built deterministically from numpy + ASE only.

This module is imported both by geoff's benchmark worker and by the peer
runners in their own environment (benchmarks/.venv-peers), so it must not
import geoff or torch. Every system is an ``ase.Atoms`` in Å.

Systems (name -> what):
    ethanol            9 atoms, first configuration of ../shared/data/ethanol/test_MD.xyz
                       (ASE's g2 ethanol when the data set is not there)
    acetylacetone      15 atoms, enol form, planar skeleton (hand-built, bond lengths
                       within ~0.05 Å of the usual values; geometry only matters for speed)
    cluster-100        99 atoms: the 33 water molecules nearest the centre of a water box, open boundaries
    cluster-1000       999 atoms (333 waters), open boundaries
    cluster-10000      9 999 atoms (3 333 waters), open boundaries
    water-1536         512 waters, periodic, 1.0 g/cm³ (24.8 Å cube)
    water-6144         2 048 waters, periodic
    water-20736        6 912 waters, periodic
    water-N            any number of atoms divisible by 3 (periodic water box)

Water boxes: molecules on a simple lattice whose spacing gives 1.0 g/cm³
(29.9 Å³ per molecule), each with a random orientation and a 0.1 Å random
displacement (seeded), O–H 0.9572 Å, H–O–H 104.52° (TIP3P geometry). A 5 Å
cutoff then sees ~ 50 neighbours per atom, as in liquid water.
"""

import math
import os
from typing import Dict, List, Tuple

import numpy as np
from ase import Atoms

DATA = os.environ.get("GEOFF_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
WATER_VOLUME = 18.01528 / (1.0 * 6.02214076e23) * 1e24  # Å³ per molecule at 1.0 g/cm³ (29.9)

#: The systems of the default table, in order of size.
DEFAULT_SYSTEMS = ["ethanol", "acetylacetone", "cluster-100", "cluster-1000", "water-1536", "water-6144",
                   "cluster-10000", "water-20736", "water-62208"]
QUICK_SYSTEMS = ["ethanol", "acetylacetone", "water-1536"]


def ethanol() -> Atoms:
    path = os.path.join(DATA, "ethanol", "test_MD.xyz")
    if os.path.exists(path):
        from ase.io import read

        atoms = read(path, index=0)
        return Atoms(atoms.numbers, positions=atoms.positions)
    from ase.build import molecule

    return molecule("CH3CH2OH")


def acetylacetone() -> Atoms:
    """CH3–C(OH)=CH–C(=O)–CH3, the enol tautomer (C5H8O2, 15 atoms)."""
    sym = ["C", "H", "C", "C", "O", "O", "H", "C", "C"]
    pos = [
        (0.00, 1.20, 0.0),    # central C
        (0.00, 2.28, 0.0),    # its H
        (-1.22, 0.50, 0.0),   # C(OH)
        (1.22, 0.50, 0.0),    # C(=O)
        (-1.25, -0.83, 0.0),  # O(H)
        (1.25, -0.83, 0.0),   # O
        (0.00, -1.20, 0.0),   # enol H (intramolecular H-bond)
        (-2.55, 1.22, 0.0),   # methyl C
        (2.55, 1.22, 0.0),    # methyl C
    ]
    for side in (-1.0, 1.0):
        cx = 2.55 * side
        sym += ["H", "H", "H"]
        pos += [(cx + 0.83 * side, 0.51, 0.0), (cx + 0.07 * side, 1.87, 0.88), (cx + 0.07 * side, 1.87, -0.88)]
    return Atoms(sym, positions=pos)


def _water_molecule() -> np.ndarray:
    """O, H, H positions of one TIP3P-geometry water with O at the origin, Å [3, 3]."""
    r, theta = 0.9572, math.radians(104.52)
    return np.array([
        [0.0, 0.0, 0.0],
        [r, 0.0, 0.0],
        [r * math.cos(theta), r * math.sin(theta), 0.0],
    ])


def _random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    """[n, 3, 3] uniformly random rotation matrices (from unit quaternions)."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], axis=1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], axis=1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], axis=1),
    ], axis=1)


def _grid(n: int) -> Tuple[int, int, int]:
    """The most cubic (a, b, c), a ≤ b ≤ c, with a·b·c = n."""
    best = (1, 1, n)
    for a in range(1, int(round(n ** (1 / 3))) + 2):
        if n % a:
            continue
        for b in range(a, int(math.isqrt(n // a)) + 1):
            if (n // a) % b == 0:
                c = n // a // b
                if c >= b and c - a < best[2] - best[0]:
                    best = (a, b, c)
    return best


def water_box(n_molecules: int, seed: int = 0) -> Atoms:
    """Periodic box of ``n_molecules`` waters at 1.0 g/cm³ (see module docstring)."""
    rng = np.random.default_rng(seed)
    dims = np.array(_grid(n_molecules))
    spacing = WATER_VOLUME ** (1 / 3)
    idx = np.stack(np.meshgrid(*[np.arange(d) for d in dims], indexing="ij"), axis=-1).reshape(-1, 3)
    centres = (idx + 0.5) * spacing + rng.uniform(-0.1, 0.1, size=idx.shape)
    mol = _water_molecule() - _water_molecule().mean(axis=0)
    rot = _random_rotations(len(centres), rng)
    pos = centres[:, None, :] + np.einsum("mij,aj->mai", rot, mol)
    atoms = Atoms("OH2" * len(centres), positions=pos.reshape(-1, 3), cell=np.diag(dims * spacing), pbc=True)
    atoms.wrap()
    return atoms


def water_cluster(n_molecules: int, seed: int = 0) -> Atoms:
    """The ``n_molecules`` waters nearest the centre of a larger box, open boundaries."""
    side = int(math.ceil((2.2 * n_molecules) ** (1 / 3)))
    box = water_box(side ** 3, seed=seed)
    pos = box.positions.reshape(-1, 3, 3)
    # unwrap each molecule around its oxygen, then take the nearest to the box centre
    cell = np.diag(box.cell)
    pos = pos[:, :1] + (pos - pos[:, :1] + cell / 2) % cell - cell / 2
    d = np.linalg.norm(pos[:, 0] - cell / 2, axis=1)
    keep = np.sort(np.argsort(d, kind="stable")[:n_molecules])
    return Atoms("OH2" * n_molecules, positions=pos[keep].reshape(-1, 3))


def make_system(name: str) -> Atoms:
    """Build a system by name (see module docstring); raise ValueError naming the choices."""
    if name == "ethanol":
        return ethanol()
    if name == "acetylacetone":
        return acetylacetone()
    if name.startswith("cluster-"):
        n = int(name.split("-", 1)[1])
        return water_cluster(max(1, n // 3))
    if name.startswith("water-"):
        n = int(name.split("-", 1)[1])
        if n % 3:
            raise ValueError(f"water box {name}: the number of atoms must be divisible by 3.")
        return water_box(n // 3)
    raise ValueError(f"unknown system {name!r}; choose from {DEFAULT_SYSTEMS} or water-N / cluster-N.")


def describe(names: List[str]) -> Dict[str, Dict[str, object]]:
    """Atoms and periodicity of each named system (for the README)."""
    out = {}
    for n in names:
        a = make_system(n)
        out[n] = {"atoms": len(a), "formula": a.get_chemical_formula(), "periodic": bool(a.pbc.any()),
                  "cell": np.diag(a.cell).round(2).tolist() if a.pbc.any() else None}
    return out


if __name__ == "__main__":
    for name, d in describe(DEFAULT_SYSTEMS).items():
        print(f"{name:15s} {d['atoms']:6d} {d['formula']:12s} periodic={d['periodic']} cell={d['cell']}")
