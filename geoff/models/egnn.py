"""EGNNPotential: element embedding → EGNN layers → per-atom energies."""

from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor, nn

from ..nn import BesselBasis, EGNNLayer, PolynomialEnvelope, mlp
from .potential import Potential
from .registry import register_model


@register_model
class EGNNPotential(Potential):
    """An E(3)-invariant potential from E(n)-equivariant graph convolutions
    (Satorras, Hoogeboom, Welling, ICML 2021, eqs. 3–6; see :class:`geoff.nn.EGNNLayer`).

    Symmetries (exact, by construction): the energy is invariant under
    rotations, *reflections*, translations and permutations of atoms, and under
    the choice of periodic images; forces are E(3)-equivariant.

    The optional coordinate update (eq. 4) moves "virtual" positions that later
    layers read distances from; the energy stays a smooth function of the true
    positions, and forces are still −∂E/∂x with respect to the input positions.

    Args:
        species: element symbols, e.g. ["H", "C", "O"].
        cutoff: r_c, Å.
        hidden: feature width F of h.
        num_layers: number of EGNN layers L.
        num_basis: Bessel functions in the radial expansion.
        update_coords: use eq. (4) in all layers but the last.
        avg_num_neighbors: normalisation of the message sum (eq. 5).
        envelope_p: exponent of the polynomial cutoff envelope.
        reference_energies: per-element E_ref in eV.
        energy_scale: eV per unit of network output.
    """

    model_type = "egnn"
    reflection_invariant = True

    def __init__(self, species: List[str], cutoff: float = 5.0, hidden: int = 64, num_layers: int = 3,
                 num_basis: int = 8, update_coords: bool = True, avg_num_neighbors: float = 8.0,
                 envelope_p: int = 6, reference_energies: Optional[Dict[str, float]] = None,
                 energy_scale: float = 1.0):
        super().__init__(species, cutoff, reference_energies, energy_scale)
        self._hyper = dict(hidden=int(hidden), num_layers=int(num_layers), num_basis=int(num_basis),
                           update_coords=bool(update_coords), avg_num_neighbors=float(avg_num_neighbors),
                           envelope_p=int(envelope_p))
        self.embedding = nn.Embedding(len(self.species), hidden)
        self.radial = BesselBasis(cutoff, num_basis)
        self.envelope = PolynomialEnvelope(cutoff, envelope_p)
        self.layers = nn.ModuleList([
            EGNNLayer(hidden, num_basis, avg_num_neighbors, update_coords and k < num_layers - 1)
            for k in range(num_layers)
        ])
        self.readout = mlp([hidden, hidden, 1])

    @torch.jit.unused
    def hyperparameters(self) -> Dict[str, object]:
        return dict(self._hyper)

    @torch.jit.unused
    def message_passing_layers(self) -> int:
        return len(self.layers)

    def features(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor,
                 edge_layers: Optional[Tensor] = None) -> List[Tuple[Tensor, Tensor]]:
        """The output of every layer: a list of (h [N, F] invariant features, Δx [N, 3] Å equivariant
        virtual displacements; zeros for a layer that moves no coordinates).
        ``edge_layers`` [E]: edge e enters only the first ``edge_layers[e]`` layers."""
        vectors = edge_vectors
        if edge_layers is not None:  # edges no layer uses
            keep = torch.nonzero(edge_layers > 0).squeeze(1)
            edge_index, vectors, edge_layers = edge_index[:, keep], vectors[keep], edge_layers[keep]
        i, j = edge_index[0], edge_index[1]
        lengths = torch.linalg.norm(vectors, dim=-1)
        envelope = self.envelope(lengths)
        h = self.embedding(species)
        out: List[Tuple[Tensor, Tensor]] = []
        for k, layer in enumerate(self.layers):
            if k > 0 and edge_layers is not None:  # drop the edges whose last layer was k − 1
                keep = torch.nonzero(edge_layers > k).squeeze(1)
                edge_index, vectors, envelope, edge_layers = \
                    edge_index[:, keep], vectors[keep], envelope[keep], edge_layers[keep]
                i, j = edge_index[0], edge_index[1]
            if k > 0:  # virtual positions moved by eq. (4); keep the norm differentiable at 0
                lengths = torch.sqrt((vectors * vectors).sum(-1) + 1e-12)
            h, dx = layer(h, vectors, self.radial(lengths), envelope, edge_index)
            out.append((h, dx))
            if layer.update_coords:  # the last layer moves no coordinates: skip the E x 3 update
                vectors = vectors + dx.index_select(0, j) - dx.index_select(0, i)
        return out

    def atomic_energies_raw(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor,
                            edge_layers: Optional[Tensor] = None) -> Tensor:
        h = self.features(species, edge_index, edge_vectors, edge_layers)[-1][0]
        return self.readout(h).squeeze(-1)
