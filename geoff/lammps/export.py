"""Write the LAMMPS module to a TorchScript file that ``pair_style geoff`` loads without Python.

    geoff.lammps.export("ethanol-egnn", "ethanol-lammps.pt")       # or: geoff export --format lammps

The file is written atomically, with a ``geoff.json`` that says what it is.
"""

import copy
import os
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from ..errors import GeoffInputError
from ..io import load_potential
from ..io.torchscript_file import read_torchscript_info, save_torchscript
from ..version import __version__
from .module import LAMMPS_INTERFACE_VERSION, GeoffLammpsModule

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def build_lammps_module(potential, dtype: Optional[Union[str, torch.dtype]] = None, script: bool = True,
                        prune: bool = True):
    """The (scripted) :class:`GeoffLammpsModule` of a potential object, file or shipped name,
    copied in ``dtype`` (default: the potential's), in eval mode with frozen weights
    (``prune``: see :class:`GeoffLammpsModule`)."""
    if isinstance(potential, (str, os.PathLike)):
        potential = load_potential(potential)
    else:
        potential = copy.deepcopy(potential)  # never change the caller's model
    if isinstance(dtype, str):
        if dtype not in _DTYPES:
            raise GeoffInputError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}.")
        dtype = _DTYPES[dtype]
    if dtype is not None:
        potential = potential.to(dtype)
    potential = potential.cpu().eval()
    for p in potential.parameters():
        p.requires_grad_(False)
    module = GeoffLammpsModule(potential, potential.message_passing_layers(), prune).eval()
    return torch.jit.script(module) if script else module


def export(potential, path: Union[str, os.PathLike], dtype: Optional[Union[str, torch.dtype]] = None,
           prune: bool = True) -> Path:
    """Write a TorchScript file for ``pair_style geoff`` and return its path.

    Args:
        potential: a geoff Potential, a potential file or a shipped name.
        path: output file (written atomically).
        dtype: "float32"/"float64" (default: the potential's).
        prune: drop each edge from the layers whose output cannot reach a local atom (exact;
            False only to measure what it saves).

    The file's extra file ``geoff.json`` records the elements, cutoff, message-passing layers and
    the ghost cutoff the pair style sets (layers × cutoff + neighbour skin).
    """
    module = build_lammps_module(potential, dtype, prune=prune)
    info = {
        "geoff_version": __version__, "engine": "lammps", "interface_version": LAMMPS_INTERFACE_VERSION,
        "elements": list(module.elements), "cutoff_angstrom": module.cutoff, "layers": module.layers,
        "receptive_field_angstrom": module.layers * module.cutoff, "dtype": module.dtype_name,
        "prune": module.prune, "units": "metal (Å, eV, eV/Å)",
    }
    return save_torchscript(module, path, info)


def read_lammps_export_info(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """The ``geoff.json`` description stored in an exported file."""
    return read_torchscript_info(path)
