"""The openmm-ml plugin: ``MLPotential("geoff", model=...)``.

Registered through the ``openmmml.potentials`` entry point in geoff's
pyproject.toml (the way openmm-ml registers its own MACE and NequIP
backends), so after ``pip install geoff`` this works with no extra import::

    from openmmml import MLPotential
    potential = MLPotential("geoff", model="ethanol-egnn")      # shipped name, path, or a Potential
    system = potential.createSystem(topology)                   # all atoms by geoff
    mixed = potential.createMixedSystem(topology, mm_system, ml_atoms)   # ML/MM

``createMixedSystem`` is openmm-ml's own: its mechanical embedding removes the
MM bonds, angles, torsions and nonbonded pairs *inside* the ML region and
keeps the MM terms between ML and MM atoms; geoff supplies the ML force for
the subset (``addForces`` with ``atoms``). geoff potentials are local (finite
cutoff), so ``getMLLongRange()`` is False.

Options (``MLPotential(...)`` or ``createSystem(...)`` / ``createMixedSystem(...)`` keywords):
    model: potential file, shipped name or ``geoff.Potential`` (required).
    backend: "auto" (default: TorchForce where openmm-torch imports, else PythonForce),
        "torchforce" or "pythonforce".
    precision: "single" or "double" (default: the potential's dtype).
    device: torch device for the PythonForce backend, and where the module is built.
    neighbour_list: "auto", "dense", "pairs", "cells".
    outputs_forces: the TorchForce returns forces itself (default False: energy only, measured faster).
    cuda_graphs: TorchForce ``useCUDAGraphs`` (CUDA platform, dense neighbour list).
    positions: the starting positions (e.g. ``pdb.positions``, nm): the structure is checked before
        the System is built (NaN, a degenerate box, ML atoms closer than ``min_distance`` Å, default 0.5).
"""

from typing import Iterable, List, Optional

from openmmml.mlpotential import MLPotentialImpl, MLPotentialImplFactory

_CREATE_OPTIONS = ("backend", "precision", "device", "neighbour_list", "outputs_forces", "cuda_graphs", "compile",
                   "positions", "min_distance")


class GeoffPotentialImplFactory(MLPotentialImplFactory):
    """Creates :class:`GeoffPotentialImpl` objects for openmm-ml."""

    def createImpl(self, name: str, model=None, **args) -> MLPotentialImpl:
        return GeoffPotentialImpl(name, model, **args)


class GeoffPotentialImpl(MLPotentialImpl):
    """openmm-ml implementation of a geoff potential (loaded, and checked, when created)."""

    def __init__(self, name: str, model=None, **defaults):
        from ..errors import GeoffInputError
        from .system import resolve_potential

        if model is None:
            raise GeoffInputError('MLPotential("geoff") needs model=: a geoff potential file, a shipped potential '
                                  'name (e.g. "ethanol-egnn") or a geoff.Potential object.')
        unknown = sorted(set(defaults) - set(_CREATE_OPTIONS))
        if unknown:
            raise GeoffInputError(f"unknown option(s) {unknown} for MLPotential('geoff'); known: {list(_CREATE_OPTIONS)}.")
        self.name = name
        self.potential = resolve_potential(model)  # raises GeoffFileError for a bad or foreign-version file
        self.defaults = dict(defaults)

    def addForces(self, topology, system, atoms: Optional[Iterable[int]], forceGroup: int, **args) -> None:
        """Add the geoff force for ``atoms`` (None = all) to ``system``; unknown keywords are
        openmm-ml's own (embedding options) and are ignored here."""
        from .forces import add_geoff_force

        options = dict(self.defaults)
        options.update({k: v for k, v in args.items() if k in _CREATE_OPTIONS})
        backend = options.pop("backend", "auto")
        precision = options.pop("precision", None)
        add_geoff_force(system, self.potential, topology=topology,
                        ml_atoms=None if atoms is None else list(atoms), backend=backend,
                        force_group=forceGroup, dtype=precision, **options)

    def getSupportedEmbeddings(self) -> List[str]:
        """Every generic embedding openmm-ml has: geoff checks the ML subset first (createMixedSystem),
        then hands over to openmm-ml's own embedding of that name."""
        from openmmml.mlpotential import MLPotential

        return sorted(MLPotential._embeddingFactories)

    def createMixedSystem(self, topology, system, atoms: List[int], forceGroup: int, interpolate: bool,
                          embedding: str, returnInfo: bool = False, **args):
        """Check the ML subset (empty, out of range, repeated, unknown element, no element) before
        openmm-ml touches the System, then run openmm-ml's embedding ``embedding``."""
        from openmmml.mlpotential import MLPotential

        from .system import check_system, system_spec

        options = dict(self.defaults)
        options.update(args)
        periodic = topology.getPeriodicBoxVectors() is not None
        spec = system_spec(topology, ml_atoms=atoms, periodic=periodic, positions=options.get("positions"),
                           min_distance=options.get("min_distance", 0.5))
        if topology.getNumAtoms() != system.getNumParticles():
            from ..errors import GeoffInputError

            raise GeoffInputError(f"the topology has {topology.getNumAtoms()} atoms but the System has "
                                  f"{system.getNumParticles()} particles; build both from the same structure.")
        check_system(self.potential, spec)
        if interpolate:
            # openmm-ml builds interpolated systems by deep-copying the ML force, i.e. an XML
            # round trip; deserialising a TorchForce crashes the process (segfault) with
            # openmm 8.6.1 + openmm-torch 1.5 + torch 2.9.1, so use the PythonForce there.
            from ..errors import GeoffInputError
            from .forces import resolve_backend

            backend = args.get("backend", self.defaults.get("backend", "auto"))
            if resolve_backend(backend) == "torchforce":
                if backend != "auto":
                    raise GeoffInputError("interpolate=True copies the ML force through OpenMM's XML serialiser, which "
                                          "crashes on a TorchForce with this openmm-torch; use backend='pythonforce' "
                                          "(or backend='auto', which picks it).")
                args = dict(args, backend="pythonforce")
        method = MLPotential._embeddingFactories[embedding].createEmbedding(embedding)
        return method.createMixedSystem(self, topology, system, atoms, forceGroup, interpolate,
                                        returnInfo=returnInfo, **args)

    def getMLLongRange(self) -> bool:
        return False
