"""The OpenMM system as geoff sees it, checked, and the module built for it.

:func:`system_spec` collects the particles, ML subset, box and positions;
:func:`check_system` / :func:`prepare_potential` check them against the potential;
:func:`make_module` / :func:`build_module` build the (TorchScript) module that
TorchForce, PythonForce (:mod:`geoff.openmm.forces`) and the exported file
(:mod:`geoff.openmm.export`) run.

Everything that can go wrong with a system — an element the potential does
not know, an ML subset that is empty or out of range, a box thinner than twice
the cutoff, a potential file of another format version — raises a
:class:`~geoff.errors.GeoffInputError` / :class:`~geoff.errors.GeoffFileError`
here, at system-creation time, instead of producing NaNs thousands of steps later.
"""

import copy
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import GeoffInputError
from ..io import load_potential
from ..units import NM_TO_ANGSTROM
from .module import NEIGHBOUR_MODES, EnergyForcesModule, EnergyModule, GeoffOpenMMModule

#: ML atoms up to which "auto" uses the dense (static-shape, CUDA-graph-friendly) pair list.
DENSE_MAX_ATOMS = 48
#: ML atoms up to which "auto" uses all-pairs distances (O(N²), no binning overhead); above it a
#: cell list (O(N)). The crossover was timed on water boxes (benchmarks/README.md).
PAIRS_MAX_ATOMS = 800
#: Whether the module returns forces itself (TorchForce.setOutputsForces(True)) by default.
#: Returning only the energy (openmm-torch back-propagates) was never slower in the benchmarks
#: (benchmarks/README.md), so it is the default.
DEFAULT_OUTPUTS_FORCES = False

_DTYPES = {"float32": torch.float32, "float64": torch.float64, "single": torch.float32, "double": torch.float64}


@dataclass
class SystemSpec:
    """What the exported module needs to know about the OpenMM system (checked)."""

    atomic_numbers: np.ndarray            # [P] of every particle (0 for particles without element)
    ml_atoms: Optional[List[int]]         # indices of the ML atoms, None = all particles
    periodic: bool
    box_nm: Optional[np.ndarray] = None   # [3, 3] rows a, b, c in nm, when known
    positions_nm: Optional[np.ndarray] = None  # [P, 3] of every particle in nm, when known (checked)
    min_distance: float = 0.5             # Å: ML atoms closer than this are refused (with positions)
    info: Dict[str, Any] = field(default_factory=dict)

    @property
    def ml_numbers(self) -> np.ndarray:
        return self.atomic_numbers if self.ml_atoms is None else self.atomic_numbers[self.ml_atoms]

    def ml_structure(self):
        """The ML atoms as an ``ase.Atoms`` (Å; with the box when periodic), or None without positions."""
        if self.positions_nm is None:
            return None
        from ase import Atoms

        pos = self.positions_nm if self.ml_atoms is None else self.positions_nm[self.ml_atoms]
        periodic = self.periodic and self.box_nm is not None
        return Atoms(numbers=self.ml_numbers, positions=pos * NM_TO_ANGSTROM,
                     cell=self.box_nm * NM_TO_ANGSTROM if periodic else None, pbc=periodic)


def _nm_array(value) -> np.ndarray:
    """Box vectors (OpenMM Quantity, Vec3s or array) → [3, 3] float array in nm."""
    try:
        from openmm import unit

        def strip(x):
            return x.value_in_unit(unit.nanometer) if unit.is_quantity(x) else x
    except ImportError:  # pragma: no cover - openmm is an optional dependency
        def strip(x):
            return x
    value = strip(value)
    return np.array([[float(x) for x in strip(v)] for v in value], dtype=np.float64).reshape(3, 3)


def _nm_positions(value) -> np.ndarray:
    """Positions (OpenMM Quantity, list of Vec3 or array, nm) → [P, 3] float array in nm."""
    try:
        from openmm import unit

        if unit.is_quantity(value):
            value = value.value_in_unit(unit.nanometer)
    except ImportError:  # pragma: no cover - openmm is an optional dependency
        pass
    try:
        return np.array([[float(x) for x in v] for v in value], dtype=np.float64).reshape(-1, 3)
    except (TypeError, ValueError) as exc:
        raise GeoffInputError(f"positions must be [P, 3] coordinates in nm (an OpenMM Quantity or an array): "
                              f"{exc}") from exc


def resolve_potential(potential, dtype: Optional[Union[str, torch.dtype]] = None):
    """A geoff Potential from itself, a file path or a shipped name (in the requested dtype)."""
    if isinstance(potential, (str, os.PathLike)):
        potential = load_potential(potential)
    if dtype is not None:
        if isinstance(dtype, str):
            if dtype not in _DTYPES:
                raise GeoffInputError(f"precision/dtype must be one of {sorted(_DTYPES)}, got {dtype!r}.")
            dtype = _DTYPES[dtype]
        potential = potential.to(dtype)
    return potential


def system_spec(topology=None, atomic_numbers: Optional[Sequence[int]] = None, ml_atoms=None,
                periodic: Optional[bool] = None, box_vectors=None, positions=None,
                min_distance: float = 0.5) -> SystemSpec:
    """Collect and check the particles, ML subset and box (from a Topology or plain arrays).

    ``positions`` [P, 3] nm (optional): the structure is then checked as well
    (:func:`check_system`), with ML atoms closer than ``min_distance`` Å refused."""
    if topology is not None:
        numbers = []
        for atom in topology.atoms():
            numbers.append(0 if atom.element is None else int(atom.element.atomic_number))
        atomic_numbers = numbers
        if box_vectors is None:
            box_vectors = topology.getPeriodicBoxVectors()
        if periodic is None:
            periodic = topology.getPeriodicBoxVectors() is not None
    if atomic_numbers is None:
        raise GeoffInputError("give the system's topology or its atomic numbers.")
    z = np.asarray(atomic_numbers, dtype=np.int64).reshape(-1)
    if z.size == 0:
        raise GeoffInputError("the system has no particles.")
    subset: Optional[List[int]] = None
    if ml_atoms is not None:
        subset = [int(a) for a in ml_atoms]
        if not subset:
            raise GeoffInputError("the ML atom subset is empty; give the indices of the atoms geoff should model.")
        bad = [a for a in subset if a < 0 or a >= len(z)]
        if bad:
            raise GeoffInputError(f"ML atom indices {bad[:10]} are out of range for a system of {len(z)} particles "
                                  f"(valid: 0..{len(z) - 1}).")
        if len(set(subset)) != len(subset):
            raise GeoffInputError("the ML atom subset lists an atom more than once.")
    chosen = z if subset is None else z[subset]
    if np.any(chosen <= 0):
        where = np.nonzero(chosen <= 0)[0][:10]
        idx = where.tolist() if subset is None else [subset[k] for k in where]
        raise GeoffInputError(f"particles {idx} have no element (virtual sites or extra particles?); exclude them "
                              "from the ML atoms (ml_atoms=...) or give them an element in the topology.")
    box = None if box_vectors is None else _nm_array(box_vectors)
    pos = None
    if positions is not None:
        pos = _nm_positions(positions)
        if len(pos) != len(z):
            raise GeoffInputError(f"{len(pos)} positions for a system of {len(z)} particles; give one position "
                                  "(nm) per particle.")
    return SystemSpec(z, subset, bool(periodic), box, pos, float(min_distance))


def check_system(potential, spec: SystemSpec) -> None:
    """Raise a clear error for elements the potential lacks, a box thinner than 2 × cutoff, and (with
    positions) everything :func:`geoff.graph.check_atoms` refuses among the ML atoms."""
    from ..graph import check_atoms

    structure = spec.ml_structure()
    if structure is not None:
        check_atoms(structure, potential, min_distance=spec.min_distance, label="ML atoms",
                    atom_ids=spec.ml_atoms)  # messages give the System's particle indices
    potential.check_elements(spec.ml_numbers)
    if spec.periodic:
        if spec.box_nm is None:
            return  # box only known at run time (the module checks it on the CPU)
        box = spec.box_nm
        if abs(box[0, 1]) > 1e-9 or abs(box[0, 2]) > 1e-9 or abs(box[1, 2]) > 1e-9:
            raise GeoffInputError(f"box vectors {box.tolist()} nm are not in OpenMM's reduced form "
                                  "(a along x, b in the xy plane); let OpenMM set them (System/Topology).")
        heights_a = np.array([box[0, 0], box[1, 1], box[2, 2]]) * NM_TO_ANGSTROM
        if np.any(heights_a < 2.0 * potential.cutoff):
            raise GeoffInputError(
                f"the periodic box is {heights_a.min():.2f} Å thick along its thinnest direction, less than twice "
                f"the potential's cutoff ({potential.cutoff} Å), so an atom would see two images of a neighbour. "
                "Use a larger box (at least 2 × cutoff along every direction)."
            )


def choose_neighbour_mode(n_ml_atoms: int, requested: str = "auto") -> str:
    """"dense" for small molecules, "pairs" up to PAIRS_MAX_ATOMS, "cells" beyond (or as requested)."""
    if requested != "auto":
        if requested not in NEIGHBOUR_MODES:
            raise GeoffInputError(f"neighbour_list must be 'auto' or one of {NEIGHBOUR_MODES}, got {requested!r}.")
        return requested
    if n_ml_atoms <= DENSE_MAX_ATOMS:
        return "dense"
    return "pairs" if n_ml_atoms <= PAIRS_MAX_ATOMS else "cells"


def prepare_potential(potential, spec: SystemSpec, dtype=None,
                      device: Union[str, torch.device] = "cpu"):
    """The caller's potential (object, file or shipped name) checked against ``spec`` and copied:
    in ``dtype`` on ``device``, in eval mode, weights frozen (the caller's model never changes)."""
    potential = copy.deepcopy(resolve_potential(potential))  # never change the caller's model
    potential = resolve_potential(potential, dtype)
    check_system(potential, spec)
    potential = potential.to(device).eval()
    for p in potential.parameters():
        p.requires_grad_(False)
    return potential


def make_module(prepared, spec: SystemSpec, outputs_forces: bool = True, neighbour_list: str = "auto",
                subset_inside: bool = True, script: bool = True) -> GeoffOpenMMModule:
    """The (scripted) module of a potential from :func:`prepare_potential`.

    ``subset_inside``: the module selects the ML atoms itself from all particles
    (TorchForce); False when the caller passes only the ML atoms (PythonForce).
    """
    device = prepared.reference_energies.device
    mode = choose_neighbour_mode(len(spec.ml_numbers), neighbour_list)
    cls = EnergyForcesModule if outputs_forces else EnergyModule
    indices = None
    if subset_inside and spec.ml_atoms is not None:
        indices = torch.tensor(spec.ml_atoms, dtype=torch.long)
    module = cls(prepared, torch.as_tensor(spec.ml_numbers), indices, spec.periodic, mode).to(device)
    module.eval()
    return torch.jit.script(module) if script else module


def build_module(potential, spec: SystemSpec, outputs_forces: bool = True, neighbour_list: str = "auto",
                 dtype=None, device: Union[str, torch.device] = "cpu", subset_inside: bool = True,
                 script: bool = True) -> GeoffOpenMMModule:
    """Check ``spec`` against the potential and build the (scripted) module
    (:func:`prepare_potential`, then :func:`make_module`)."""
    return make_module(prepare_potential(potential, spec, dtype, device), spec, outputs_forces, neighbour_list,
                       subset_inside, script)
