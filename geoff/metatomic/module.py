"""The TorchScript module inside a geoff metatomic file (``metatomic.torch.AtomisticModel``).

An engine (metatomic-ase, OpenMM-ML, LAMMPS, i-PI, TorchSim, ...) hands the model a list of
``System`` objects: atomic numbers (``types``), positions and cell in Å, and the neighbour list the
model requested, with the pair vectors r_ij = x_j − x_i + S_ij · cell that the engine computed from
positions and cell (so they carry the autograd graph the engine differentiates for forces and
stress). The module message-passes over exactly those pairs: the list is *full* (both i→j and
j→i, geoff's directed edges) and *strict* (only pairs closer than the cutoff), with the cutoff of
the potential. A neighbour list computed by the engine at the model's cutoff is the geoff graph
itself, so nothing is approximated.

Per-atom energies are those of :meth:`geoff.models.Potential.atomic_energies` (eV); the system
energy is their sum over the atoms in ``selected_atoms`` (all atoms when None). Engines that split
a system into domains (LAMMPS) select the atoms they own and give ghost atoms up to the model's
``interaction_range`` = cutoff × message-passing layers, so the owned atoms' energies are exact.
"""

from typing import Dict, List, Optional

import torch
from metatensor.torch import Labels, TensorBlock, TensorMap
from metatomic.torch import ModelOutput, NeighborListOptions, System
from torch import Tensor, nn


class GeoffMetatomicModule(nn.Module):
    """A geoff potential behind metatomic's model interface (output ``"energy"``, eV).

    Args:
        potential: a geoff ``Potential`` (its ``species_of`` / ``atomic_energies`` contract),
            in eval mode, in the dtype the file declares.

    ``forward(systems, outputs, selected_atoms)`` returns ``{"energy": TensorMap}`` with one
    block: samples ``system`` [B] (or ``system, atom`` [N] when the engine asks for per-atom
    energies), values [B, 1] (or [N, 1]) eV.
    """

    def __init__(self, potential: nn.Module):
        super().__init__()
        self.potential = potential
        self.neighbors = NeighborListOptions(cutoff=float(potential.cutoff), full_list=True, strict=True)

    def requested_neighbor_lists(self) -> List[NeighborListOptions]:
        return [self.neighbors]

    def forward(self, systems: List[System], outputs: Dict[str, ModelOutput],
                selected_atoms: Optional[Labels]) -> Dict[str, TensorMap]:
        if "energy" not in outputs or len(systems) == 0:
            return {}
        device = systems[0].positions.device
        species_list: List[Tensor] = []
        edge_list: List[Tensor] = []
        vector_list: List[Tensor] = []
        system_list: List[Tensor] = []
        atom_list: List[Tensor] = []
        offsets: List[int] = []
        offset = 0
        for k, system in enumerate(systems):
            n = int(system.types.shape[0])
            offsets.append(offset)
            pairs = system.get_neighbor_list(self.neighbors)
            ij = pairs.samples.values[:, :2].to(torch.long)
            edge_list.append(ij.t() + offset)
            vector_list.append(pairs.values.reshape(-1, 3))
            species_list.append(self.potential.species_of(system.types.to(torch.long)))
            system_list.append(torch.full((n,), k, dtype=torch.long, device=device))
            atom_list.append(torch.arange(n, dtype=torch.long, device=device))
            offset += n
        species = torch.cat(species_list)
        if bool((species < 0).any()):
            raise ValueError("geoff: an atomic type is not known to this potential (see its atomic_types).")
        atomic = self.potential.atomic_energies(species, torch.cat(edge_list, dim=1), torch.cat(vector_list))
        system_of_atom = torch.cat(system_list)
        atom_in_system = torch.cat(atom_list)

        keep = torch.ones_like(system_of_atom, dtype=torch.bool)
        if selected_atoms is not None:
            start = torch.tensor(offsets, dtype=torch.long, device=device)
            chosen = selected_atoms.values.to(torch.long)
            keep = torch.zeros_like(keep)
            keep[start[chosen[:, 0]] + chosen[:, 1]] = True

        properties = Labels(["energy"], torch.zeros((1, 1), dtype=torch.int32, device=device))
        if outputs["energy"].sample_kind == "atom":
            index = torch.nonzero(keep).reshape(-1)
            samples = Labels(["system", "atom"], torch.stack([system_of_atom[index], atom_in_system[index]],
                                                              dim=1).to(torch.int32))
            values = atomic.index_select(0, index).reshape(-1, 1)
        else:
            samples = Labels(["system"], torch.arange(len(systems), dtype=torch.int32, device=device).reshape(-1, 1))
            kept = torch.where(keep, atomic, torch.zeros_like(atomic))
            values = torch.zeros((len(systems),), dtype=atomic.dtype, device=device) \
                .index_add(0, system_of_atom, kept).reshape(-1, 1)
        block = TensorBlock(values=values, samples=samples, components=torch.jit.annotate(List[Labels], []),
                            properties=properties)
        return {"energy": TensorMap(Labels(["_"], torch.zeros((1, 1), dtype=torch.int32, device=device)), [block])}
