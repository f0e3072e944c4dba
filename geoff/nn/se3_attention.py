"""SE(3)-equivariant attention layer (Fuchs, Worrall, Fischer, Welling, NeurIPS 2020).

Feature layout and e3nn conventions: see :mod:`geoff.nn.se3_basis`. A fibre is
``[N, C, (L+1)²]``: C channels of each degree ℓ = 0..L.
"""

import math
from typing import Tuple

import torch
from torch import Tensor, nn

from .se3_basis import enumerate_paths, fibre_dim


def _degree_of_column(lmax: int) -> Tensor:
    """[ (L+1)² ] long: the degree ℓ of each component of a fibre."""
    return torch.tensor([l for l in range(lmax + 1) for _ in range(2 * l + 1)], dtype=torch.long)


class EquivariantLinear(nn.Module):
    """Channel mixing within each degree: out^ℓ = W^ℓ f^ℓ (+ bias on ℓ = 0 only).

    This is the most general equivariant linear map between fibres of the same
    degrees (Schur's lemma): it never mixes degrees or the m components.
    Shapes: [N, C_in, (L+1)²] → [N, C_out, (L+1)²].
    """

    def __init__(self, lmax: int, c_in: int, c_out: int, bias: bool = True):
        super().__init__()
        self.lmax = int(lmax)
        self.weight = nn.Parameter(torch.randn(lmax + 1, c_out, c_in) / math.sqrt(c_in))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.register_buffer("col_degree", _degree_of_column(lmax), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight[self.col_degree]  # [D, C_out, C_in]
        out = torch.bmm(x.permute(2, 0, 1), w.transpose(1, 2)).permute(1, 2, 0)  # [N, C_out, D]
        b = self.bias
        if b is not None:
            out = torch.cat([out[:, :, :1] + b.view(1, -1, 1), out[:, :, 1:]], dim=2)
        return out


class NormNonlinearity(nn.Module):
    """Equivariant norm nonlinearity (Fuchs et al. 2020, sec. 3 "nonlinearity";
    Worrall et al. 2017), in a smooth form.

    - degree 0: f ↦ SiLU(f);
    - degree ℓ > 0, channel c: f ↦ φ(‖f‖) f/‖f‖ with φ(n) = n σ(a_{ℓc} ν(n) + b_{ℓc}),
      i.e. f ↦ f · σ(a ν + b), where ν = √(1 + ‖f‖²) − 1 is a smooth stand-in for
      the norm (≈ ‖f‖²/2 near 0, ≈ ‖f‖ far away) so that the map is C^∞ at f = 0
      (forces and force-trained second derivatives stay finite).

    The gate depends on rotation invariants only, so the map is equivariant.
    Shapes: [N, C, (L+1)²] → same.
    """

    def __init__(self, lmax: int, channels: int):
        super().__init__()
        self.lmax = int(lmax)
        self.a = nn.Parameter(torch.ones(max(lmax, 1), channels))
        self.b = nn.Parameter(torch.zeros(max(lmax, 1), channels))

    def forward(self, x: Tensor) -> Tensor:
        parts = [torch.nn.functional.silu(x[:, :, :1])]
        for l in range(1, self.lmax + 1):
            f = x[:, :, l * l:(l + 1) * (l + 1)]
            nu = torch.sqrt(1.0 + (f * f).sum(-1, keepdim=True)) - 1.0
            gate = torch.sigmoid(self.a[l - 1].view(1, -1, 1) * nu + self.b[l - 1].view(1, -1, 1))
            parts.append(f * gate)
        return torch.cat(parts, dim=2)


class SE3AttentionLayer(nn.Module):
    """One SE(3)-Transformer layer, eqs. (10)–(11) of Fuchs et al. 2020, restricted to
    the neighbours within the cutoff and made smooth there.

    For atom i with neighbours j (edge vector r_ij = x_j − x_i, length r, envelope u(r)):

    - kernels: a radial MLP of the Bessel expansion of r gives, per path p = (k, J, ℓ)
      and channel c, the weights φ^K_{pc}(r) (keys) and φ^V_{pc}(r) (values); with the
      geometric basis B_p(r̂) of :class:`geoff.nn.SE3KernelBasis`,
          k_ij^ℓ[c] = Σ_{p→ℓ} φ^K_{pc}(r) f̂_j^{k_p}[c] B_p(r̂),   v_ij^ℓ[c] likewise with φ^V,
      where f̂ = W_pre f is an equivariant channel mixing. This is the paper's
      W_K^{ℓk}(r_ij) f_j^k, Σ_k (eq. 11), with the per-edge C_out × C_in radial matrix
      factorised as diag(φ(r)) ∘ W_pre (channel mixing moved to the nodes, where it is
      cheap); the final W_O below mixes the value channels again.
    - query (eq. 11): q_i^ℓ = W_Q^ℓ f_i^ℓ for ℓ ≤ min(l_in, l_out).
    - attention (eq. 11), per head h (a block of C/H channels):
          s_ij^h = s_max tanh( (Σ_{c∈h, ℓ, m} q_i^ℓ[c]_m k_ij^ℓ[c]_m) / √(C/H) / s_max ),
          α_ij^h = u(r_ij) e^{s_ij^h} / (1 + Σ_{j'} u(r_ij') e^{s_ij'^h}).
      Weighting the exponentials by the envelope u makes α vanish, with its first two
      derivatives, as j leaves the cutoff sphere (the plain softmax of eq. 11 would
      jump); the 1 in the denominator (an always-present "null" neighbour) keeps α
      finite and smooth when all neighbours fade out together; the soft cap s_max = 5
      bounds e^s (no overflow, no max-subtraction, which would not be smooth).
    - update (eq. 10): g_i^ℓ = W_self^ℓ f_i^ℓ + W_O^ℓ Σ_j α_ij v_ij^ℓ, then the norm
      nonlinearity, plus a residual connection f_i^ℓ for degrees present before.

    q·k is a sum of products of same-degree components, hence rotation invariant, so α
    is invariant and the update equivariant.

    Shapes: f [N, C, (l_in+1)²]; basis [E, (l_in+1)², D_p]; radial [E, num_basis];
    envelope [E]; edge_index [2, E]. Returns [N, C, (l_out+1)²].
    """

    def __init__(self, l_in: int, l_out: int, channels: int, num_heads: int, num_basis: int,
                 radial_hidden: int, nonlinearity: bool = True, parity_even: bool = False):
        super().__init__()
        if channels % num_heads != 0:
            from ..errors import GeoffInputError

            raise GeoffInputError(f"channels ({channels}) must be a multiple of num_heads ({num_heads}).")
        self.l_in, self.l_out = int(l_in), int(l_out)
        self.l_key = min(self.l_in, self.l_out)
        self.d_out = fibre_dim(self.l_out)
        self.channels, self.num_heads = int(channels), int(num_heads)
        self.head_dim = self.channels // self.num_heads
        self.score_cap = 5.0  # s_max
        paths = enumerate_paths(l_in, l_out, parity_even)
        self.num_paths = len(paths)
        # kernel column → its path, and the 0/1 matrix that sums the paths of each output component
        col_path = [p for p, (_, _, l) in enumerate(paths) for _ in range(2 * l + 1)]
        col_out = [l * l + m for (_, _, l) in paths for m in range(2 * l + 1)]
        path_sum = torch.zeros(len(col_out), fibre_dim(l_out))
        path_sum[torch.arange(len(col_out)), torch.tensor(col_out)] = 1.0
        self.register_buffer("col_path", torch.tensor(col_path, dtype=torch.long), persistent=False)
        self.register_buffer("path_sum", path_sum, persistent=False)

        self.pre = EquivariantLinear(l_in, channels, channels, bias=True)
        self.query = EquivariantLinear(self.l_key, channels, channels, bias=True)
        self.self_interaction = EquivariantLinear(self.l_key, channels, channels, bias=True)
        self.out = EquivariantLinear(l_out, channels, channels, bias=False)
        self.radial = nn.Sequential(
            nn.Linear(num_basis, radial_hidden), nn.SiLU(), nn.Linear(radial_hidden, radial_hidden), nn.SiLU(),
            nn.Linear(radial_hidden, 2 * channels * self.num_paths),
        )
        self.nonlinearity = NormNonlinearity(l_out, channels) if nonlinearity else nn.Identity()

    def edge_messages(self, f: Tensor, basis: Tensor, radial: Tensor, edge_index: Tensor) -> Tuple[Tensor, Tensor]:
        """Keys [E, C, (l_key+1)²] and values [E, C, (l_out+1)²] of every edge (i ← j)."""
        j = edge_index[1]
        num_edges = j.shape[0]
        c = self.channels
        fj = self.pre(f)[j]  # [E, C, D_in]
        t = torch.bmm(fj, basis)  # [E, C, D_p]: f̂_j^k ⊗ Y^J → ℓ for every path
        w = self.radial(radial).view(num_edges, 2, c, self.num_paths)  # φ^K, φ^V per path and channel
        w = torch.index_select(w, 3, self.col_path)  # [E, 2, C, D_p]
        kv = torch.mm((t.unsqueeze(1) * w).view(-1, t.shape[2]), self.path_sum)  # Σ over the paths into each ℓ
        kv = kv.view(num_edges, 2, c, self.d_out)  # [E, 2, C, D_out]
        return kv[:, 0, :, :fibre_dim(self.l_key)], kv[:, 1]

    def attention(self, f: Tensor, keys_: Tensor, envelope: Tensor, edge_index: Tensor) -> Tensor:
        """α_ij^h [E, H] (see the class docstring)."""
        i = edge_index[0]
        q = self.query(f[:, :, :fibre_dim(self.l_key)])  # [N, C, D_key]
        score = (q[i] * keys_).sum(-1).view(-1, self.num_heads, self.head_dim).sum(-1)
        score = self.score_cap * torch.tanh(score / (math.sqrt(self.head_dim) * self.score_cap))
        weight = envelope.unsqueeze(-1) * torch.exp(score)  # [E, H]
        denom = 1.0 + torch.zeros((f.shape[0], self.num_heads), dtype=f.dtype, device=f.device).index_add(
            0, i, weight)
        return weight / denom[i]

    def forward(self, f: Tensor, basis: Tensor, radial: Tensor, envelope: Tensor, edge_index: Tensor) -> Tensor:
        i = edge_index[0]
        n_atoms = f.shape[0]
        keys_, values = self.edge_messages(f, basis, radial, edge_index)
        alpha = self.attention(f, keys_, envelope, edge_index)  # [E, H]
        msg = values.view(-1, self.num_heads, self.head_dim, values.shape[-1]) * alpha.view(-1, self.num_heads, 1, 1)
        d_out = fibre_dim(self.l_out)
        agg = torch.zeros((n_atoms, self.channels, d_out), dtype=f.dtype, device=f.device).index_add(
            0, i, msg.view(-1, self.channels, d_out))
        g = self.out(agg)
        d_key = fibre_dim(self.l_key)
        si = self.self_interaction(f[:, :, :d_key])
        g = torch.cat([g[:, :, :d_key] + si, g[:, :, d_key:]], dim=2)
        g = self.nonlinearity(g)
        return torch.cat([g[:, :, :d_key] + f[:, :, :d_key], g[:, :, d_key:]], dim=2)
