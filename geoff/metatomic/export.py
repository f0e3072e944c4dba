"""Write a geoff potential as a metatomic ``AtomisticModel`` file.

    import geoff.metatomic
    geoff.metatomic.export("ethanol-egnn", "ethanol-metatomic.pt")

The file is TorchScript plus metatomic's metadata; engines load it with
``metatomic.torch.load_atomistic_model`` (metatomic-ase, OpenMM-ML's "metatomic" potential,
metatomic-torchsim, LAMMPS and i-PI builds with metatomic) without geoff installed.
"""

import copy
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Union

import torch
from ase.data import atomic_numbers as _ase_numbers

from ..errors import GeoffInputError
from ..io import atomic_path, load_potential
from ..version import __version__
from .module import GeoffMetatomicModule

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def message_passing_layers(potential) -> int:
    """Message-passing steps L of a geoff potential (the largest among a committee's members)."""
    members = getattr(potential, "members", None)
    if members is not None:
        return max(message_passing_layers(m) for m in members)
    return int(potential.hyperparameters()["num_layers"])


def interaction_range(potential) -> float:
    """How far (Å) an atom's energy reaches: cutoff × message-passing steps (each step passes
    information one cutoff further). Engines that split space into domains (LAMMPS) must give
    ghost atoms out to this range; the neighbour list itself stays at the cutoff."""
    return float(potential.cutoff) * message_passing_layers(potential)


@contextmanager
def _no_recorded_extensions() -> Iterator[None]:
    """metatomic records every TorchScript extension loaded in the exporting process as one the
    model needs (``torch.ops.loaded_libraries``), e.g. torch-cluster, which geoff's graph
    builder loads. The exported module calls only torch and metatensor/metatomic operators, so
    the file is written with an empty list; engines then need no extension to load it."""
    saved = set(torch.ops.loaded_libraries)
    torch.ops.loaded_libraries.clear()
    try:
        yield
    finally:
        torch.ops.loaded_libraries.update(saved)


def build_atomistic_model(potential, dtype: Optional[str] = None, name: str = "",
                          description: str = ""):
    """The ``metatomic.torch.AtomisticModel`` of a geoff potential (object, file or shipped name).

    Capabilities: output ``energy`` in eV (per system, or per atom on request), lengths in Å,
    ``atomic_types`` the potential's elements (atomic numbers), ``interaction_range`` =
    cutoff × message-passing layers, ``dtype`` the potential's (or ``dtype``), devices cpu and cuda.
    The model requests one full, strict neighbour list at the potential's cutoff.
    """
    from metatomic.torch import AtomisticModel, ModelCapabilities, ModelMetadata, ModelOutput

    label = str(potential) if isinstance(potential, (str, os.PathLike)) else ""
    if isinstance(potential, (str, os.PathLike)):
        potential = load_potential(potential)
    potential = copy.deepcopy(potential)
    if dtype is not None:
        if dtype not in _DTYPES:
            raise GeoffInputError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}.")
        potential = potential.to(_DTYPES[dtype])
    potential = potential.to("cpu").eval()
    for p in potential.parameters():
        p.requires_grad_(False)
    dtype_name = str(potential.reference_energies.dtype).replace("torch.", "")
    if dtype_name not in _DTYPES:
        raise GeoffInputError(f"a metatomic model is float32 or float64; this potential is {dtype_name}.")

    capabilities = ModelCapabilities(
        outputs={"energy": ModelOutput(unit="eV", sample_kind="atom")},
        atomic_types=sorted(_ase_numbers[s] for s in potential.species),
        interaction_range=interaction_range(potential),
        length_unit="angstrom",
        supported_devices=["cpu", "cuda"],
        dtype=dtype_name,
    )
    species = ", ".join(potential.species)
    metadata = ModelMetadata(
        name=name or (Path(label).stem if label else f"geoff-{potential.model_type}"),
        description=description or (f"geoff {potential.model_type} potential for {species}, cutoff "
                                    f"{potential.cutoff} Å, {message_passing_layers(potential)} message-passing "
                                    f"layers (geoff {__version__})"),
    )
    module = GeoffMetatomicModule(potential).eval()
    return AtomisticModel(module, metadata, capabilities)


def export(potential, path: Union[str, os.PathLike], dtype: Optional[str] = None, name: str = "",
           description: str = "") -> Path:
    """Write the metatomic file of ``potential`` (object, file or shipped name) to ``path``
    (atomically) and return the path. See :func:`build_atomistic_model` for what it declares."""
    model = build_atomistic_model(potential, dtype=dtype, name=name, description=description)
    path = Path(path)
    with atomic_path(path) as tmp, _no_recorded_extensions():
        model.save(str(tmp))
    return path


def read_export_info(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """What a metatomic file declares: atomic types, interaction range, cutoff of the requested
    neighbour list, dtype, length and energy units, the extensions it needs, name."""
    from metatomic.torch import load_atomistic_model

    model = load_atomistic_model(str(path))
    caps = model.capabilities()
    extra = {"extensions": "", "metatomic-version": "", "torch-version": ""}
    torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    extra["extensions"] = _text(extra["extensions"])
    lists = model.requested_neighbor_lists()
    return {
        "name": model.metadata().name,
        "atomic_types": list(caps.atomic_types),
        "interaction_range": float(caps.interaction_range),
        "neighbor_lists": [{"cutoff": float(o.cutoff), "full_list": bool(o.full_list), "strict": bool(o.strict)}
                           for o in lists],
        "dtype": caps.dtype,
        "length_unit": caps.length_unit,
        "energy_unit": caps.outputs["energy"].unit,
        "extensions": json.loads(extra["extensions"] or "[]"),
        "metatomic_version": _text(extra["metatomic-version"]),
        "torch_version": _text(extra["torch-version"]),
    }


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
