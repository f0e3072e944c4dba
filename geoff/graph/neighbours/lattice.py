"""Lattice geometry shared by every neighbour search and cell check (plain PyTorch, TorchScript-able)."""

from typing import Optional

import torch
from torch import Tensor


def cell_heights(cell: Tensor) -> Tensor:
    """Heights of a cell [3, 3] (lattice vectors as rows, Å): h_k = V / |a_l × a_m|, the distance
    between the two faces spanned by the other two vectors, [3] Å (0 where a face has no area)."""
    volume = torch.abs(torch.linalg.det(cell))
    areas = torch.stack([
        torch.linalg.norm(torch.linalg.cross(cell[1], cell[2])),
        torch.linalg.norm(torch.linalg.cross(cell[2], cell[0])),
        torch.linalg.norm(torch.linalg.cross(cell[0], cell[1])),
    ])
    has_area = areas > 0
    return torch.where(has_area, volume / torch.where(has_area, areas, torch.ones_like(areas)),
                       torch.zeros_like(areas))


def image_range(cell: Tensor, pbc: Tensor, cutoff: float) -> Tensor:
    """Number of periodic images needed along each lattice vector.

    Args:
        cell: [3, 3] lattice vectors as rows, Å.
        pbc: [3] bool.
        cutoff: Å.
    Returns:
        [3] int64: n_k = ceil(cutoff / h_k) with h_k the cell heights (:func:`cell_heights`),
        0 along open directions.
    """
    heights = cell_heights(cell)
    periodic = pbc & (heights > 0)
    n = torch.ceil(cutoff / torch.where(periodic, heights, torch.ones_like(heights))).to(torch.int64)
    return torch.where(periodic, n, torch.zeros_like(n))


def edge_vectors(positions: Tensor, edge_index: Tensor, shifts: Tensor, cell: Optional[Tensor]) -> Tensor:
    """r_ij = x_j − x_i + shifts_ij @ cell [E, 3] of one structure (positions [N, 3], cell [3, 3] or None
    for open boundaries, where shifts are zero)."""
    vectors = positions.index_select(0, edge_index[1]) - positions.index_select(0, edge_index[0])
    if cell is not None:
        vectors = vectors + shifts @ cell
    return vectors
