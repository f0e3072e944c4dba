"""Minimum-image neighbour searches of one structure: plain PyTorch, TorchScript-able
(the searches of the exported OpenMM module).

OpenMM's C++ runs the exported file without Python and without geoff, so
everything here uses only ``torch`` operators (no torch-cluster, no vesin).
Periodic systems use the minimum-image convention for OpenMM's *reduced*
triclinic boxes (a = (a_x, 0, 0), b = (b_x, b_y, 0), c = (c_x, c_y, c_z) with
a_x ≥ 2|b_x|, a_x ≥ 2|c_x|, b_y ≥ 2|c_y|), which OpenMM guarantees for every
box it passes; it is exact for pairs closer than half the smallest box height,
so the cutoff must be below that (checked when the system is created, and on
the CPU at every step).

Three strategies, one output in the package's convention (``edge_index`` [2, E] int64 and
``shifts`` [E, 3] in lattice vectors of ``box``, zeros without a box; r_ij from
:func:`geoff.graph.neighbours.edge_vectors`):

- :func:`dense_pairs`: every ordered pair i ≠ j, *without* a distance test.
  Pairs beyond the cutoff get a cutoff envelope of exactly 0 (value and
  gradient) in the model, so the energy is unchanged; the shapes never change
  with the positions, so it needs no host synchronisation and works with CUDA
  graphs. Cost O(N²) edges through the network: for small molecules.
- :func:`cutoff_pairs`: all O(N²) distances, then only the pairs within the
  cutoff (``nonzero`` sizes the result: one host synchronisation per step).
- :func:`cell_list_pairs`: atoms binned into cells at least one cutoff wide
  (in fractional coordinates when periodic, so triclinic cells work); only
  the 27 surrounding cells are searched. O(N) for 10 000+ atoms.
"""

from typing import Optional, Tuple

import torch
from torch import Tensor

from .lattice import cell_heights, edge_vectors


def minimum_image_shifts(vectors: Tensor, box: Tensor) -> Tensor:
    """Shifts [E, 3] (in lattice vectors) that wrap displacement vectors [E, 3] into the reduced
    triclinic ``box`` [3, 3] (rows a, b, c): ``vectors + shifts @ box`` is the minimum image.

    Subtracts c, then b, then a, each rounded along its own axis, as OpenMM's
    reference platform does for triclinic boxes.
    """
    nc = -torch.round(vectors[:, 2:3] / box[2, 2])
    vectors = vectors + nc * box[2].unsqueeze(0)
    nb = -torch.round(vectors[:, 1:2] / box[1, 1])
    vectors = vectors + nb * box[1].unsqueeze(0)
    na = -torch.round(vectors[:, 0:1] / box[0, 0])
    return torch.cat([na, nb, nc], dim=1)


def _shifts(positions: Tensor, edge_index: Tensor, box: Optional[Tensor]) -> Tensor:
    """Minimum-image shifts of the edges (zeros without a box); no gradient."""
    if box is None:
        return positions.new_zeros((edge_index.shape[1], 3))
    raw = edge_vectors(positions.detach(), edge_index, positions.new_zeros((0, 3)), None)
    return minimum_image_shifts(raw, box.detach())


def all_ordered_pairs(n: int, device: torch.device) -> Tensor:
    """Every ordered pair (i, j), i ≠ j, of n atoms: edge_index [2, n(n−1)] int64."""
    idx = torch.arange(n, device=device)
    i = idx.repeat_interleave(n)
    j = idx.repeat(n)
    keep = i != j
    return torch.stack([i[keep], j[keep]], dim=0)


def dense_pairs(positions: Tensor, pairs: Tensor, box: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """Precomputed pairs (see :func:`all_ordered_pairs`), no distance test: static shapes."""
    return pairs, _shifts(positions, pairs, box)


def _within(positions: Tensor, edge_index: Tensor, box: Optional[Tensor], cutoff: float) -> Tuple[Tensor, Tensor]:
    """The edges (and their shifts) shorter than ``cutoff`` (``nonzero``: one host synchronisation)."""
    pos = positions.detach()
    shifts = _shifts(pos, edge_index, box)
    vectors = edge_vectors(pos, edge_index, shifts, box)
    keep = torch.nonzero((vectors * vectors).sum(-1) < cutoff * cutoff).squeeze(-1)
    return edge_index.index_select(1, keep), shifts.index_select(0, keep)


def cutoff_pairs(positions: Tensor, box: Optional[Tensor], cutoff: float) -> Tuple[Tensor, Tensor]:
    """All ordered pairs i ≠ j closer than ``cutoff`` (O(N²) memory and time)."""
    return _within(positions, all_ordered_pairs(positions.shape[0], positions.device), box, cutoff)


def cell_list_pairs(positions: Tensor, box: Optional[Tensor], cutoff: float) -> Tuple[Tensor, Tensor]:
    """Ordered pairs i ≠ j closer than ``cutoff``, found through a cell list (O(N)).

    Cells are at least ``cutoff`` wide along each lattice direction (each Cartesian
    direction when open), so every neighbour of an atom lies in one of the 27 cells
    around its own. Periodic boxes with fewer than 3 cells along a direction fall
    back to :func:`cutoff_pairs` (such boxes are small).
    """
    pos = positions.detach()
    n = pos.shape[0]
    device = pos.device
    if box is not None:
        inv = torch.linalg.inv(box)
        frac = pos @ inv
        frac = frac - torch.floor(frac)
        counts = torch.floor(cell_heights(box) / cutoff).to(torch.int64).clamp(min=1)
        if bool((counts < 3).any()):
            return cutoff_pairs(positions, box, cutoff)
        scaled = frac
    else:
        lo = pos.min(dim=0).values
        extent = pos.max(dim=0).values - lo
        counts = torch.floor(extent / cutoff).to(torch.int64).clamp(min=1)
        scaled = (pos - lo) / (extent + 1e-6)
    cell3 = torch.minimum((scaled * counts.to(pos.dtype)).to(torch.int64), counts - 1)  # [N, 3]
    n0, n1, n2 = int(counts[0]), int(counts[1]), int(counts[2])
    n_cells = n0 * n1 * n2
    cell_id = (cell3[:, 0] * n1 + cell3[:, 1]) * n2 + cell3[:, 2]

    # table[c, k] = k-th atom of cell c, −1 where empty
    order = torch.argsort(cell_id)
    sorted_cells = cell_id[order]
    occupancy = torch.bincount(cell_id, minlength=n_cells)
    capacity = int(occupancy.max())
    start = torch.cumsum(occupancy, 0) - occupancy
    rank = torch.arange(n, device=device) - start[sorted_cells]
    table = torch.full((n_cells, capacity), -1, dtype=torch.int64, device=device)
    table[sorted_cells, rank] = order

    r = torch.arange(-1, 2, device=device)
    offsets = torch.stack(torch.meshgrid([r, r, r], indexing="ij"), dim=-1).reshape(27, 3)
    neighbour3 = cell3.unsqueeze(1) + offsets.unsqueeze(0)  # [N, 27, 3]
    if box is not None:
        neighbour3 = torch.remainder(neighbour3, counts)
        valid_cell = torch.ones(neighbour3.shape[:2], dtype=torch.bool, device=device)
    else:
        valid_cell = ((neighbour3 >= 0) & (neighbour3 < counts)).all(dim=-1)
        neighbour3 = torch.minimum(torch.clamp(neighbour3, min=0), counts - 1)
    neighbour_id = (neighbour3[..., 0] * n1 + neighbour3[..., 1]) * n2 + neighbour3[..., 2]
    candidates = table[neighbour_id]  # [N, 27, capacity]
    centre = torch.arange(n, device=device).view(n, 1, 1).expand_as(candidates)
    ok = (candidates >= 0) & (candidates != centre) & valid_cell.unsqueeze(-1)
    sel = torch.nonzero(ok.reshape(-1)).squeeze(-1)
    edge_index = torch.stack([centre.reshape(-1)[sel], candidates.reshape(-1)[sel]], dim=0)
    return _within(pos, edge_index, box, cutoff)
