"""geoff in OpenMM: TorchScript export for openmm-torch, PythonForce, and the openmm-ml plugin.

    import geoff.openmm
    geoff.openmm.export("ethanol-egnn", "ethanol.pt", topology=pdb.topology)   # TorchForce("ethanol.pt")
    geoff.openmm.add_geoff_force(system, "ethanol-egnn", topology=pdb.topology)
    MLPotential("geoff", model="ethanol-egnn").createSystem(topology)          # openmm-ml

Units at this boundary (and only here): OpenMM's nm and kJ/mol in, geoff's Å and
eV inside, with the factors from :mod:`geoff.units`.
"""

from .export import export, read_export_info
from .system import build_module, system_spec
from .forces import BACKENDS, add_geoff_force, create_force, default_backend
from .module import NEIGHBOUR_MODES, EnergyForcesModule, EnergyModule, GeoffOpenMMModule

__all__ = ["export", "read_export_info", "build_module", "system_spec", "create_force", "add_geoff_force",
           "default_backend", "BACKENDS", "NEIGHBOUR_MODES", "GeoffOpenMMModule", "EnergyModule",
           "EnergyForcesModule"]
