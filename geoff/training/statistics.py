"""Dataset statistics that set a model's fixed scales before training.

- per-element reference energies E_ref[Z] (eV): from isolated-atom energies when
  given, else by least squares E_s ≈ Σ_Z n_sZ E_ref[Z] over the training set;
- the average number of neighbours within the cutoff (normalises EGNN's message
  sum, eq. 5 of Satorras et al. 2021);
- the force RMS (eV/Å), used as the energy scale of the network output (as in
  NequIP: a network output of order 1 then gives forces of the right size).
"""

from typing import Dict, List, Sequence

import numpy as np
from ase.data import chemical_symbols

from ..errors import GeoffInputError
from .data import Sample


def species_of(samples: Sequence[Sample]) -> List[str]:
    """Element symbols present, ordered by atomic number."""
    zs = sorted({int(z) for s in samples for z in s.numbers})
    return [chemical_symbols[z] for z in zs]


def least_squares_reference_energies(samples: Sequence[Sample], species: Sequence[str]) -> Dict[str, float]:
    """E_ref (eV) minimising Σ_s (E_s − Σ_Z n_sZ E_ref[Z])² over the samples with energies.

    Elements whose counts are linearly dependent (e.g. one molecule only: all
    structures share the composition) get the minimum-norm solution, which is
    still exact for the mean energy of every composition seen.
    """
    samples = [s for s in samples if s.energy is not None]
    if not samples:
        raise GeoffInputError("no energies to fit reference energies to; give isolated-atom energies "
                              "(data.isolated_atoms) or data with energies.")
    index = {sym: k for k, sym in enumerate(species)}
    counts = np.zeros((len(samples), len(species)))
    for r, s in enumerate(samples):
        for z in s.numbers:
            counts[r, index[chemical_symbols[int(z)]]] += 1
    energies = np.array([s.energy for s in samples])
    solution = np.linalg.lstsq(counts, energies, rcond=None)[0]
    return {sym: float(solution[k]) for sym, k in index.items() if counts[:, k].any()}


def average_num_neighbors(samples: Sequence[Sample]) -> float:
    """Mean number of edges per atom (samples need precomputed edges)."""
    edges = sum(s.edges[0].shape[1] for s in samples)
    atoms = sum(len(s) for s in samples)
    return float(edges) / max(atoms, 1)


def force_rms(samples: Sequence[Sample]) -> float:
    """Root mean square force component, eV/Å (1.0 when no forces are given)."""
    f = [s.forces.reshape(-1) for s in samples if s.forces is not None]
    if not f:
        return 1.0
    value = float(np.sqrt(np.mean(np.concatenate(f) ** 2)))
    return value if value > 1e-8 else 1.0
