"""Structures → geoff graphs (see ``geoff.keys`` for the tensors and shapes)."""

from typing import Dict, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from .. import keys
from ..errors import GeoffInputError
from .checks import validate_arrays
from .neighbours import all_pairs_edges, torch_cluster_edges, vesin_edges

NEIGHBOUR_METHODS = ("auto", "torch_cluster", "vesin", "all_pairs")

try:  # torch-cluster is optional at import time; "auto" uses it when present.
    import torch_cluster  # noqa: F401
    HAVE_TORCH_CLUSTER = True
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_TORCH_CLUSTER = False


def validate_structure(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, label: str = "structure",
                       cutoff: Optional[float] = None) -> None:
    """Raise :class:`GeoffInputError` for NaN/inf positions, a periodic axis without a cell, or a cell too
    thin for the neighbour search at ``cutoff`` Å (see :func:`geoff.graph.checks.validate_arrays`)."""
    validate_arrays(positions, cell, pbc, cutoff=cutoff, label=label)


def structures_to_graph(
    structures: Sequence,
    cutoff: float,
    dtype: torch.dtype = torch.float32,
    device: Union[str, torch.device] = "cpu",
    neighbours: str = "auto",
) -> Dict[str, Tensor]:
    """Batch ASE ``Atoms`` (or anything with the same getters) into one graph.

    Args:
        structures: sequence of ``ase.Atoms``.
        cutoff: neighbour cutoff radius r_c, Å.
        dtype: float dtype of positions, cell and shifts.
        neighbours: one of ``NEIGHBOUR_METHODS``.
    Returns:
        graph dict with POSITIONS [N,3], ATOMIC_NUMBERS [N], BATCH [N],
        NUM_ATOMS [B], CELL [B,3,3], PBC [B,3], EDGE_INDEX [2,E], EDGE_SHIFTS [E,3].
    """
    pos, numbers, cells, pbcs, counts = [], [], [], [], []
    for k, atoms in enumerate(structures):
        p = np.asarray(atoms.get_positions(), dtype=np.float64)
        c = np.asarray(atoms.get_cell()[:], dtype=np.float64)
        b = np.asarray(atoms.get_pbc(), dtype=bool)
        validate_structure(p, c, b, label=f"structure {k}", cutoff=cutoff)
        pos.append(p)
        numbers.append(np.asarray(atoms.get_atomic_numbers(), dtype=np.int64))
        cells.append(c)
        pbcs.append(b)
        counts.append(len(p))
    if not counts or min(counts) == 0:
        raise GeoffInputError("every structure needs at least one atom.")
    return arrays_to_graph(
        np.concatenate(pos), np.concatenate(numbers), np.asarray(counts), np.stack(cells), np.stack(pbcs),
        cutoff=cutoff, dtype=dtype, device=device, neighbours=neighbours,
    )


def arrays_to_graph(
    positions,
    atomic_numbers,
    num_atoms=None,
    cell=None,
    pbc=None,
    *,
    cutoff: float,
    dtype: torch.dtype = torch.float32,
    device: Union[str, torch.device] = "cpu",
    neighbours: str = "auto",
) -> Dict[str, Tensor]:
    """Build a graph from plain arrays: positions [N,3] Å, atomic numbers [N],
    optional atoms per structure [B] (default: one structure), cell [B,3,3] or
    [3,3] and pbc [B,3] or [3] (default: open boundaries)."""
    positions = np.asarray(positions, dtype=np.float64)
    atomic_numbers = np.asarray(atomic_numbers, dtype=np.int64).reshape(-1)
    if num_atoms is None:
        num_atoms = np.array([len(atomic_numbers)])
    num_atoms = np.asarray(num_atoms, dtype=np.int64).reshape(-1)
    n_struct = len(num_atoms)
    cell = np.zeros((n_struct, 3, 3)) if cell is None else np.asarray(cell, dtype=np.float64).reshape(-1, 3, 3)
    pbc = np.zeros((n_struct, 3), dtype=bool) if pbc is None else np.asarray(pbc, dtype=bool).reshape(-1, 3)
    if len(atomic_numbers) != len(positions) or num_atoms.sum() != len(positions):
        raise GeoffInputError(
            f"{len(positions)} positions, {len(atomic_numbers)} atomic numbers and "
            f"{int(num_atoms.sum())} atoms in num_atoms must agree."
        )
    start = 0
    for b, n in enumerate(num_atoms):
        validate_structure(positions[start:start + n], cell[b], pbc[b], label=f"structure {b}", cutoff=cutoff)
        start += n

    graph = {
        keys.POSITIONS: torch.tensor(positions, dtype=dtype, device=device),
        keys.ATOMIC_NUMBERS: torch.tensor(atomic_numbers, device=device),
        keys.NUM_ATOMS: torch.tensor(num_atoms, device=device),
        keys.BATCH: torch.repeat_interleave(torch.arange(n_struct, device=device), torch.tensor(num_atoms, device=device)),
        keys.CELL: torch.tensor(cell, dtype=dtype, device=device),
        keys.PBC: torch.tensor(pbc, device=device),
    }
    add_edges(graph, cutoff, neighbours)
    return graph


def add_edges(graph: Dict[str, Tensor], cutoff: float, method: str = "auto") -> Dict[str, Tensor]:
    """Compute EDGE_INDEX and EDGE_SHIFTS for ``graph`` in place (and return it)."""
    if method not in NEIGHBOUR_METHODS:
        raise ValueError(f"unknown neighbour method {method!r}; choose one of {NEIGHBOUR_METHODS}.")
    periodic = bool(graph[keys.PBC].any())
    if method == "auto":
        if periodic:
            method = "vesin"
        else:
            method = "torch_cluster" if HAVE_TORCH_CLUSTER else "vesin"
    if method == "torch_cluster":
        if periodic:
            raise ValueError("torch-cluster's radius_graph has no periodic images; use 'vesin' or 'all_pairs'.")
        edge_index, shifts = torch_cluster_edges(graph[keys.POSITIONS], graph[keys.BATCH], cutoff)
    elif method == "vesin":
        edge_index, shifts = vesin_edges(graph[keys.POSITIONS], graph[keys.NUM_ATOMS], graph[keys.CELL],
                                         graph[keys.PBC], cutoff)
    else:
        edge_index, shifts = all_pairs_edges(graph[keys.POSITIONS], graph[keys.BATCH], graph[keys.NUM_ATOMS],
                                             graph[keys.CELL], graph[keys.PBC], cutoff)
    graph[keys.EDGE_INDEX] = edge_index
    graph[keys.EDGE_SHIFTS] = shifts
    return graph


def complete_graph(
    positions, atomic_numbers, dtype: torch.dtype = torch.float32, device: Union[str, torch.device] = "cpu"
) -> Dict[str, Tensor]:
    """One open-boundary structure with *every* ordered pair (i ≠ j) as an edge.

    No neighbour search: for small molecules (tens of atoms) this is cheaper
    than any neighbour list, and its shapes depend only on N, which suits
    compiled kernels and CUDA graphs. Edges longer than the model's cutoff
    carry exactly zero weight (every geoff model's envelope is 0 there), so
    energies and forces equal those of the cutoff graph.

    Args: positions [N, 3] Å, atomic_numbers [N]. Returns the graph dict
    (``geoff.keys``) with E = N(N − 1) edges and zero shifts.
    """
    positions = np.asarray(positions, dtype=np.float64)
    atomic_numbers = np.asarray(atomic_numbers, dtype=np.int64).reshape(-1)
    validate_structure(positions, np.zeros((3, 3)), np.zeros(3, dtype=bool))
    n = len(positions)
    if n == 0 or len(atomic_numbers) != n:
        raise GeoffInputError(f"{n} positions and {len(atomic_numbers)} atomic numbers: need the same, at least one.")
    fixed = _complete_graph_edges(n, dtype, torch.device(device))
    return {
        keys.POSITIONS: torch.tensor(positions, dtype=dtype, device=device),
        keys.ATOMIC_NUMBERS: torch.tensor(atomic_numbers, device=device),
        **fixed,
    }


_COMPLETE_GRAPHS: Dict[tuple, Dict[str, Tensor]] = {}


def _complete_graph_edges(n: int, dtype: torch.dtype, device: torch.device) -> Dict[str, Tensor]:
    """The position-independent tensors of a complete graph, built once per (N, dtype, device):
    the same tensor objects every call, so downstream caches keyed on them stay valid."""
    key = (n, dtype, str(device))
    if key not in _COMPLETE_GRAPHS:
        if len(_COMPLETE_GRAPHS) > 64:
            _COMPLETE_GRAPHS.clear()
        i, j = np.nonzero(~np.eye(n, dtype=bool))
        _COMPLETE_GRAPHS[key] = {
            keys.NUM_ATOMS: torch.tensor([n], device=device),
            keys.BATCH: torch.zeros(n, dtype=torch.long, device=device),
            keys.CELL: torch.zeros((1, 3, 3), dtype=dtype, device=device),
            keys.PBC: torch.zeros((1, 3), dtype=torch.bool, device=device),
            keys.EDGE_INDEX: torch.tensor(np.stack([i, j]), dtype=torch.long, device=device),
            keys.EDGE_SHIFTS: torch.zeros((len(i), 3), dtype=dtype, device=device),
        }
    return _COMPLETE_GRAPHS[key]
