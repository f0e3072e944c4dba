"""Tensor-field-network kernel bases for the SE(3)-Transformer (cached, TorchScript-able).

Conventions (those of e3nn 0.6, which supplies the spherical harmonics and the
Clebsch–Gordan / Wigner 3j coefficients):

- A feature of degree ℓ ≤ L is a block of 2ℓ+1 real components; a fibre of
  degrees 0..L is stored as one tensor ``[N, C, (L+1)²]`` with degree ℓ in the
  last-axis slice ``[ℓ², (ℓ+1)²)`` (C channels per degree).
- Real spherical harmonics Y^J of the unit edge direction, e3nn's
  ``SphericalHarmonics(..., normalize=True, normalization="component")``:
  ‖Y^J‖² = 2J+1, and Y^1(r̂) = √3 (x, y, z) (e3nn ≥ 0.5 order x, y, z).
- Rotations act by e3nn's real Wigner-D matrices: if every position is
  transformed as x ↦ x R (row vectors: positions C [N, 3] become C R), a degree-ℓ block
  transforms as f ↦ f D^ℓ(R) with D = ``o3.Irreps.spherical_harmonics(L).D_from_matrix(R)``
  (tested in tests/test_se3_transformer.py).
- Parity: by default every coupling k ⊗ J → ℓ allowed by the triangle rule is
  used, including the parity-odd ones (e.g. the cross product 1 ⊗ 1 → 1), so
  features of a mirror image are not the mirrored features and the energy tells
  enantiomers apart (SE(3)); with ``parity_even`` only couplings with k+J+ℓ even
  are kept and the energy is also mirror invariant (E(3), see :func:`enumerate_paths`).

The kernel W^{ℓk}(r) of Fuchs et al. 2020 (their sec. 2.2, after Thomas et al. 2018,
tensor field networks) maps a type-k input to a type-ℓ output:

    W^{ℓk}(r)_{n m} = Σ_{J=|k−ℓ|}^{k+ℓ} φ^{ℓkJ}(‖r‖) Σ_j Q^{kJℓ}_{m j n} Y^J_j(r̂),

with Q the Wigner 3j symbols. The geometric factor
B_p(r̂)_{m n} = Σ_j Q_{m j n} Y^J_j(r̂) of every path p = (k, J, ℓ) does not
depend on the learned weights, so :class:`SE3KernelBasis` builds it for all
paths of a layer at once with one matrix product against a precomputed buffer
(``Y [E, (J_max+1)²] @ cg [(J_max+1)², D_in · D_paths]``); the model computes it
once per forward pass and shares it between layers of the same degrees.
"""

import copy
import math
from typing import List, Tuple

import torch
from torch import Tensor, nn
from e3nn import o3


def fibre_dim(lmax: int) -> int:
    """Number of components (L+1)² of a fibre with degrees 0..L."""
    return (lmax + 1) * (lmax + 1)


def enumerate_paths(l_in: int, l_out: int, parity_even: bool = False) -> List[Tuple[int, int, int]]:
    """All couplings (k, J, ℓ), k ≤ l_in, ℓ ≤ l_out, |k−ℓ| ≤ J ≤ k+ℓ, ordered by ℓ, then k, then J.

    This order fixes the kernel columns: path p owns 2ℓ_p+1 consecutive columns, paths of
    the same output degree ℓ are adjacent. With ``parity_even`` only couplings with k+J+ℓ even
    are kept: Y^J of the edge direction has parity (−1)^J, so type-ℓ features then keep parity
    (−1)^ℓ through every layer and the type-0 energy is also invariant under reflections (E(3)).
    J = |k−ℓ| always qualifies, so every (k, ℓ) keeps at least one path.
    """
    paths = []
    for l in range(l_out + 1):
        for k in range(l_in + 1):
            for J in range(abs(k - l), k + l + 1):
                if not parity_even or (k + J + l) % 2 == 0:
                    paths.append((k, J, l))
    return paths


class SphericalHarmonics(o3.SphericalHarmonics):
    """e3nn's real spherical harmonics Y^0..Y^lmax of unit edge directions, [E, 3] → [E, (lmax+1)²]
    ("component" normalisation, see the module docstring), TorchScript-able.

    The same module as ``e3nn.o3.SphericalHarmonics``, made deep-copyable (trainers copy the
    model for weight averaging): e3nn keeps a ``torch.jit.script``-ed function as an attribute,
    which cannot be pickled; it is stateless, so the copy shares it.
    """

    def __init__(self, lmax: int):
        super().__init__(list(range(lmax + 1)), normalize=True, normalization="component")

    def __deepcopy__(self, memo):
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            new.__dict__[key] = value if key == "sph_func" else copy.deepcopy(value, memo)
        return new


class SE3KernelBasis(nn.Module):
    """Geometric part of every TFN kernel of a layer with input degrees ≤ l_in, output ≤ l_out.

    Buffer ``cg`` [(l_in+l_out+1)², D_in · D_p] holds, for each path p = (k, J, ℓ)
    with its output columns c_p … c_p + 2ℓ, the coefficients
    ``cg[J² + j, k² + m, c_p + n] = Q^{kJℓ}_{m j n} · √(2ℓ+1) / √(n_ℓ)``
    (n_ℓ = number of paths into degree ℓ; the factors keep the messages of each
    degree at unit scale for unit-scale inputs and radial weights).

    forward(sh [E, ≥ (l_in+l_out+1)²]) → basis [E, D_in, D_p], D_in = (l_in+1)²,
    D_p = Σ_p (2ℓ_p+1).
    """

    def __init__(self, l_in: int, l_out: int, parity_even: bool = False):
        super().__init__()
        self.l_in = int(l_in)
        self.l_out = int(l_out)
        self.paths = enumerate_paths(l_in, l_out, parity_even)
        self.num_sh = fibre_dim(l_in + l_out)
        self.d_in = fibre_dim(l_in)
        self.d_paths = sum(2 * l + 1 for _, _, l in self.paths)
        # a constant of the architecture, not a weight: kept out of the state dict
        self.register_buffer("cg", self._exact_cg().to(torch.get_default_dtype()), persistent=False)

    def _exact_cg(self) -> Tensor:
        """The coefficient buffer in float64 on the CPU (see the class docstring), also when the model
        is built under another default device (the meta device, when a potential file's shapes are checked)."""
        n_per_l = [sum(1 for p in self.paths if p[2] == l) for l in range(self.l_out + 1)]
        with torch.device("cpu"):
            cg = torch.zeros(self.num_sh, self.d_in, self.d_paths, dtype=torch.float64)
            col = 0
            for k, J, l in self.paths:
                q = o3.wigner_3j(k, J, l, dtype=torch.float64)  # [2k+1, 2J+1, 2l+1], ‖q‖_F = 1
                q = q * math.sqrt(2 * l + 1) / math.sqrt(n_per_l[l])
                cg[J * J:(J + 1) ** 2, k * k:(k + 1) ** 2, col:col + 2 * l + 1] = q.permute(1, 0, 2)
                col += 2 * l + 1
        return cg.reshape(self.num_sh, -1)

    def _apply(self, fn, recurse=True):
        # A dtype change (model.float(), .double(), .to(dtype)) would round the coefficients
        # through the old dtype (float32 → float64 keeps float32's 1e-8 error, which breaks
        # float64 equivariance at 1e-10); rebuild them exactly instead. Runs on .to(), never per step.
        super()._apply(fn, recurse)
        self.cg = self._exact_cg().to(dtype=self.cg.dtype, device=self.cg.device)
        return self

    def forward(self, sh: Tensor) -> Tensor:
        y = sh[:, :self.num_sh]
        return torch.mm(y, self.cg).view(-1, self.d_in, self.d_paths)
