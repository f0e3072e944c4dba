"""geoff in LAMMPS: ``pair_style geoff`` as a plugin, exact on any number of MPI ranks.

    geoff.lammps.export("ethanol-egnn", "ethanol-lammps.pt")   # the model file pair_style geoff reads
    geoff.lammps.build_plugin()                                # compile geoffplugin.so (once)
    geoff.lammps.write_data(atoms, "water.data", ["H", "O"])  # an ASE structure as a LAMMPS data file

Units at this boundary are LAMMPS's ``metal`` units, which are geoff's own (Å, eV, eV/Å).
"""

from .build import LammpsSetupError, build_plugin
from .data import write_data
from .export import build_lammps_module, export, read_lammps_export_info
from .module import LAMMPS_INTERFACE_VERSION, GeoffLammpsModule

__all__ = ["LammpsSetupError", "build_plugin", "write_data", "build_lammps_module", "export",
           "read_lammps_export_info", "LAMMPS_INTERFACE_VERSION", "GeoffLammpsModule"]
