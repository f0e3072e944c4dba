"""The shared Potential: energy model → energy, forces and stress by autograd.

Every geoff model subclasses :class:`Potential` and implements only
``atomic_energies_raw`` (an invariant energy per atom). This class holds the one
energy contract every caller uses (the eager forward, :class:`CompiledPotential`,
the exported OpenMM module and the PythonForce; all TorchScript-able):

- :meth:`Potential.species_of`: atomic numbers → species indices;
- :meth:`Potential.atomic_energies`: (species, edges, edge vectors) → per-atom energies
  through the head E_i = scale · ε_i + E_ref[Z_i].

:meth:`Potential.forward` sums them per structure and differentiates:

    F = −∂E/∂x,      σ = (1/V) ∂E/∂ε  (ASE's sign),     W = −∂E/∂ε,

where ε is a symmetric strain applied to positions and cell together (the
NequIP/MACE displacement trick), all in one backward pass.
"""

from typing import Dict, List, Optional

import torch
from torch import Tensor, nn
from ase.data import atomic_numbers as _ase_numbers, chemical_symbols as _ase_symbols

from .. import keys
from ..errors import GeoffInputError


class Potential(nn.Module):
    """Base class: subclasses set ``model_type`` and implement ``atomic_energies_raw``.

    Args:
        species: element symbols the potential knows, e.g. ["H", "C", "O"].
        cutoff: neighbour cutoff r_c, Å.
        reference_energies: per-element reference energies E_ref, eV (default 0).
        energy_scale: multiplies the network's per-atom output, eV.
    """

    model_type: str = ""
    #: True when the energy is also invariant under reflections (E(3), not only SE(3)).
    reflection_invariant: bool = False

    def __init__(self, species: List[str], cutoff: float,
                 reference_energies: Optional[Dict[str, float]] = None, energy_scale: float = 1.0):
        super().__init__()
        species = [str(s) for s in species]
        for s in species:
            if s not in _ase_numbers or s == "X":
                raise GeoffInputError(f"unknown element symbol {s!r} in species; use symbols such as 'H', 'C', 'O'.")
        if len(set(species)) != len(species):
            raise GeoffInputError(f"species {species} lists an element twice.")
        self.species: List[str] = species
        self.cutoff: float = float(cutoff)
        self.check_species: bool = True
        z_to_species = torch.full((119,), -1, dtype=torch.long)
        for k, s in enumerate(species):
            z_to_species[_ase_numbers[s]] = k
        self.register_buffer("z_to_species", z_to_species)
        ref = torch.zeros(len(species), dtype=torch.get_default_dtype())
        for s, e in (reference_energies or {}).items():
            if s not in species:
                raise GeoffInputError(f"reference energy given for {s!r}, which is not in species {species}.")
            ref[species.index(s)] = float(e)
        self.register_buffer("reference_energies", ref)
        self.register_buffer("energy_scale", torch.tensor(float(energy_scale)))

    # ---- to be implemented by each model -------------------------------------------------
    def atomic_energies_raw(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor,
                            edge_layers: Optional[Tensor] = None) -> Tensor:
        """Invariant per-atom outputs ε_i [N] from species [N], edges [2, E] and r_ij [E, 3] (Å).

        ``edge_layers`` [E] int64 (optional): edge e takes part only in the first ``edge_layers[e]``
        message-passing layers (see :meth:`atomic_energies`)."""
        raise NotImplementedError

    def hyperparameters(self) -> Dict[str, object]:
        """JSON-able constructor arguments besides species and cutoff."""
        raise NotImplementedError

    @torch.jit.unused
    def message_passing_layers(self) -> int:
        """Rounds of message passing L: atom i's energy depends on atoms up to L × cutoff away
        (its receptive field; a domain decomposition needs ghost atoms that far out)."""
        raise NotImplementedError

    # ---- the energy contract (TorchScript-able) ----------------------------------------------
    def species_of(self, atomic_numbers: Tensor) -> Tensor:
        """Species indices [N] (int64, −1 for elements this potential does not know) of atomic numbers [N]."""
        return self.z_to_species[atomic_numbers]

    def atomic_energies(self, species: Tensor, edge_index: Tensor, edge_vectors: Tensor,
                        edge_layers: Optional[Tensor] = None) -> Tensor:
        """Per-atom energies E_i = scale · ε_i + E_ref[species_i] [N] (eV).

        Args:
            species: [N] int64 (see :meth:`species_of`).
            edge_index: [2, E] int64, row 0 the centre i, row 1 the neighbour j.
            edge_vectors: r_ij = x_j − x_i (+ periodic offset) [E, 3] Å.
            edge_layers: [E] int64 or None (all edges in all layers). Edge e enters only the first
                ``edge_layers[e]`` layers: exact for the atoms whose energy the caller keeps when an
                edge is dropped only from layers whose output at its centre cannot reach them (a
                domain decomposition drops, for a centre h hops from the kept atoms, the last h
                layers); the other atoms' energies are then meaningless. Must be the same for all
                edges of one centre (attention normalises over a centre's edges).
        """
        return self.energy_scale * self.atomic_energies_raw(species, edge_index, edge_vectors, edge_layers) \
            + self.reference_energies[species]

    # ---- shared ------------------------------------------------------------------------
    @torch.jit.unused
    def config(self) -> Dict[str, object]:
        """Everything needed to rebuild this model (weights come from the state dict)."""
        return {"species": list(self.species), "cutoff": self.cutoff, **self.hyperparameters()}

    @torch.jit.unused
    def reference_energy_dict(self) -> Dict[str, float]:
        return {s: float(e) for s, e in zip(self.species, self.reference_energies.tolist())}

    @torch.jit.unused
    def set_reference_energies(self, energies: Dict[str, float]) -> None:
        """Set E_ref for the given elements (eV); others keep their value."""
        for s, e in energies.items():
            if s not in self.species:
                raise GeoffInputError(f"reference energy given for {s!r}, which is not in species {self.species}.")
            self.reference_energies[self.species.index(s)] = float(e)

    @torch.jit.unused
    def check_elements(self, atomic_numbers) -> None:
        """Raise GeoffInputError naming any element this potential was not trained on."""
        z = torch.as_tensor(atomic_numbers).reshape(-1).cpu()
        bad = sorted({int(v) for v in z.tolist() if v < 0 or v > 118 or int(self.z_to_species[int(v)]) < 0})
        if bad:
            names = [_ase_symbols[v] if 0 <= v <= 118 else str(v) for v in bad]
            raise GeoffInputError(
                f"element(s) {names} are not known to this potential, which covers {self.species}. "
                "Use a potential trained on these elements, or fine-tune this one on data that contains them."
            )

    def forward(self, graph: Dict[str, Tensor], compute_forces: bool = True, compute_stress: bool = False,
                create_graph: bool = False) -> Dict[str, Tensor]:
        """Energy [B] (eV), atomic energies [N], and on request forces [N, 3] (eV/Å),
        virial [B, 3, 3] (eV) and stress [B, 3, 3] (eV/Å³).

        ``create_graph`` keeps the graph of the derivatives (training on forces).
        """
        positions = graph[keys.POSITIONS]
        if (compute_forces or compute_stress) and not positions.requires_grad:
            positions = positions.detach().requires_grad_(True)
        batch = graph[keys.BATCH]
        cell = graph[keys.CELL]
        num_graphs = graph[keys.NUM_ATOMS].shape[0]
        edge_index = graph[keys.EDGE_INDEX]
        i, j = edge_index[0], edge_index[1]

        strain = torch.zeros((num_graphs, 3, 3), dtype=positions.dtype, device=positions.device)
        pos = positions
        if compute_stress:
            strain.requires_grad_(True)
            sym = 0.5 * (strain + strain.transpose(1, 2))
            pos = positions + torch.bmm(positions.unsqueeze(1), sym[batch]).squeeze(1)
            cell = cell + torch.bmm(cell, sym)

        edge_vectors = pos[j] - pos[i]
        if bool(graph[keys.PBC].any()):
            edge_vectors = edge_vectors + torch.bmm(graph[keys.EDGE_SHIFTS].unsqueeze(1), cell[batch[i]]).squeeze(1)

        species = self.species_of(graph[keys.ATOMIC_NUMBERS])
        if self.check_species:
            if bool((species < 0).any()):
                raise ValueError("geoff: an atom's element is not known to this potential (see potential.species).")
        atomic = self.atomic_energies(species, edge_index, edge_vectors)
        energy = torch.zeros((num_graphs,), dtype=atomic.dtype, device=atomic.device).index_add(0, batch, atomic)
        out: Dict[str, Tensor] = {keys.ENERGY: energy, keys.ATOMIC_ENERGIES: atomic}

        if compute_forces or compute_stress:
            inputs = [positions]
            if compute_stress:
                inputs.append(strain)
            grads = torch.autograd.grad([energy.sum()], inputs, create_graph=create_graph, allow_unused=True)
            g_pos = grads[0]
            if g_pos is None:
                g_pos = torch.zeros_like(positions)
            if compute_forces:
                out[keys.FORCES] = -g_pos
            if compute_stress:
                g_strain = grads[1]
                if g_strain is None:
                    g_strain = torch.zeros_like(strain)
                volume = torch.abs(torch.linalg.det(graph[keys.CELL])).view(-1, 1, 1)
                out[keys.VIRIAL] = -g_strain
                out[keys.STRESS] = g_strain / volume
        return out
