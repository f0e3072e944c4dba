"""A Verlet (skin) neighbour list: rebuild only when some atom has moved far enough.

Edges are found within ``cutoff + skin``. Every geoff model gives edges longer
than its cutoff exactly zero weight (the envelope is 0 there; tested for every
model), so the extra edges change nothing, and the list stays complete until an
atom has moved by more than skin / 2 since the last build.
"""

from typing import Dict, Optional

import numpy as np
import torch
from torch import Tensor

from .. import keys
from .build import structures_to_graph


class VerletNeighbourList:
    """Graph of one ASE ``Atoms``, with edges rebuilt only when needed.

    Args:
        cutoff: the model's cutoff, Å.
        skin: extra radius, Å (0 rebuilds on every call).
        dtype, device: of the graph's float tensors.
        neighbours: neighbour-list method for rebuilds (see NEIGHBOUR_METHODS).
    """

    def __init__(self, cutoff: float, skin: float = 0.5, dtype: torch.dtype = torch.float32,
                 device="cpu", neighbours: str = "auto"):
        self.cutoff = float(cutoff)
        self.skin = float(skin)
        self.dtype = dtype
        self.device = torch.device(device)
        self.neighbours = neighbours
        self.builds = 0
        self._graph: Optional[Dict[str, Tensor]] = None
        self._ref_positions: Optional[np.ndarray] = None
        self._ref_cell: Optional[np.ndarray] = None
        self._ref_numbers: Optional[np.ndarray] = None
        self._ref_pbc: Optional[np.ndarray] = None

    def _valid(self, atoms) -> bool:
        if self._graph is None or self.skin <= 0:
            return False
        if len(atoms) != len(self._ref_numbers) or not np.array_equal(atoms.numbers, self._ref_numbers):
            return False
        if not np.array_equal(atoms.pbc, self._ref_pbc) or not np.array_equal(atoms.cell[:], self._ref_cell):
            return False
        moved = np.max(np.linalg.norm(atoms.positions - self._ref_positions, axis=1))
        return bool(moved < 0.5 * self.skin)

    def graph(self, atoms) -> Dict[str, Tensor]:
        """The graph of ``atoms`` (positions always current; edges rebuilt when needed)."""
        if self._valid(atoms):
            from .build import validate_structure

            validate_structure(atoms.positions, atoms.cell[:], atoms.pbc, cutoff=self.cutoff + self.skin)
            graph = dict(self._graph)
            graph[keys.POSITIONS] = torch.tensor(atoms.positions, dtype=self.dtype, device=self.device)
            return graph
        graph = structures_to_graph([atoms], self.cutoff + self.skin, dtype=self.dtype, device=self.device,
                                    neighbours=self.neighbours)
        self._graph = graph
        self._ref_positions = atoms.positions.copy()
        self._ref_cell = atoms.cell[:].copy()
        self._ref_numbers = atoms.numbers.copy()
        self._ref_pbc = atoms.pbc.copy()
        self.builds += 1
        return graph
