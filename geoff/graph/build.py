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


def local_positions(positions, num_atoms=None) -> np.ndarray:
    """Positions [N, 3] Å relative to each structure's centroid, computed in float64.

    Energies and forces are translation invariant, so this changes no result, but it keeps the
    numbers that enter float32 arithmetic small: a molecule 10⁶ Å from the origin would otherwise
    lose all but ~0.06 Å of its geometry to float32 rounding (spacing of float32 near 10⁶).
    Structures are consecutive blocks of ``num_atoms`` [B] atoms (default: one structure).
    Periodic structures are translated, not wrapped, so edge shifts computed for the given
    positions stay valid.
    """
    positions = np.asarray(positions, dtype=np.float64)
    if num_atoms is None:
        num_atoms = [len(positions)]
    out = np.empty_like(positions)
    start = 0
    for n in np.asarray(num_atoms, dtype=np.int64).reshape(-1).tolist():
        block = positions[start:start + n]
        out[start:start + n] = block - block.mean(axis=0) if n else block
        start += n
    return out


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
    [3,3] and pbc [B,3] or [3] (default: open boundaries).

    The graph's positions are each structure's positions relative to its centroid
    (:func:`local_positions`, float64 before the cast to ``dtype``); edge shifts are those of
    the given positions (a translation changes none)."""
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

    graph = assemble_graph(positions, atomic_numbers, num_atoms, cell, pbc, dtype=dtype, device=device)
    add_edges(graph, cutoff, neighbours)
    return graph


def assemble_graph(positions, atomic_numbers, num_atoms, cell, pbc, edge_index=None, shifts=None, *,
                   dtype: torch.dtype = torch.float32, device: Union[str, torch.device] = "cpu") -> Dict[str, Tensor]:
    """The graph dict (``geoff.keys``) of already checked arrays: positions [N, 3] Å, atomic numbers [N],
    atoms per structure [B], cell [B, 3, 3] Å, pbc [B, 3], and optionally edges already found
    (edge_index [2, E] global atom indices, shifts [E, 3]; see :mod:`geoff.graph.neighbours`).

    Positions become each structure's positions relative to its centroid (:func:`local_positions`,
    float64 before the cast to ``dtype``)."""
    num_atoms = np.asarray(num_atoms, dtype=np.int64).reshape(-1)
    t = lambda a, dt=dtype: torch.as_tensor(a, dtype=dt, device=device)  # noqa: E731
    graph = {
        keys.POSITIONS: t(local_positions(positions, num_atoms)),
        keys.ATOMIC_NUMBERS: t(np.asarray(atomic_numbers, dtype=np.int64), torch.long),
        keys.NUM_ATOMS: t(num_atoms, torch.long),
        keys.BATCH: t(np.repeat(np.arange(len(num_atoms)), num_atoms), torch.long),
        keys.CELL: t(np.asarray(cell, dtype=np.float64).reshape(-1, 3, 3)),
        keys.PBC: t(np.asarray(pbc, dtype=bool).reshape(-1, 3), torch.bool),
    }
    if edge_index is not None:
        graph[keys.EDGE_INDEX] = t(edge_index, torch.long)
        graph[keys.EDGE_SHIFTS] = t(shifts)
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
    return {  # relative to the centroid, in float64 before any cast (see local_positions)
        keys.POSITIONS: torch.tensor(local_positions(positions), dtype=dtype, device=device),
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
        fixed = assemble_graph(np.zeros((n, 3)), np.zeros(n), [n], np.zeros((3, 3)), np.zeros(3, dtype=bool),
                               np.stack(np.nonzero(~np.eye(n, dtype=bool))), np.zeros((n * (n - 1), 3)),
                               dtype=dtype, device=device)
        del fixed[keys.POSITIONS], fixed[keys.ATOMIC_NUMBERS]
        _COMPLETE_GRAPHS[key] = fixed
    return _COMPLETE_GRAPHS[key]
