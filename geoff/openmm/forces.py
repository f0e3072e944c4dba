"""A geoff potential as an OpenMM Force: TorchForce or PythonForce, behind one option.

- ``backend="torchforce"``: openmm-torch's ``TorchForce`` runs the exported
  TorchScript module in C++ (no Python in the step; the file is self-contained).
  Needs an openmm-torch build that matches the installed torch.
- ``backend="pythonforce"``: ``openmm.PythonForce`` (OpenMM ≥ 8.5.2) calls a
  Python function each step that runs the same module in this process's torch —
  no openmm-torch ABI coupling, so it works with any torch.
- ``backend="auto"``: TorchForce where openmm-torch imports, else PythonForce.
  TorchForce wins clearly where the per-step overhead matters (small
  molecules, the launch-bound case on GPUs too), ties on larger systems and
  needs no Python at run time, so "auto" picks it (the timings:
  benchmarks/README.md, "Measurements behind the code's defaults").
"""

from typing import Optional, Union

import numpy as np
import torch

from ..errors import GeoffInputError
from ..units import EV_TO_KJ_PER_MOL, NM_TO_ANGSTROM
from .system import DEFAULT_OUTPUTS_FORCES, SystemSpec, build_module, make_module, prepare_potential, system_spec

BACKENDS = ("auto", "torchforce", "pythonforce")


_PLUGINS_RETRIED = False


def _retry_torch_plugins() -> None:
    """Load openmm-torch's platform plugins that failed when ``openmm`` was imported before ``torch``.

    The openmm-torch wheel's plugins link torch's CUDA libraries (libnvrtc ...), which are only
    on the library path once ``import torch`` has run; OpenMM loads its plugins at ``import openmm``.
    If that came first, TorchForce has no kernels ("does not support all required kernels"):
    retry those libraries now that torch is loaded (failures, e.g. no OpenCL, are left as they are).
    """
    global _PLUGINS_RETRIED
    if _PLUGINS_RETRIED:
        return
    _PLUGINS_RETRIED = True
    import re

    import openmm

    for failure in openmm.Platform.getPluginLoadFailures():
        match = re.search(r"Error loading library (\S+?libOpenMMTorch\w*\.(?:so|dylib|dll))", failure)
        if match:
            try:
                openmm.Platform.loadPluginLibrary(match.group(1))
            except Exception:  # a platform this machine lacks (CUDA, OpenCL)
                pass


def have_openmmtorch() -> bool:
    """True when ``openmmtorch`` imports (it links against the torch it was built for)."""
    try:
        import torch  # noqa: F401  (puts torch's CUDA runtime libraries on the path first)
        import openmmtorch  # noqa: F401
    except Exception:  # ImportError, or OSError from a missing CUDA runtime library
        return False
    _retry_torch_plugins()
    return True


def have_python_force() -> bool:
    import openmm

    return hasattr(openmm, "PythonForce")


def resolve_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise GeoffInputError(f"backend must be one of {BACKENDS}, got {backend!r}.")
    if backend == "auto":
        return "torchforce" if have_openmmtorch() else "pythonforce"
    if backend == "torchforce" and not have_openmmtorch():
        raise GeoffInputError("backend 'torchforce' needs openmm-torch, which does not import here (it must match "
                              "the installed torch: openmm-torch 1.5 needs torch 2.9.1); use backend='pythonforce'.")
    if backend == "pythonforce" and not have_python_force():
        raise GeoffInputError("backend 'pythonforce' needs openmm.PythonForce (OpenMM >= 8.5.2); upgrade OpenMM or "
                              "use backend='torchforce'.")
    return backend


class _PythonForceComputation:
    """The callable a PythonForce runs: State (nm) → (energy kJ/mol, forces [M, 3] kJ/mol/nm)."""

    def __init__(self, module, periodic: bool, device: Union[str, torch.device]):
        self.module = module
        self.periodic = periodic
        self.device = torch.device(device)

    def __call__(self, state):
        from openmm import unit

        pos = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        positions = torch.as_tensor(np.asarray(pos), device=self.device)
        box = None
        if self.periodic:
            b = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)
            box = torch.as_tensor(np.asarray(b), device=self.device)
        energy, forces = self.module.compute(positions, box, True)
        return float(energy), forces.detach().to(torch.float64).cpu().numpy()


class _CompiledPythonForceComputation:
    """The same callable through :class:`geoff.CompiledPotential` (torch.compile of energy + forces).

    The module's own neighbour search gives edges and shifts; the periodic image offsets
    shifts @ box are constant within a step, so energy and forces are those of the
    eager module (tested), from one compiled graph.
    """

    def __init__(self, module, potential, atomic_numbers, periodic: bool, device: Union[str, torch.device]):
        from ..models import CompiledPotential

        self.module = module
        self.compiled = CompiledPotential(potential)
        self.device = torch.device(device)
        self.numbers = torch.as_tensor(np.asarray(atomic_numbers), dtype=torch.long, device=self.device)
        self.periodic = periodic
        self.dtype = potential.reference_energies.dtype

    def __call__(self, state):
        from openmm import unit

        pos = np.asarray(state.getPositions(asNumpy=True).value_in_unit(unit.nanometer), dtype=np.float64)
        pos = pos - pos[0]  # translation invariant: float64 before the cast (see GeoffOpenMMModule.compute)
        pos = torch.as_tensor(pos, device=self.device).to(self.dtype) * NM_TO_ANGSTROM
        box = None
        if self.periodic:
            b = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)
            box = self.module.box_angstrom(torch.as_tensor(np.asarray(b), device=self.device).to(self.dtype))
        edge_index, shifts = self.module.neighbours(pos, box)
        offsets = shifts @ box if box is not None else torch.zeros_like(shifts)
        energy, _, forces = self.compiled.energy_forces(pos, self.numbers, edge_index, offsets)
        return (float(energy) * EV_TO_KJ_PER_MOL,
                (forces * (EV_TO_KJ_PER_MOL * NM_TO_ANGSTROM)).to(torch.float64).cpu().numpy())


def create_force(potential, spec: SystemSpec, backend: str = "auto",
                 outputs_forces: bool = DEFAULT_OUTPUTS_FORCES,
                 neighbour_list: str = "auto", dtype=None, device: Union[str, torch.device] = "cpu",
                 cuda_graphs: bool = False, force_group: int = 0, compile: bool = False):
    """An OpenMM Force for ``spec`` (see :func:`geoff.openmm.system.system_spec`); not yet added to a System.

    ``cuda_graphs`` sets TorchForce's ``useCUDAGraphs`` (CUDA platform only; needs the
    static-shape "dense" neighbour list). ``compile`` runs the PythonForce backend through
    :class:`geoff.CompiledPotential` (torch.compile: a compilation first, then faster per step
    than TorchForce on small molecules, but slower on boxes of a few hundred atoms, where the
    per-step pair search dominates: benchmarks/README.md, "OpenMM ns/day"); it implies
    backend "pythonforce" (openmm-torch runs TorchScript, not compiled graphs).
    """
    if compile:
        if backend == "torchforce":
            raise GeoffInputError("compile=True runs geoff through openmm.PythonForce (openmm-torch runs TorchScript "
                                  "only); use backend='pythonforce' or 'auto'.")
        backend = "pythonforce"
    backend = resolve_backend(backend)
    if backend == "torchforce":
        import openmmtorch

        module = build_module(potential, spec, outputs_forces, neighbour_list, dtype, device, subset_inside=True)
        if cuda_graphs and module.neighbour_mode != "dense":
            raise GeoffInputError("CUDA graphs need static shapes: use neighbour_list='dense' (small systems).")
        force = openmmtorch.TorchForce(module, {"useCUDAGraphs": "true" if cuda_graphs else "false"})
        force.setOutputsForces(bool(outputs_forces))
    else:
        import openmm

        prepared = prepare_potential(potential, spec, dtype, device)
        module = make_module(prepared, spec, True, neighbour_list, subset_inside=False, script=False)
        if compile:
            computation = _CompiledPythonForceComputation(module, prepared, spec.ml_numbers, spec.periodic, device)
        else:
            computation = _PythonForceComputation(module, spec.periodic, device)
        force = openmm.PythonForce(computation)
        if spec.ml_atoms is not None:
            force.setParticles(spec.ml_atoms)
    force.setUsesPeriodicBoundaryConditions(bool(spec.periodic))
    force.setForceGroup(int(force_group))
    force.setName(f"geoff ({backend})")
    return force


def add_geoff_force(system, potential, topology=None, atomic_numbers=None, ml_atoms=None,
                    backend: str = "auto", force_group: int = 0, periodic: Optional[bool] = None,
                    positions=None, min_distance: float = 0.5, **kwargs):
    """Add a geoff force to ``system`` and return it.

    ``positions`` [P, 3] nm (or an OpenMM Quantity), optional: the structure is checked first
    (:func:`geoff.graph.check_atoms` on the ML atoms: NaN, degenerate box, atoms closer than
    ``min_distance`` Å), before the force is built.

    ``periodic`` defaults to: the topology has a box, or a force already in the System uses
    periodic boundary conditions (give it explicitly when building from ``atomic_numbers`` for
    a periodic System that has no other force yet). The box is the System's default box.
    ``kwargs`` go to :func:`create_force` (outputs_forces, neighbour_list, dtype, device, cuda_graphs,
    compile).
    """
    if periodic is None:
        periodic = bool(system.usesPeriodicBoundaryConditions()) or (
            topology is not None and topology.getPeriodicBoxVectors() is not None)
    box = None
    if periodic:
        box = topology.getPeriodicBoxVectors() if topology is not None else None
        box = system.getDefaultPeriodicBoxVectors() if box is None else box
    spec = system_spec(topology, atomic_numbers, ml_atoms, periodic, box, positions, min_distance)
    # openmm-ml's interpolation builds the ML force in an empty System, then copies it over
    if system.getNumParticles() > 0 and len(spec.atomic_numbers) != system.getNumParticles():
        raise GeoffInputError(f"the topology has {len(spec.atomic_numbers)} atoms but the System has "
                              f"{system.getNumParticles()} particles; build both from the same structure.")
    force = create_force(potential, spec, backend=backend, force_group=force_group, **kwargs)
    system.addForce(force)
    return force


def default_backend() -> Optional[str]:
    """The backend "auto" picks here, or None when neither works."""
    try:
        return resolve_backend("auto")
    except GeoffInputError:
        return None
