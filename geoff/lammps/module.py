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
features reach no local atom within L rounds. For the same reason an edge whose centre is h hops
(graph distance) from the nearest local atom is needed only in the first L − h layers: the module
drops it from the rest (``prune``), which saves most of the ghost shell's cost in the late layers
and changes no local energy. Positions enter only through edge vectors,
computed in float64 before the cast to the model's dtype, so float32 models keep their
precision far from the origin.
"""

from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

#: the interface version the C++ pair style checks (bump when forward's contract changes).
LAMMPS_INTERFACE_VERSION = 1


class GeoffLammpsModule(nn.Module):
    """A geoff potential for LAMMPS's ``pair_style geoff`` (metal units: Å, eV).

    Args:
        potential: a geoff ``Potential`` (its ``atomic_energies`` contract is used), frozen, in eval mode.
        layers: message-passing rounds L of the potential (the ghost shell is L × cutoff thick).
        prune: give each edge only the layers whose output can still reach a local atom (exact).

    Attributes the pair style reads: ``elements`` (the potential's species, in the order of the
    species indices), ``cutoff`` (Å), ``layers``, ``dtype_name``, ``interface_version``.
    """

    def __init__(self, potential: nn.Module, layers: int, prune: bool = True):
        super().__init__()
        self.prune: bool = bool(prune)
        self.potential = potential
        self.elements: List[str] = list(potential.species)
        self.cutoff: float = float(potential.cutoff)
        self.layers: int = int(layers)
        self.dtype_name: str = str(potential.reference_energies.dtype).replace("torch.", "")
        self.interface_version: int = LAMMPS_INTERFACE_VERSION

    def layers_per_edge(self, edge_index: Tensor, n_all: int, n_local: int) -> Tensor:
        """[E] int64: the layers L − h_i edge (i, j) is needed in, h_i the hop distance (along edges)
        of its centre i from the nearest local atom (0 for edges whose centre is L or more hops away)."""
        i, j = edge_index[0], edge_index[1]
        hops = torch.full((n_all,), self.layers, dtype=torch.long, device=edge_index.device)
        hops[:n_local] = 0
        for _ in range(self.layers - 1):  # exact for every atom up to L − 1 hops away; the rest stay at L
            hops = hops.scatter_reduce(0, j, hops.index_select(0, i) + 1, reduce="amin", include_self=True)
        return self.layers - hops.index_select(0, i)

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
        edge_layers: Optional[Tensor] = None
        if self.prune:
            edge_layers = self.layers_per_edge(edge_index, positions.shape[0], n_local)
        atomic = self.potential.atomic_energies(species, edge_index, vectors, edge_layers)[:n_local]
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
