"""One file per potential: config + state dict + versions, never a pickled module.

The file is a ``torch.save`` of plain data (dicts, lists, strings, numbers and
tensors) and is read with ``torch.load(weights_only=True)``, which refuses any
pickled object that could run code. The model is rebuilt from its config.

Layout (format version 1)::

    {"format": "geoff-potential", "format_version": 1,
     "model_type": "egnn", "config": {...constructor arguments...},
     "state_dict": {...tensors...}, "dtype": "float32",
     "units": {"length": "Å", "energy": "eV"},
     "versions": {"geoff": ..., "torch": ...}, "metadata": {...}}
"""

import os
import pickle
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from ..errors import GeoffFileError
from .atomic import atomic_path

FORMAT = "geoff-potential"
FORMAT_VERSION = 1
UNITS = {"length": "Å", "energy": "eV", "forces": "eV/Å", "stress": "eV/Å³"}


def _version() -> str:
    from .. import __version__

    return __version__


def save_potential(potential, path: Union[str, os.PathLike], metadata: Optional[Dict[str, Any]] = None) -> Path:
    """Write ``potential`` to ``path`` atomically and return the path."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_type": potential.model_type,
        "config": potential.config(),
        "state_dict": {k: v.detach().cpu() for k, v in potential.state_dict().items()},
        "dtype": str(potential.reference_energies.dtype).replace("torch.", ""),
        "units": dict(UNITS),
        "versions": {"geoff": _version(), "torch": torch.__version__.split("+")[0]},
        "metadata": dict(metadata or {}),
    }
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def shipped_potentials() -> Dict[str, Path]:
    """Names of the potentials shipped with geoff → their files."""
    try:
        root = resources.files("geoff.potentials")
    except ModuleNotFoundError:
        return {}
    found = {}
    for entry in root.iterdir():
        if entry.is_dir():
            for f in entry.iterdir():
                if f.name.endswith(".pt"):
                    found[entry.name] = Path(str(f))
    return found


def resolve_potential_path(name_or_path: Union[str, os.PathLike]) -> Path:
    """A file path as given, or the file of a shipped potential by name (e.g. "ethanol-egnn")."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = shipped_potentials()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    raise GeoffFileError(
        f"no potential file {str(name_or_path)!r}, and it is not a shipped potential "
        f"(shipped: {sorted(shipped) or 'none'}). Give a path to a .pt file written by geoff."
    )


def read_payload(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """Read and check a potential file without building the model."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise GeoffFileError(
            f"{path}: refused to load: the file contains pickled Python objects beyond plain data and tensors, "
            "which could run code. geoff potential files never do; only load files from a source you trust, "
            f"re-saved with geoff.save. ({str(exc).splitlines()[0]})"
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise GeoffFileError(
            f"{path}: not a readable geoff potential file (corrupt or truncated?): {str(exc).splitlines()[0]}"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise GeoffFileError(f"{path}: not a geoff potential file (no '{FORMAT}' header).")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise GeoffFileError(
            f"{path}: geoff potential format version {version}, but this geoff reads version {FORMAT_VERSION}. "
            "Use the geoff version that wrote it (see the file's 'versions') or upgrade geoff."
        )
    for key in ("model_type", "config", "state_dict"):
        if key not in payload:
            raise GeoffFileError(f"{path}: potential file lacks '{key}' (corrupt?).")
    return payload


def load_potential(name_or_path: Union[str, os.PathLike], device: Union[str, torch.device] = "cpu",
                   dtype: Optional[torch.dtype] = None):
    """Load a potential by path or shipped name; returns the model in eval mode."""
    from ..models import build_model

    path = resolve_potential_path(name_or_path)
    payload = read_payload(path)
    model = build_model(payload["model_type"], dict(payload["config"]))
    file_dtype = getattr(torch, str(payload.get("dtype", "float32")))
    model = model.to(file_dtype)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise GeoffFileError(
            f"{path}: weights do not fit the model described by its config (corrupt or edited file?): "
            f"{str(exc).splitlines()[0]}"
        ) from exc
    model.metadata = dict(payload.get("metadata", {}))
    model.source_path = str(path)
    if dtype is not None:
        model = model.to(dtype)
    return model.to(device).eval()
