"""Radial bases and the smooth cutoff envelope (all TorchScript-able)."""

import math

import torch
from torch import Tensor, nn


class PolynomialEnvelope(nn.Module):
    """Smooth cutoff u(r) (Klicpera, Groß, Günnemann, DimeNet, ICLR 2020, eq. 8).

    u(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2), x = r / r_c,
    and 0 for x ≥ 1; u and its first two derivatives vanish at r_c, so energies
    and forces are continuous as an atom crosses the cutoff.

    Args: r [E] Å. Returns: [E] in [0, 1].
    """

    def __init__(self, cutoff: float, p: int = 6):
        super().__init__()
        self.cutoff = float(cutoff)
        self.p = int(p)

    def forward(self, r: Tensor) -> Tensor:
        p = float(self.p)
        x = r / self.cutoff
        xp = torch.pow(x, self.p)
        u = 1.0 - 0.5 * (p + 1.0) * (p + 2.0) * xp + p * (p + 2.0) * xp * x - 0.5 * p * (p + 1.0) * xp * x * x
        return torch.where(x < 1.0, u, torch.zeros_like(u))


class BesselBasis(nn.Module):
    """Radial Bessel functions sqrt(2/r_c) sin(nπ r / r_c) / r, n = 1..num_basis
    (DimeNet, eq. 7), with learnable frequencies as in NequIP.

    Args: r [E] Å (> 0). Returns: [E, num_basis].
    """

    def __init__(self, cutoff: float, num_basis: int = 8, trainable: bool = True):
        super().__init__()
        self.cutoff = float(cutoff)
        self.prefactor = math.sqrt(2.0 / cutoff)
        freqs = torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype()) * math.pi / cutoff
        if trainable:
            self.frequencies = nn.Parameter(freqs)
        else:
            self.register_buffer("frequencies", freqs)

    def forward(self, r: Tensor) -> Tensor:
        r = r.unsqueeze(-1)
        return self.prefactor * torch.sin(self.frequencies * r) / r
