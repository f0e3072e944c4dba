"""Write the OpenMM module to a TorchScript file that openmm-torch loads without geoff.

    import geoff.openmm
    geoff.openmm.export("ethanol-egnn", "ethanol.pt", topology=pdb.topology)
    force = openmmtorch.TorchForce("ethanol.pt")

The system is checked and the module built by :mod:`geoff.openmm.system`; here
only the file: written atomically, with a ``geoff.json`` that says how to use it.
"""

import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from ..io.torchscript_file import read_torchscript_info, save_torchscript
from ..version import __version__
from .system import DEFAULT_OUTPUTS_FORCES, build_module, system_spec


def export(potential, path: Union[str, os.PathLike], topology=None, atomic_numbers=None, ml_atoms=None,
           periodic: Optional[bool] = None, box_vectors=None, outputs_forces: bool = DEFAULT_OUTPUTS_FORCES,
           neighbour_list: str = "auto", dtype=None, device: Union[str, torch.device] = "cpu",
           positions=None, min_distance: float = 0.5) -> Path:
    """Write a TorchScript file for ``openmmtorch.TorchForce`` and return its path.

    Args:
        potential: a geoff Potential, a potential file or a shipped name.
        path: output file (written atomically).
        topology: an ``openmm.app.Topology`` (gives atomic numbers, periodicity and box);
            or give ``atomic_numbers`` [P] of every particle (and ``periodic``/``box_vectors``).
        ml_atoms: indices of the particles geoff models (ML/MM); None = all.
        periodic: the force uses OpenMM's box vectors (default: the topology has a box).
        box_vectors: [3, 3] nm (or an OpenMM Quantity), used only to check the cutoff.
        outputs_forces: forward returns (energy, forces); then call ``setOutputsForces(True)`` on the
            TorchForce. Default False (energy only; openmm-torch differentiates), never the slower
            (see :data:`geoff.openmm.system.DEFAULT_OUTPUTS_FORCES`).
        neighbour_list: "auto", "dense", "pairs" or "cells".
        dtype: "float32"/"float64" (default: the potential's).
        positions: [P, 3] nm (or an OpenMM Quantity), optional: check the structure before exporting
            (NaN, a degenerate box, ML atoms closer than ``min_distance`` Å).

    The file's extra file ``geoff.json`` records how to use it (periodic, outputs_forces, units).
    """
    spec = system_spec(topology, atomic_numbers, ml_atoms, periodic, box_vectors, positions, min_distance)
    module = build_module(potential, spec, outputs_forces, neighbour_list, dtype, device, subset_inside=True)
    info = {
        "geoff_version": __version__, "periodic": spec.periodic, "outputs_forces": bool(outputs_forces),
        "num_particles": int(len(spec.atomic_numbers)), "ml_atoms": spec.ml_atoms,
        "neighbour_list": module.neighbour_mode, "cutoff_angstrom": module.cutoff, "dtype": module.dtype_name,
        "units": {"positions": "nm", "energy": "kJ/mol", "forces": "kJ/mol/nm"},
    }
    return save_torchscript(module, path, info)


def read_export_info(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """The ``geoff.json`` description stored in an exported file."""
    return read_torchscript_info(path)
