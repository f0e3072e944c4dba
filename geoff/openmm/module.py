"""The TorchScript module geoff exports for OpenMM (openmm-torch's ``TorchForce``).

OpenMM calls ``forward(positions)`` — or ``forward(positions, boxvectors)`` when
the force uses periodic boundary conditions — with every particle of the
System, in nm, and expects the energy in kJ/mol (and, when
``TorchForce.setOutputsForces(True)``, the forces in kJ/mol/nm as well). The
module baked into the file holds everything else: the potential's weights,
the species of the ML atoms, which particles are ML atoms (ML/MM), the cutoff
and the neighbour-list strategy. Unit factors come from :mod:`geoff.units`.

Energy (eV) is the sum over ML atoms of :meth:`geoff.models.Potential.atomic_energies`; forces are −∂E/∂x by autograd in the same
graph. Nothing in ``forward`` copies to the host in the "dense" neighbour mode
(no ``.item()``, no data-dependent shapes), so it can be captured in a CUDA graph.
"""

from typing import Optional, Tuple

import torch
from torch import Tensor, nn

from ..units import EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM
from ..graph.neighbours import all_ordered_pairs, cell_list_pairs, cutoff_pairs, dense_pairs, edge_vectors

#: neighbour-list strategies of the exported module (see geoff.graph.neighbours.minimum_image).
NEIGHBOUR_MODES = ("dense", "pairs", "cells")


class GeoffOpenMMModule(nn.Module):
    """A geoff potential in OpenMM's units, for a fixed set of ML atoms.

    Args:
        potential: a geoff ``Potential`` (any model; its energy contract ``species_of`` /
            ``atomic_energies`` is used).
        atomic_numbers: [M] atomic numbers of the ML atoms, in the order they appear.
        ml_indices: [M] indices of the ML atoms among OpenMM's particles, or None when
            every particle is an ML atom (M = number of particles).
        periodic: use OpenMM's box vectors (minimum image, reduced triclinic boxes).
        neighbour_mode: "dense", "pairs" or "cells" (see geoff.graph.neighbours.minimum_image).
        check_box: on CPU tensors, raise if the box gets thinner than twice the cutoff.

    ``compute(positions [P, 3] nm, boxvectors [3, 3] nm or None, need_forces)``
    returns (energy [] kJ/mol, forces [P, 3] kJ/mol/nm — zeros for non-ML particles,
    and an empty tensor when ``need_forces`` is False).
    """

    def __init__(self, potential: nn.Module, atomic_numbers: Tensor, ml_indices: Optional[Tensor],
                 periodic: bool, neighbour_mode: str = "dense", check_box: bool = True):
        super().__init__()
        if neighbour_mode not in NEIGHBOUR_MODES:
            raise ValueError(f"neighbour_mode must be one of {NEIGHBOUR_MODES}, got {neighbour_mode!r}")
        self.potential = potential
        device = potential.reference_energies.device
        z = torch.as_tensor(atomic_numbers, dtype=torch.long).reshape(-1).to(device)
        self.register_buffer("species", potential.species_of(z))
        self.use_subset: bool = ml_indices is not None
        if ml_indices is None:
            ml_indices = torch.arange(int(z.shape[0]))
        self.register_buffer("ml_indices", torch.as_tensor(ml_indices, dtype=torch.long).reshape(-1).to(device))
        n = int(z.shape[0])
        pairs = all_ordered_pairs(n, device) if neighbour_mode == "dense" else \
            torch.zeros((2, 0), dtype=torch.long, device=device)
        self.register_buffer("pairs", pairs)
        self.periodic: bool = bool(periodic)
        self.neighbour_mode: str = neighbour_mode
        self.check_box: bool = bool(check_box)
        self.cutoff: float = float(potential.cutoff)
        self.dtype_name: str = str(potential.reference_energies.dtype).replace("torch.", "")
        self.nm_to_angstrom: float = float(NM_TO_ANGSTROM)
        self.ev_to_kj_per_mol: float = float(EV_TO_KJ_PER_MOL)

    def neighbours(self, pos: Tensor, box: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """The ML atoms' edges: edge_index [2, E] and shifts [E, 3] in lattice vectors of ``box``
        (zeros when open), from positions [M, 3] Å and box [3, 3] Å (see geoff.graph.neighbours)."""
        if self.neighbour_mode == "dense":
            return dense_pairs(pos, self.pairs, box)
        if self.neighbour_mode == "cells":
            return cell_list_pairs(pos, box, self.cutoff)
        return cutoff_pairs(pos, box, self.cutoff)

    def box_angstrom(self, boxvectors: Tensor) -> Tensor:
        """OpenMM's box vectors [3, 3] nm → Å, checked (CPU) to stay ≥ 2 r_c thick (minimum image)."""
        box = boxvectors * self.nm_to_angstrom
        if self.check_box and not box.is_cuda:
            heights = torch.stack([box[0, 0], box[1, 1], box[2, 2]])
            if bool((heights < 2.0 * self.cutoff).any()):
                raise RuntimeError("geoff: the periodic box became thinner than twice the cutoff "
                                   "(minimum image no longer exact); use a larger box.")
        return box

    def compute(self, positions: Tensor, boxvectors: Optional[Tensor], need_forces: bool) -> Tuple[Tensor, Tensor]:
        dtype = self.potential.reference_energies.dtype
        # Relative to the first ML atom, in OpenMM's own precision (float64 on the Reference and CPU
        # platforms) before the cast to the model's dtype: the energy is translation invariant, and a
        # float32 cast of positions far from the origin would round away the geometry. No host sync.
        origin = positions.detach().index_select(0, self.ml_indices[:1])
        all_pos = (positions - origin).to(dtype)
        if need_forces:
            all_pos = all_pos.detach().requires_grad_(True)
        pos = all_pos
        if self.use_subset:
            pos = all_pos.index_select(0, self.ml_indices)
        pos = pos * self.nm_to_angstrom
        box: Optional[Tensor] = None
        if self.periodic:
            if boxvectors is None:
                raise RuntimeError("geoff: this module was exported for a periodic system but got no box vectors; "
                                   "call TorchForce.setUsesPeriodicBoundaryConditions(True).")
            box = self.box_angstrom(boxvectors.to(dtype))
        edge_index, shifts = self.neighbours(pos, box)
        vectors = edge_vectors(pos, edge_index, shifts, box)
        energy = self.potential.atomic_energies(self.species, edge_index, vectors).sum() * self.ev_to_kj_per_mol
        if need_forces:
            grads = torch.autograd.grad([energy], [all_pos], allow_unused=True)
            g = grads[0]
            if g is None:
                g = torch.zeros_like(all_pos)
            return energy.detach(), -g
        return energy, torch.zeros(0, dtype=dtype, device=positions.device)


class EnergyModule(GeoffOpenMMModule):
    """forward(positions [P, 3] nm[, boxvectors [3, 3] nm]) → energy [] kJ/mol (OpenMM differentiates)."""

    def forward(self, positions: Tensor, boxvectors: Optional[Tensor] = None) -> Tensor:
        return self.compute(positions, boxvectors, False)[0]


class EnergyForcesModule(GeoffOpenMMModule):
    """forward(positions [P, 3] nm[, boxvectors]) → (energy [] kJ/mol, forces [P, 3] kJ/mol/nm);
    use with ``TorchForce.setOutputsForces(True)``."""

    def forward(self, positions: Tensor, boxvectors: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        return self.compute(positions, boxvectors, True)
