"""Test structures: a molecule, a small triclinic periodic cell, a water box."""

import os
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.build import molecule

#: the tests' own labelled ethanol/methanol frames (tests/data/ethanol; GEOFF_DATA: a folder with the same files)
DATA = Path(os.environ.get("GEOFF_DATA", Path(__file__).resolve().parent / "data" / "ethanol"))
#: the large shared data sets beside the repository (../shared/data), for the few tests that need them
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if os.environ.get("CI") and not (DATA / "train.xyz").exists():
    raise RuntimeError(f"CI: the ethanol data is missing at {DATA}; tests that need it would be skipped.")

SPECIES = ["H", "C", "O"]
CUTOFF = 3.5


def ethanol(seed: int = 0) -> Atoms:
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.05, seed=seed)
    return atoms


def triclinic(seed: int = 0) -> Atoms:
    """6 atoms in a skewed cell whose heights (~2.6-3.1 Å) are below the cutoff (3.5 Å),
    so atoms see several images of each neighbour and of themselves."""
    rng = np.random.default_rng(seed)
    cell = np.array([[3.2, 0.0, 0.0], [0.9, 3.0, 0.0], [0.6, -0.7, 3.1]])
    frac = np.array([[0.0, 0.0, 0.0], [0.5, 0.1, 0.2], [0.2, 0.5, 0.6], [0.7, 0.6, 0.1],
                     [0.4, 0.8, 0.8], [0.85, 0.3, 0.55]])
    frac = frac + rng.normal(scale=0.02, size=frac.shape)
    return Atoms("HCOHCO", scaled_positions=frac, cell=cell, pbc=True)


def water_box(n_side: int = 2, seed: int = 0) -> Atoms:
    """n_side³ water molecules on a jittered grid in a cubic periodic box (~1 g/cm³)."""
    rng = np.random.default_rng(seed)
    spacing = 3.1
    water = molecule("H2O")
    atoms = Atoms(cell=np.eye(3) * spacing * n_side, pbc=True)
    for ix in range(n_side):
        for iy in range(n_side):
            for iz in range(n_side):
                w = water.copy()
                w.rotate(rng.uniform(0, 360), rng.normal(size=3))
                w.translate(np.array([ix, iy, iz]) * spacing + rng.normal(scale=0.1, size=3))
                atoms += w
    return atoms


def random_rotation(rng, proper: bool = True) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if (np.linalg.det(q) > 0) != proper:
        q[:, 0] *= -1
    return q


def edge_inputs(model, atoms, dtype=torch.float64):
    """(species [N], edge_index [2, E], edge vectors [E, 3] Å) of one structure, periodic shifts included:
    the arguments of a potential's ``atomic_energies`` / ``features``."""
    from geoff import keys, structures_to_graph

    g = structures_to_graph([atoms], model.cutoff, dtype=dtype)
    pos, ei = g[keys.POSITIONS], g[keys.EDGE_INDEX]
    vec = pos[ei[1]] - pos[ei[0]] + g[keys.EDGE_SHIFTS] @ g[keys.CELL][0]
    return model.species_of(g[keys.ATOMIC_NUMBERS]), ei, vec


def random_box(n, cell, seed=0, min_dist=1.1):
    """n atoms (H, C, O) at random in a periodic cell, no two closer than min_dist Å (minimum image)."""
    rng = np.random.default_rng(seed)
    positions = []
    while len(positions) < n:
        p = rng.uniform(size=3) @ cell
        probe = Atoms(positions=positions + [p], cell=cell, pbc=True)
        if not positions or probe.get_distances(len(positions), range(len(positions)), mic=True).min() > min_dist:
            positions.append(p)
    return Atoms(numbers=rng.choice([1, 6, 8], size=n), positions=positions, cell=cell, pbc=True)
