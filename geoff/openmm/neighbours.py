"""Neighbour lists for the exported OpenMM module: plain PyTorch, TorchScript-able.

OpenMM's C++ runs the exported file without Python and without geoff, so
everything here uses only ``torch`` operators (no torch-cluster, no vesin).
Periodic systems use the minimum-image convention for OpenMM's *reduced*
triclinic boxes (a = (a_x, 0, 0), b = (b_x, b_y, 0), c = (c_x, c_y, c_z) with
a_x ≥ 2|b_x|, a_x ≥ 2|c_x|, b_y ≥ 2|c_y|), which OpenMM guarantees for every
box it passes; it is exact for pairs closer than half the smallest box height,
so the cutoff must be below that (checked when the system is created, and on
the CPU at every step).

Three strategies, one output (``i``, ``j`` [E] int64 and edge vectors
r_ij = x_j − x_i + shift [E, 3], same units as the positions):

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


def minimum_image(vectors: Tensor, box: Tensor) -> Tensor:
    """Wrap displacement vectors [E, 3] into the reduced triclinic ``box`` [3, 3] (rows a, b, c).

    Subtracts c, then b, then a, each rounded along its own axis, as OpenMM's
    reference platform does for triclinic boxes.
    """
    vectors = vectors - torch.round(vectors[:, 2:3] / box[2, 2]) * box[2].unsqueeze(0)
    vectors = vectors - torch.round(vectors[:, 1:2] / box[1, 1]) * box[1].unsqueeze(0)
    vectors = vectors - torch.round(vectors[:, 0:1] / box[0, 0]) * box[0].unsqueeze(0)
    return vectors


def _vectors(positions: Tensor, i: Tensor, j: Tensor, box: Optional[Tensor]) -> Tensor:
    """r_ij = x_j − x_i (+ minimum-image shift, which carries no gradient)."""
    vectors = positions[j] - positions[i]
    if box is not None:
        raw = vectors.detach()
        vectors = vectors + (minimum_image(raw, box) - raw)
    return vectors


def all_ordered_pairs(n: int, device: torch.device) -> Tuple[Tensor, Tensor]:
    """Every ordered pair (i, j), i ≠ j, of n atoms: two [n(n−1)] int64 tensors."""
    idx = torch.arange(n, device=device)
    i = idx.repeat_interleave(n)
    j = idx.repeat(n)
    keep = i != j
    return i[keep], j[keep]


def dense_pairs(positions: Tensor, pair_i: Tensor, pair_j: Tensor,
                box: Optional[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
    """Precomputed pairs (see :func:`all_ordered_pairs`), no distance test: static shapes."""
    return pair_i, pair_j, _vectors(positions, pair_i, pair_j, box)


def cutoff_pairs(positions: Tensor, box: Optional[Tensor], cutoff: float) -> Tuple[Tensor, Tensor, Tensor]:
    """All ordered pairs i ≠ j closer than ``cutoff`` (O(N²) memory and time)."""
    n = positions.shape[0]
    i, j = all_ordered_pairs(n, positions.device)
    vectors = _vectors(positions.detach(), i, j, box)
    keep = torch.nonzero((vectors * vectors).sum(-1) < cutoff * cutoff).squeeze(-1)
    i, j = i[keep], j[keep]
    return i, j, _vectors(positions, i, j, box)


def cell_list_pairs(positions: Tensor, box: Optional[Tensor], cutoff: float) -> Tuple[Tensor, Tensor, Tensor]:
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
        # heights of the cell along each lattice direction: V / |b × c| etc.
        volume = torch.abs(torch.linalg.det(box))
        areas = torch.stack([
            torch.linalg.norm(torch.linalg.cross(box[1], box[2])),
            torch.linalg.norm(torch.linalg.cross(box[2], box[0])),
            torch.linalg.norm(torch.linalg.cross(box[0], box[1])),
        ])
        counts = torch.floor(volume / areas / cutoff).to(torch.int64).clamp(min=1)
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
    i = centre.reshape(-1)[sel]
    j = candidates.reshape(-1)[sel]
    vectors = _vectors(pos, i, j, box)
    keep = torch.nonzero((vectors * vectors).sum(-1) < cutoff * cutoff).squeeze(-1)
    i, j = i[keep], j[keep]
    return i, j, _vectors(positions, i, j, box)
