"""The graph builders' neighbour searches over batches: all pairs (i, j, S) with
|x_j − x_i + S @ cell| < cutoff, in the package's convention (edge_index [2, E], shifts [E, 3]).

- :func:`torch_cluster_edges`: open boundaries, torch-cluster's ``radius_graph``
  (a compiled custom op; fastest for molecules on the ASE/training paths).
- :func:`vesin_edges`: periodic or open cells of any shape, through vesin
  (linear-scaling cell lists; small cells see several images of an atom).
- :func:`all_pairs_edges`: plain PyTorch, TorchScript-able, no custom op: every image
  within the cutoff, any cell shape. O(N² · images) memory: for small systems and as
  the reference the other searches are tested against.
"""

from typing import List, Tuple

import numpy as np
import torch
from torch import Tensor

from .lattice import image_range


def _single_all_pairs(pos: Tensor, cell: Tensor, pbc: Tensor, cutoff: float) -> Tuple[Tensor, Tensor]:
    n_atoms = pos.shape[0]
    if bool(pbc.any()):
        n = image_range(cell, pbc, cutoff)
        r0 = torch.arange(-int(n[0]), int(n[0]) + 1, device=pos.device)
        r1 = torch.arange(-int(n[1]), int(n[1]) + 1, device=pos.device)
        r2 = torch.arange(-int(n[2]), int(n[2]) + 1, device=pos.device)
        grid = torch.meshgrid([r0, r1, r2], indexing="ij")
        shifts = torch.stack([grid[0].reshape(-1), grid[1].reshape(-1), grid[2].reshape(-1)], dim=1).to(pos.dtype)
    else:
        shifts = torch.zeros((1, 3), dtype=pos.dtype, device=pos.device)
    offsets = shifts @ cell  # [S, 3]
    # vec[i, j, s] = pos[j] - pos[i] + offsets[s]
    vec = pos.unsqueeze(0).unsqueeze(2) - pos.unsqueeze(1).unsqueeze(2) + offsets.unsqueeze(0).unsqueeze(0)
    d2 = (vec * vec).sum(-1)
    is_self = torch.eye(n_atoms, dtype=torch.bool, device=pos.device).unsqueeze(2) & (
        (shifts == 0).all(dim=1).view(1, 1, -1)
    )
    mask = (d2 < cutoff * cutoff) & ~is_self
    idx = torch.nonzero(mask)  # [E, 3] (i, j, s)
    edge_index = torch.stack([idx[:, 0], idx[:, 1]], dim=0)
    return edge_index, shifts[idx[:, 2]]


def all_pairs_edges(
    positions: Tensor, batch: Tensor, num_atoms: Tensor, cell: Tensor, pbc: Tensor, cutoff: float
) -> Tuple[Tensor, Tensor]:
    """Plain-PyTorch neighbour list for a batch (TorchScript-able).

    Args:
        positions: [N, 3] Å. batch: [N]. num_atoms: [B]. cell: [B, 3, 3]. pbc: [B, 3] bool.
    Returns:
        edge_index [2, E] (global atom indices), shifts [E, 3] (positions' dtype).
    """
    edges: List[Tensor] = []
    shifts: List[Tensor] = []
    start = 0
    pos = positions.detach()
    for b in range(int(num_atoms.shape[0])):
        n = int(num_atoms[b])
        e, s = _single_all_pairs(pos[start:start + n], cell[b].detach().to(pos.dtype), pbc[b], cutoff)
        edges.append(e + start)
        shifts.append(s)
        start += n
    return torch.cat(edges, dim=1), torch.cat(shifts, dim=0)


def torch_cluster_edges(positions: Tensor, batch: Tensor, cutoff: float) -> Tuple[Tensor, Tensor]:
    """Open-boundary neighbour list through torch-cluster's ``radius_graph``."""
    from torch_cluster import radius_graph

    # radius_graph returns (source j, target i) and caps neighbours at
    # max_num_neighbors (default 32): lift the cap so no pair is dropped.
    ji = radius_graph(positions.detach(), r=cutoff, batch=batch, loop=False,
                      max_num_neighbors=max(int(positions.shape[0]), 1))
    edge_index = torch.stack([ji[1], ji[0]], dim=0)
    shifts = positions.new_zeros((edge_index.shape[1], 3))
    return edge_index, shifts


def vesin_edges(
    positions: Tensor, num_atoms: Tensor, cell: Tensor, pbc: Tensor, cutoff: float
) -> Tuple[Tensor, Tensor]:
    """Neighbour list through vesin, structure by structure (any cell shape)."""
    from vesin import NeighborList

    nl = NeighborList(cutoff=cutoff, full_list=True)
    pos_np = positions.detach().cpu().to(torch.float64).numpy()
    cell_np = cell.detach().cpu().to(torch.float64).numpy()
    pbc_np = pbc.detach().cpu().numpy()
    counts = num_atoms.tolist()
    edges, shifts = [], []
    start = 0
    for b, n in enumerate(counts):
        p = pos_np[start:start + n]
        periodic = pbc_np[b]
        box = cell_np[b] if periodic.any() else np.zeros((3, 3))
        i, j, s = nl.compute(points=p, box=box, periodic=periodic.tolist(), quantities="ijS")
        edges.append(np.stack([i, j]).astype(np.int64) + start)
        shifts.append(s)
        start += n
    edge_index = torch.from_numpy(np.concatenate(edges, axis=1)).to(positions.device)
    shift_t = torch.from_numpy(np.concatenate(shifts, axis=0)).to(dtype=positions.dtype, device=positions.device)
    return edge_index, shift_t
