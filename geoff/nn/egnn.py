"""The E(n)-equivariant graph convolution layer (Satorras, Hoogeboom, Welling,
ICML 2021), adapted to a smooth, periodic potential."""

from typing import Tuple

import torch
from torch import Tensor, nn

from .mlp import mlp


class EGNNLayer(nn.Module):
    """One EGCL: eqs. (3)–(6) of Satorras et al. 2021.

    - (3) m_ij = u(r⁰_ij) · φ_e(h_i, h_j, B(‖r_ij‖)): the squared distance enters
      through a Bessel expansion B of the current distance; u is the cutoff
      envelope of the *input* distance r⁰_ij, so an edge fades out smoothly as
      it crosses the cutoff. The first linear layer of φ_e is applied per node
      (W_i h_i and W_j h_j) and gathered per edge.
    - (4) Δx_i = C_i Σ_j (x_i − x_j) · u(r⁰_ij) · tanh(φ_x(m_ij)) with the smooth
      normalisation C_i = 1 / (1 + Σ_j u(r⁰_ij)); |Δx_i| stays below the largest
      edge length, so positions never blow up.
    - (5) m_i = Σ_j m_ij / avg_num_neighbors.
    - (6) h_i' = h_i + φ_h(h_i, m_i).

    Everything in the messages depends on distances only, so h is E(3)-invariant
    and Δx is E(3)-equivariant (rotations and reflections), translation- and
    permutation-invariant.

    Shapes: h [N, F]; edge_vectors r_ij = x_j − x_i (+ cell shift) [E, 3] Å;
    envelope [E]; edge_index [2, E] (row 0 = i, row 1 = j).
    Returns h' [N, F] and Δx [N, 3] Å (zeros when ``update_coords`` is off).
    """

    def __init__(self, hidden: int, num_basis: int, avg_num_neighbors: float, update_coords: bool):
        super().__init__()
        self.hidden = hidden
        self.update_coords = update_coords
        self.inv_avg_neighbors = 1.0 / float(avg_num_neighbors)
        self.node_proj = nn.Linear(hidden, 2 * hidden, bias=False)  # W_i h_i, W_j h_j
        self.radial_proj = nn.Linear(num_basis, hidden)
        self.edge_mlp = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU())
        self.node_mlp = mlp([2 * hidden, hidden, hidden])
        self.coord_mlp = mlp([hidden, hidden, 1]) if update_coords else nn.Identity()

    def forward(
        self, h: Tensor, edge_vectors: Tensor, radial: Tensor, envelope: Tensor, edge_index: Tensor
    ) -> Tuple[Tensor, Tensor]:
        i, j = edge_index[0], edge_index[1]
        # φ_e's first linear layer is W [h_i, h_j, B] + b = W_i h_i + W_j h_j + W_B B + b: the node
        # parts are computed per atom (N rows, not E), the bias b is folded into the per-atom W_i h_i,
        # and the radial part is fused into the gather sum by addmm. index_select (rather than h[i])
        # has an index_add backward, which is faster on CPU than advanced indexing's index_put.
        proj = self.node_proj(h)
        hi = proj[:, : self.hidden] + self.radial_proj.bias
        hj = proj[:, self.hidden:]
        pre = torch.addmm(hi.index_select(0, i) + hj.index_select(0, j), radial, self.radial_proj.weight.t())
        m_ij = self.edge_mlp(pre) * envelope.unsqueeze(-1)  # eq. (3)

        m_i = torch.zeros_like(h).index_add_(0, i, m_ij) * self.inv_avg_neighbors  # eq. (5)
        h_new = h + self.node_mlp(torch.cat([h, m_i], dim=-1))  # eq. (6)

        if self.update_coords:  # eq. (4), r_ij = x_j - x_i so (x_i - x_j) = -r_ij
            w = torch.tanh(self.coord_mlp(m_ij)).squeeze(-1) * envelope
            num = h.new_zeros([h.shape[0], 3]).index_add_(0, i, -edge_vectors * w.unsqueeze(-1))
            norm = 1.0 + h.new_zeros([h.shape[0]]).index_add_(0, i, envelope)
            dx = num / norm.unsqueeze(-1)
        else:
            dx = h.new_zeros([h.shape[0], 3])
        return h_new, dx
