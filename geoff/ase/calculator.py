"""GeoffCalculator: any geoff potential as an ASE calculator."""

import os
from typing import Optional, Sequence, Union

import numpy as np
import torch
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from .. import keys
from ..graph import VerletNeighbourList, check_atoms, check_distances, complete_graph
from ..io import load_potential
from ..models import CommitteePotential, CompiledPotential
from ..models.committee import COMMITTEE_RESULTS, committee_statistics

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


#: the graph-edge distance check, under the name this module has always exported
check_min_distance = check_distances


class GeoffCalculator(Calculator):
    """ASE calculator for a geoff potential.

    Args:
        potential: a geoff ``Potential``, a path to a potential file, or a shipped name.
        device: "cpu", "cuda", ...
        dtype: "float32" or "float64" (default: the potential's own dtype).
        neighbours: neighbour-list method (see ``geoff.graph.NEIGHBOUR_METHODS``).
        skin: Verlet skin, Å: edges are rebuilt only after an atom moves skin/2 (0: every call).
        min_distance: refuse structures with atoms closer than this, Å.
        compile: evaluate energy and forces through :class:`geoff.CompiledPotential`
            (torch.compile; the first call of each system size compiles for ~20–30 s, later
            calls 3–5× faster on small molecules, 2–3.5× on ≥ 6 000 atoms: benchmarks/README.md). Stress stays eager.
        complete_graph_atoms: with ``compile``, open-boundary structures of at most this many
            atoms use every pair as an edge instead of a neighbour list (static shapes).

    Results: energy and free_energy (eV), energies (eV per atom), forces (eV/Å),
    stress (eV/Å³, Voigt order xx yy zz yz xz xy; periodic cells only).

    A :class:`geoff.CommitteePotential` gives the members' mean for all of these, and also
    ``energy_std`` (eV), ``forces_std`` [N] (eV/Å: per atom the norm of the per-component standard
    deviations, a rotation-invariant spread), ``max_force_std`` (eV/Å) and ``member_energies`` [M] (eV)
    (see :func:`geoff.models.committee.committee_statistics`; standard deviations with ddof = 0).
    Read them with ``atoms.calc.get_property("max_force_std", atoms)`` or ``atoms.calc.results``.
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, potential, device: Union[str, torch.device] = "cpu", dtype: Optional[str] = None,
                 neighbours: str = "auto", skin: float = 0.5, min_distance: float = 0.3, compile: bool = False,
                 complete_graph_atoms: int = 32, **kwargs):
        super().__init__(**kwargs)
        if isinstance(potential, (str, os.PathLike)):
            potential = load_potential(potential)
        if dtype is not None:
            if dtype not in _DTYPES:
                raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
            potential = potential.to(_DTYPES[dtype])
        self.potential = potential.to(device).eval()
        self.device = torch.device(device)
        self.dtype = self.potential.reference_energies.dtype
        self.neighbour_list = VerletNeighbourList(self.potential.cutoff, skin, self.dtype, self.device, neighbours)
        self.min_distance = float(min_distance)
        self.model = CompiledPotential(self.potential) if compile else self.potential
        self.complete_graph_atoms = int(complete_graph_atoms) if compile else 0
        self.members = None
        if isinstance(self.potential, CommitteePotential):  # each member once: mean and spread together
            self.members = [CompiledPotential(m) for m in self.potential.members] if compile \
                else list(self.potential.members)
            self.implemented_properties = list(type(self).implemented_properties) + list(COMMITTEE_RESULTS)

    def check_state(self, atoms, tol: float = 1e-15):
        """ASE's change detection, with a fast answer for the common MD case (new positions):
        ASE's full comparison costs ~0.1 ms per property request, as much as a small molecule's
        compiled energy + forces call."""
        old = self.atoms
        if old is not None and old.positions.shape == atoms.positions.shape \
                and not np.array_equal(old.positions, atoms.positions):
            return ["positions"]  # calculate() reads everything afresh; this only triggers it
        return super().check_state(atoms, tol)

    def _graph(self, atoms):
        # The structure check (cell, thin cell, NaN, elements) before any neighbour search. Atoms too
        # close: before a neighbour-list rebuild a search within min_distance (cheap; it also stops a
        # structure in the wrong units from flooding the full search with pairs), otherwise the edges.
        rebuild = atoms.pbc.any() or len(atoms) > self.complete_graph_atoms
        rebuild = rebuild and not self.neighbour_list.is_current(atoms)
        check_atoms(atoms, self.potential, min_distance=self.min_distance if rebuild else 0.0)
        if not atoms.pbc.any() and len(atoms) <= self.complete_graph_atoms:
            p = atoms.positions
            d2 = np.sum((p[:, None, :] - p[None, :, :]) ** 2, axis=-1)
            np.fill_diagonal(d2, np.inf)
            graph = complete_graph(p, atoms.numbers, dtype=self.dtype, device=self.device)
            if len(atoms) > 1 and d2.min() < self.min_distance ** 2:
                check_distances(graph, self.min_distance)  # raises, naming the atoms
            return graph
        graph = self.neighbour_list.graph(atoms)
        check_distances(graph, self.min_distance)
        return graph

    def calculate(self, atoms=None, properties: Sequence[str] = ("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        want_stress = "stress" in properties
        if want_stress and not atoms.pbc.all():
            raise PropertyNotImplementedError("stress is defined only for cells periodic in all three directions.")
        graph = self._graph(atoms)
        if self.members is not None:
            self._calculate_committee(graph, want_stress)
            return
        out = self.model(graph, compute_forces=True, compute_stress=want_stress)
        energy = float(out[keys.ENERGY][0].detach())
        self.results["energy"] = energy
        self.results["free_energy"] = energy
        self.results["energies"] = out[keys.ATOMIC_ENERGIES].detach().cpu().numpy().astype(np.float64)
        self.results["forces"] = out[keys.FORCES].detach().cpu().numpy().astype(np.float64)
        if keys.STRESS in out:
            stress = out[keys.STRESS][0].detach().cpu().numpy().astype(np.float64)
            self.results["stress"] = full_3x3_to_voigt_6_stress(stress)

    def _calculate_committee(self, graph, want_stress: bool) -> None:
        out = self.potential.member_outputs(graph, compute_stress=want_stress, models=self.members)
        forces = out[keys.FORCES].cpu().numpy().astype(np.float64)                  # [M, N, 3]
        stats = committee_statistics(out[keys.ENERGY][:, 0].cpu().numpy().astype(np.float64), forces)
        self.results.update(stats)
        self.results["free_energy"] = stats["energy"]
        self.results["energies"] = out[keys.ATOMIC_ENERGIES].cpu().numpy().astype(np.float64).mean(axis=0)
        if want_stress:
            stress = out[keys.STRESS][:, 0].cpu().numpy().astype(np.float64).mean(axis=0)
            self.results["stress"] = full_3x3_to_voigt_6_stress(stress)
