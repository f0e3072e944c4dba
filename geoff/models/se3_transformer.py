"""SE3TransformerPotential: element embedding → SE(3)-equivariant attention layers → per-atom energies."""

from typing import Dict, List, Optional

import torch
from torch import Tensor, nn
from ..errors import GeoffInputError
from ..nn import BesselBasis, PolynomialEnvelope, mlp
from ..nn.se3_attention import SE3AttentionLayer
from ..nn.se3_basis import SE3KernelBasis, SphericalHarmonics
from .potential import Potential
from .registry import register_model


@register_model
class SE3TransformerPotential(Potential):
    """A potential built from SE(3)-Transformer layers (Fuchs, Worrall, Fischer, Welling,
    NeurIPS 2020, eqs. 10–11; see :class:`geoff.nn.SE3AttentionLayer`) on the cutoff graph.

    Per-atom features are fibres of degrees ℓ = 0..``lmax`` with ``channels`` copies of
    each (layout and e3nn conventions in :mod:`geoff.nn.se3_basis`). Layer 1 reads the
    type-0 element embedding and writes degrees 0..lmax; middle layers map degrees
    0..lmax to 0..lmax; the last layer writes type 0 only, and an MLP of that type-0
    output gives the per-atom energy ε_i (summed, scaled, shifted by E_ref in
    :class:`Potential`). Forces and stress come from autograd.

    Symmetries (exact, by construction): the energy is invariant under rotations,
    translations, permutations of atoms and the choice of periodic images, and smooth
    (C²) as atoms cross the cutoff. By default it is **not reflection invariant**: the kernels
    use every Clebsch–Gordan coupling, including the parity-odd ones (1 ⊗ 1 → 1 is a cross
    product), so the model is SE(3)- but not E(3)-invariant and gives a molecule and its
    mirror image different energies in general. What does hold (tested): all improper
    transformations give the same energy, E(x P) = E(−x) for every reflection P. With
    ``parity_even=True`` only the parity-conserving couplings are kept and the energy is
    E(3)-invariant (tested to 1e-10 in float64), as a DFT energy surface is.

    Sizes: at equal training time and for MD speed lmax=1 beats lmax=2 (which learns more per
    epoch but costs several times more per call, its per-edge tensors being memory-bound), so
    lmax=1 is the default; lmax=2 (and 3) are supported and tested. The sizes, errors and
    timings compared are in benchmarks/README.md ("SE(3)-Transformer sizes").

    Args:
        species: element symbols, e.g. ["H", "C", "O"].
        cutoff: r_c, Å.
        lmax: highest feature degree L (≥ 1; spherical harmonics up to 2L enter the kernels).
        channels: channels C per degree.
        num_layers: attention layers (≥ 2 so that degrees > 0 are used).
        num_heads: attention heads H (C must be a multiple of H).
        num_basis: Bessel functions of the radial networks.
        radial_hidden: width of the radial MLPs.
        envelope_p: exponent of the polynomial cutoff envelope.
        parity_even: keep only the parity-conserving couplings (k+J+ℓ even): the energy is then
            E(3)-invariant (mirror images have equal energies) at fewer paths per layer.
        reference_energies: per-element E_ref in eV.
        energy_scale: eV per unit of network output.
    """

    model_type = "se3_transformer"
    reflection_invariant = False

    def __init__(self, species: List[str], cutoff: float = 5.0, lmax: int = 1, channels: int = 16,
                 num_layers: int = 3, num_heads: int = 4, num_basis: int = 8, radial_hidden: int = 32,
                 envelope_p: int = 6, parity_even: bool = False,
                 reference_energies: Optional[Dict[str, float]] = None, energy_scale: float = 1.0):
        super().__init__(species, cutoff, reference_energies, energy_scale)
        if lmax < 1:
            raise GeoffInputError(f"lmax must be ≥ 1 for an SE(3)-Transformer (got {lmax}); use lmax=1, 2 or 3.")
        if num_layers < 2:
            raise GeoffInputError(f"num_layers must be ≥ 2 (got {num_layers}): the first layer creates degrees "
                                  "ℓ > 0 and only later layers can use them.")
        self._hyper = dict(lmax=int(lmax), channels=int(channels), num_layers=int(num_layers),
                           num_heads=int(num_heads), num_basis=int(num_basis), radial_hidden=int(radial_hidden),
                           envelope_p=int(envelope_p), parity_even=bool(parity_even))
        self.reflection_invariant = bool(parity_even)
        self.lmax = int(lmax)
        self.channels = int(channels)
        degrees = [(0 if k == 0 else lmax, 0 if k == num_layers - 1 else lmax) for k in range(num_layers)]
        distinct = sorted(set(degrees))
        self.bases = nn.ModuleList([SE3KernelBasis(a, b, parity_even) for a, b in distinct])
        self.basis_of_layer: List[int] = [distinct.index(d) for d in degrees]
        self.spherical_harmonics = SphericalHarmonics(2 * lmax)
        self.embedding = nn.Embedding(len(self.species), channels)
        self.radial_basis = BesselBasis(cutoff, num_basis)
        self.envelope = PolynomialEnvelope(cutoff, envelope_p)
        self.layers = nn.ModuleList([
            SE3AttentionLayer(a, b, channels, num_heads, num_basis, radial_hidden, parity_even=parity_even)
            for a, b in degrees
        ])
        self.readout = mlp([channels, channels, 1])

    @torch.jit.unused
    def hyperparameters(self) -> Dict[str, object]:
        return dict(self._hyper)

    @torch.jit.unused
    def message_passing_layers(self) -> int:
        return len(self.layers)

    def features(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor,
                 edge_layers: Optional[Tensor] = None) -> List[Tensor]:
        """The output fibre of every layer: a list of [N, C, (ℓ_out+1)²] tensors
        (degree ℓ in columns ℓ²..(ℓ+1)²−1); the last one is type 0 only.
        ``edge_layers`` [E]: edge e enters only the first ``edge_layers[e]`` layers."""
        if edge_layers is not None:  # edges no layer uses
            keep = torch.nonzero(edge_layers > 0).squeeze(1)
            edge_index, edge_vectors, edge_layers = edge_index[:, keep], edge_vectors[keep], edge_layers[keep]
        lengths = torch.linalg.norm(edge_vectors, dim=-1)
        sh = self.spherical_harmonics(edge_vectors)  # [E, (2L+1)²]
        radial = self.radial_basis(lengths)  # [E, num_basis]
        envelope = self.envelope(lengths)  # [E]
        kernels: List[Tensor] = []
        for basis in self.bases:  # geometric kernel bases, once per pass, shared by layers
            kernels.append(basis(sh))
        f = self.embedding(species).unsqueeze(-1)  # [N, C, 1]
        out: List[Tensor] = []
        for k, layer in enumerate(self.layers):
            if k > 0 and edge_layers is not None:  # drop the edges whose last layer was k − 1
                keep = torch.nonzero(edge_layers > k).squeeze(1)
                kernels = [b[keep] for b in kernels]
                radial, envelope, edge_index, edge_layers = \
                    radial[keep], envelope[keep], edge_index[:, keep], edge_layers[keep]
            f = layer(f, kernels[self.basis_of_layer[k]], radial, envelope, edge_index)
            out.append(f)
        return out

    def atomic_energies_raw(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor,
                            edge_layers: Optional[Tensor] = None) -> Tensor:
        f = self.features(species, edge_index, edge_vectors, edge_layers)[-1]  # [N, C, 1]
        return self.readout(f[:, :, 0]).squeeze(-1)
