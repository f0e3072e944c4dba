"""One file per potential: config + state dict + versions, never a pickled module.

The file is a ``torch.save`` of plain data (dicts, lists, strings, numbers and
tensors) and is read with ``torch.load(weights_only=True)``, which refuses any
pickled object that could run code. The model is rebuilt from its config, after
every field has been checked (types, ranges, the weights' shapes against the
config on the meta device, float32/float64 only, finite values).

Layout (format version 1)::

    {"format": "geoff-potential", "format_version": 1,
     "model_type": "egnn", "config": {...constructor arguments...},
     "state_dict": {...tensors...}, "dtype": "float32",
     "units": {"length": "Å", "energy": "eV"},
     "versions": {"geoff": ..., "torch": ...}, "metadata": {...}}
"""

import inspect
import math
import os
import pickle
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from ..errors import GeoffFileError
from ..version import __version__
from .atomic import atomic_path

FORMAT = "geoff-potential"
FORMAT_VERSION = 1
UNITS = {"length": "Å", "energy": "eV", "forces": "eV/Å", "stress": "eV/Å³"}


def _version() -> str:
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


#: Top-level keys of a format-1 file (geoff writes all of them; dtype, units, versions and metadata
#: may be absent in files written by hand).
HEADER_KEYS = ("format", "format_version", "model_type", "config", "state_dict", "dtype", "units", "versions",
               "metadata")
#: Weight dtypes geoff writes.
FILE_DTYPES = ("float32", "float64")
#: Hyperparameters with a hard upper bound besides "no larger than the stored weights" (the
#: SE(3)-Transformer's kernel bases grow as lmax⁶ and are computed, not stored).
MAX_HYPERPARAMETERS = {"lmax": 4}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _not_a_potential(path: Path, why: str) -> GeoffFileError:
    return GeoffFileError(f"not a geoff potential file: {path}: {why}. Give a .pt file written by geoff.save "
                          "(or `geoff train`), or a shipped potential name such as 'ethanol-egnn'.")


def _torch_load(path: Path) -> Any:
    """torch.load(weights_only=True) with every failure turned into a GeoffFileError that says what is wrong."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise GeoffFileError(f"{path}: cannot read the file: {_first_line(exc)}") from exc
    if size == 0:
        raise _not_a_potential(path, "the file is empty (0 bytes; an interrupted copy or download?)")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as fh:
            head = fh.read(512)
        kind = "a text file" if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head) else "unreadable bytes"
        raise _not_a_potential(path, f"it holds {kind}, not the zip archive torch.save writes (corrupt or truncated, "
                                     "or another kind of file)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" in str(exc):
            raise GeoffFileError(
                f"{path}: refused to load: the file contains pickled Python objects beyond plain data and tensors, "
                "which could run code. geoff potential files never do; only load files from a source you trust, "
                f"re-saved with geoff.save. ({_first_line(exc)})"
            ) from exc
        raise GeoffFileError(f"{path}: not a readable geoff potential file (corrupt or truncated?): "
                             f"{_first_line(exc)}") from exc
    except Exception as exc:  # RuntimeError, EOFError, zipfile.BadZipFile, KeyError, ... from a damaged archive
        raise GeoffFileError(f"{path}: not a readable geoff potential file (corrupt or truncated?): "
                             f"{_first_line(exc)}") from exc


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_header(path: Path, payload: Dict[str, Any]) -> None:
    """Types and values of every top-level field (not the config or the weights)."""
    def bad(what: str) -> GeoffFileError:
        return GeoffFileError(f"{path}: {what} (an edited or damaged potential file?). Re-save the potential with "
                              "geoff.save, or use the file geoff wrote.")

    unknown = sorted(str(k) for k in payload if k not in HEADER_KEYS)
    if unknown:
        raise bad(f"unknown top-level key(s) {unknown}; a format-{FORMAT_VERSION} file has only {list(HEADER_KEYS)}")
    if not isinstance(payload["model_type"], str):
        raise bad(f"'model_type' must be a string, got {type(payload['model_type']).__name__}")
    if not isinstance(payload["config"], dict) or not all(isinstance(k, str) for k in payload["config"]):
        raise bad(f"'config' must be a dict of constructor arguments, got {type(payload['config']).__name__}")
    sd = payload["state_dict"]
    if not isinstance(sd, dict) or not sd or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                     for k, v in sd.items()):
        raise bad("'state_dict' must be a non-empty dict of name → tensor")
    dtype = payload.get("dtype", "float32")
    if dtype not in FILE_DTYPES:
        raise GeoffFileError(
            f"{path}: the file says its weights are {dtype!r}; geoff writes potential files in {list(FILE_DTYPES)} "
            "only (float16/bfloat16 weights lose the precision forces need). Re-save the potential from float32 or "
            "float64 weights with geoff.save."
        )
    units = payload.get("units", UNITS)
    if not isinstance(units, dict) or units.get("length") != UNITS["length"] or units.get("energy") != UNITS["energy"]:
        raise bad(f"'units' must be geoff's {UNITS}, got {units!r}")
    for key in ("versions", "metadata"):
        if not isinstance(payload.get(key, {}), dict):
            raise bad(f"'{key}' must be a dict, got {type(payload[key]).__name__}")


def read_payload(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """Read and check a potential file's header without building the model (GeoffFileError if bad)."""
    path = Path(path)
    payload = _torch_load(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise _not_a_potential(path, f"no '{FORMAT}' header")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise GeoffFileError(
            f"{path}: geoff potential format version {version}, but this geoff reads version {FORMAT_VERSION}. "
            "Use the geoff version that wrote it (see the file's 'versions') or upgrade geoff."
        )
    for key in ("model_type", "config", "state_dict"):
        if key not in payload:
            raise GeoffFileError(f"{path}: potential file lacks '{key}' (corrupt?).")
    _check_header(path, payload)
    return payload


def _check_config(path: Path, cls, config: Dict[str, Any], stored_numbers: int) -> None:
    """Every config value against the constructor's parameters: known name, type, range, and no size
    larger than the weights stored in the file (checked before anything is allocated)."""
    def bad(what: str) -> GeoffFileError:
        return GeoffFileError(f"{path}: config {what} (an edited or damaged potential file?). Re-save the potential "
                              "with geoff.save, or use the file geoff wrote.")

    params = {name: p for name, p in inspect.signature(cls.__init__).parameters.items()
              if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(set(config) - set(params))
    if unknown:
        raise bad(f"has key(s) {unknown} that a {cls.model_type!r} model does not take (it takes {sorted(params)})")
    missing = sorted(n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in config)
    if missing:
        raise bad(f"lacks {missing}")
    for name, value in config.items():
        default = params[name].default
        if name == "species":
            if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
                raise bad(f"'species' must be a non-empty list of element symbols, got {value!r}")
        elif name == "reference_energies":
            if value is not None and not (isinstance(value, dict) and all(
                    isinstance(k, str) and _is_real(v) and math.isfinite(v) for k, v in value.items())):
                raise bad(f"'reference_energies' must map element symbols to finite energies (eV), got {value!r}")
        elif name == "cutoff" or isinstance(default, float):
            if not _is_real(value) or not math.isfinite(value):
                raise bad(f"{name!r} must be a finite number, got {value!r}")
            if name != "energy_scale" and value <= 0:
                raise bad(f"{name!r} must be positive, got {value!r}")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise bad(f"{name!r} must be true or false, got {value!r}")
        elif isinstance(default, int):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(f"{name!r} must be a positive integer, got {value!r}")
            limit = min(MAX_HYPERPARAMETERS.get(name, stored_numbers), stored_numbers)
            if value > limit:
                raise bad(f"{name!r} = {value} is larger than "
                          + (f"{limit}, the largest geoff supports" if limit < stored_numbers else
                             f"the {stored_numbers} numbers stored in the whole file: the weights cannot be for it"))


def _check_weights(path: Path, model_type: str, config: Dict[str, Any], state_dict: Dict[str, torch.Tensor],
                   dtype: torch.dtype) -> None:
    """The stored tensors against a model built on the meta device (no memory): names, shapes, dtypes;
    then every floating tensor is finite."""
    from ..errors import GeoffError
    from ..models import build_model

    try:
        with torch.device("meta"):
            expected = build_model(model_type, dict(config)).to(dtype).state_dict()
    except GeoffFileError:
        raise
    except (GeoffError, ValueError, TypeError, KeyError, IndexError, RuntimeError) as exc:
        raise GeoffFileError(f"{path}: config does not describe a valid {model_type!r} model (an edited or damaged "
                             f"potential file?): {_first_line(exc)}") from exc

    def misfit(what: str) -> GeoffFileError:
        return GeoffFileError(f"{path}: weights do not fit the model described by its config (corrupt or edited "
                              f"file?): {what}")

    missing = [k for k in expected if k not in state_dict]
    extra = [k for k in state_dict if k not in expected]
    if missing or extra:
        raise misfit(f"missing tensors {missing[:5]}, unexpected tensors {extra[:5]}")
    for name, want in expected.items():
        got = state_dict[name]
        if tuple(got.shape) != tuple(want.shape):
            raise misfit(f"{name} has shape {list(got.shape)}, the config implies {list(want.shape)}")
        if got.dtype != want.dtype:
            if got.is_floating_point() and want.is_floating_point():
                raise GeoffFileError(
                    f"{path}: tensor {name} is stored as {str(got.dtype).replace('torch.', '')}, but the file says "
                    f"{str(dtype).replace('torch.', '')}; geoff writes potential files with all weights in float32 "
                    "or all in float64 (float16/bfloat16 lose the precision forces need). Re-save the potential "
                    "from float32 or float64 weights with geoff.save."
                )
            raise misfit(f"{name} is {got.dtype}, expected {want.dtype}")
    for name, tensor in state_dict.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise GeoffFileError(
                f"{path}: weight tensor {name} contains {bad} NaN or infinite value(s) of {tensor.numel()}: the "
                "potential would give NaN energies and forces. The training diverged or the file is damaged: use an "
                "earlier checkpoint, or retrain (lower learning rate)."
            )


def load_potential(name_or_path: Union[str, os.PathLike], device: Union[str, torch.device] = "cpu",
                   dtype: Optional[torch.dtype] = None):
    """Load a potential by path or shipped name; returns the model in eval mode.

    Everything in the file is checked before the model is built (GeoffFileError naming the problem):
    the header fields, every config value (type, range, no size beyond the stored weights), the
    weights' names, shapes and dtypes (float32 or float64) against the config, finite values.
    """
    from ..errors import GeoffError
    from ..models import MODEL_TYPES, build_model

    path = resolve_potential_path(name_or_path)
    payload = read_payload(path)
    model_type, config, state_dict = payload["model_type"], payload["config"], payload["state_dict"]
    if model_type not in MODEL_TYPES:
        build_model(model_type, {})  # raises the GeoffFileError naming the known types
    stored = sum(int(t.numel()) for t in state_dict.values())
    _check_config(path, MODEL_TYPES[model_type], config, stored)
    if hasattr(MODEL_TYPES[model_type], "member_specs"):  # a committee: each member's config is checked alike
        try:
            specs = MODEL_TYPES[model_type].member_specs(config)
        except GeoffError as exc:
            raise GeoffFileError(f"{path}: {exc} (an edited or damaged potential file?)") from exc
        if len(specs) > len(state_dict):
            raise GeoffFileError(f"{path}: config lists {len(specs)} committee members but the file stores only "
                                 f"{len(state_dict)} tensors (an edited or damaged potential file?).")
        for member_type, member_config in specs:
            if member_type not in MODEL_TYPES:
                build_model(member_type, {})  # raises the GeoffFileError naming the known types
            _check_config(path, MODEL_TYPES[member_type], member_config, stored)
    file_dtype = getattr(torch, payload.get("dtype", "float32"))
    _check_weights(path, model_type, config, state_dict, file_dtype)
    try:
        model = build_model(model_type, dict(config)).to(file_dtype)
    except GeoffError as exc:
        raise GeoffFileError(f"{path}: config does not describe a valid {model_type!r} model (an edited or damaged "
                             f"potential file?): {_first_line(exc)}") from exc
    built = model.state_dict()
    for name, tensor in state_dict.items():  # integer tables (element → species) follow from the config
        if not tensor.is_floating_point() and not torch.equal(tensor, built[name]):
            raise GeoffFileError(f"{path}: {name} does not match the config's species {config['species']} "
                                 "(an edited or damaged potential file?). Re-save the potential with geoff.save.")
    model.load_state_dict(state_dict)
    model.metadata = dict(payload.get("metadata", {}))
    model.source_path = str(path)
    if dtype is not None:
        model = model.to(dtype)
    return model.to(device).eval()
