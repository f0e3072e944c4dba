"""The TorchScript module geoff exports for LAMMPS (``pair_style geoff``).

On each MPI rank LAMMPS owns ``n_local`` atoms and holds copies (ghosts) of the
atoms around its sub-domain, periodic images included. The pair style passes
all of them, local first, with the graph LAMMPS's neighbour list gives (every
pair closer than the cutoff, among ghosts too), and the module returns:

- the energy of the rank's local atoms, E_rank = Σ_{i < n_local} E_i (eV);
- their per-atom energies E_i [n_local] (eV);
- forces F_k = −∂E_rank/∂x_k on every atom, ghosts included [n_all, 3] (eV/Å): LAMMPS adds
  the ghosts' forces to their owners (newton on), so the total force is −∂(Σ_ranks E_rank)/∂x;
- the virial W = −Σ_edges r_ij ⊗ ∂E_rank/∂r_ij as LAMMPS's six components
  (xx, yy, zz, xy, xz, yz) (eV), and on request its per-atom split (half of each edge's
  term to each end) [n_all, 6] (eV).

Exactness: after L rounds of message passing an atom's energy depends on atoms up to
L × cutoff away. When the ghost shell is at least that thick, every local atom's whole
receptive field is present, so E_i (and with it every force and the virial) equals the
single-process value; ghost atoms near the shell's outer edge miss neighbours, but their
features reach no local atom within L rounds. Positions enter only through edge vectors,
computed in float64 before the cast to the model's dtype, so float32 models keep their
precision far from the origin.
"""

from typing import List, Tuple

import torch
from torch import Tensor, nn

#: the interface version the C++ pair style checks (bump when forward's contract changes).
LAMMPS_INTERFACE_VERSION = 1


class GeoffLammpsModule(nn.Module):
    """A geoff potential for LAMMPS's ``pair_style geoff`` (metal units: Å, eV).

    Args:
        potential: a geoff ``Potential`` (its ``atomic_energies`` contract is used), frozen, in eval mode.
        layers: message-passing rounds L of the potential (the ghost shell is L × cutoff thick).

    Attributes the pair style reads: ``elements`` (the potential's species, in the order of the
    species indices), ``cutoff`` (Å), ``layers``, ``dtype_name``, ``interface_version``.
    """

    def __init__(self, potential: nn.Module, layers: int):
        super().__init__()
        self.potential = potential
        self.elements: List[str] = list(potential.species)
        self.cutoff: float = float(potential.cutoff)
        self.layers: int = int(layers)
        self.dtype_name: str = str(potential.reference_energies.dtype).replace("torch.", "")
        self.interface_version: int = LAMMPS_INTERFACE_VERSION

    def forward(self, positions: Tensor, species: Tensor, edge_index: Tensor, n_local: int,
                atom_virial: bool) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Energy, per-atom energies, forces and virial of one rank's local atoms.

        Args:
            positions: [n_all, 3] float64, Å: local atoms first, then ghosts.
            species: [n_all] int64 species indices (positions in ``elements``).
            edge_index: [2, E] int64, row 0 the centre i, row 1 the neighbour j, both directions of
                every pair closer than the cutoff, between any atoms (local or ghost).
            n_local: atoms owned by this rank (the first ``n_local`` rows).
            atom_virial: also return the per-atom virial.

        Returns (all float64): energy [] eV, per-atom energies [n_local] eV, forces [n_all, 3] eV/Å,
        virial [6] eV, per-atom virial [n_all, 6] eV (empty [0, 6] unless ``atom_virial``).
        """
        dtype = self.potential.reference_energies.dtype
        i, j = edge_index[0], edge_index[1]
        r64 = positions.index_select(0, j) - positions.index_select(0, i)
        vectors = r64.to(dtype).detach().requires_grad_(True)
        atomic = self.potential.atomic_energies(species, edge_index, vectors)[:n_local]
        energy = atomic.sum()
        grads = torch.autograd.grad([energy], [vectors], allow_unused=True)
        g = grads[0]
        if g is None:  # no edges at all
            g = torch.zeros_like(vectors)
        g = g.to(torch.float64)
        # E depends on x only through r_ij = x_j − x_i: F_j −= ∂E/∂r_ij, F_i += ∂E/∂r_ij
        forces = torch.zeros_like(positions).index_add(0, i, g).index_add(0, j, -g)
        outer = -r64.unsqueeze(2) * g.unsqueeze(1)  # [E, 3, 3]: −r_ij ⊗ ∂E/∂r_ij
        voigt = torch.stack([outer[:, 0, 0], outer[:, 1, 1], outer[:, 2, 2],
                             outer[:, 0, 1], outer[:, 0, 2], outer[:, 1, 2]], dim=1)  # [E, 6]
        virial = voigt.sum(0)
        per_atom = torch.zeros((0, 6), dtype=torch.float64, device=positions.device)
        if atom_virial:
            half = 0.5 * voigt
            per_atom = torch.zeros((positions.shape[0], 6), dtype=torch.float64,
                                   device=positions.device).index_add(0, i, half).index_add(0, j, half)
        return energy.detach().to(torch.float64), atomic.detach().to(torch.float64), forces, virial, per_atom
