"""Training configuration: YAML file → nested dict merged over ``DEFAULTS``.

Every key a user may set is in ``DEFAULTS`` (with its unit); an unknown key is
an error, so a typo never silently falls back to a default. ``TYPES`` gives
each key's type and range, checked before anything runs (the message names the
key, the value and the expected form). ``"auto"`` values are filled from the
data (species, reference energies, average number of neighbours, energy scale).

Relative data paths are relative to the working directory when the config is
read; the resolved config (the one a run folder's config.yaml and checkpoint
store) holds absolute paths, so ``geoff train --resume`` works from anywhere.
"""

import copy
import math
import os
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import yaml

from ..errors import GeoffInputError
from .data import ENERGY_UNITS, LENGTH_UNITS

DEFAULTS: Dict[str, Any] = {
    "run_dir": "runs/geoff-run",      # output folder (checkpoints, metrics.csv, plots, best.pt, last.pt)
    "overwrite": False,               # True: replace the results of an earlier run in run_dir (else an error)
    "seed": 0,                        # weights init, split and data order
    "dtype": "float32",               # float32 | float64
    "device": "cpu",
    "threads": None,                  # torch intra-op threads per process (None: geoff.threads' policy for a batch)
    "progress": True,                 # tqdm bar per epoch
    "plots": True,                    # learning curve and parity plots (PNG) at the end
    "data": {
        "train": None,                # file(s): a path or a list of paths
        "valid": None,                # validation file(s); None: split the training data by seed
        "test": None,                 # optional test file(s), evaluated at the end with the best EMA weights
        "n_train": None,              # structures to train on (None: all that remain)
        "n_valid": None,              # structures to validate on when splitting (None: valid_fraction)
        "valid_fraction": 0.05,
        "split_seed": None,           # None: use seed
        "isolated_atoms": None,       # file with config_type=isolated_atom frames (reference energies)
        "reference_energies": "auto",  # "auto" | "isolated_atoms" | "least_squares" | {symbol: eV}
        "energy_key": "energy",
        "forces_key": "forces",
        "stress_key": "stress",
        "energy_unit": None,          # unit of the file's energies (None: eV; required for .npz)
        "length_unit": "Å",
        "format": None,               # ase.io format (None: from the extension)
        "index": ":",
        "config_types": None,         # keep only these config_type values
    },
    "model": {
        "type": "egnn",
        "species": "auto",            # element symbols, "auto": those in the data
        "cutoff": 5.0,                # Å
        "avg_num_neighbors": "auto",
        "energy_scale": "auto",       # eV; "auto": force RMS of the training data
        # other keys are passed to the model constructor (e.g. hidden, num_layers)
    },
    "loss": {"energy_weight": 1.0, "forces_weight": 1.0, "stress_weight": 0.0},
    "optim": {
        "batch_size": 8,
        "valid_batch_size": 32,
        "lr": 2e-3,
        "weight_decay": 0.0,
        "warmup_steps": 100,
        "plateau_factor": 0.5,
        "plateau_patience": 20,       # validations without improvement before the LR is halved
        "min_lr": 1e-5,
        "grad_clip": 10.0,            # max gradient norm (None: off)
        "ema_decay": 0.99,
        "max_epochs": 100,
        "max_time_minutes": None,     # wall-clock budget, minutes (training time, summed over resumes)
        "anneal_fraction": None,      # e.g. 0.3: anneal the LR linearly to min_lr over the budget's last 30%
        "early_stopping_patience": 100,  # validations without improvement before stopping (None: off)
        "valid_every_epochs": 1,
    },
    "checkpoint": {"every_steps": 200},
    "finetune": {
        "from": None,                 # potential to start from (path or shipped name)
        "freeze": [],                 # parameter-name prefixes to freeze, e.g. ["embedding", "layers.0"]
        "refit_reference_energies": True,
    },
}


# ----------------------------------------------------------------------------- types and ranges


class _Spec:
    """A key's expected form: ``check(value)`` returns the value in its canonical type or raises ValueError."""

    def __init__(self, form: str, check: Callable[[Any], Any], none: bool = False, auto: bool = False):
        extra = [x for x, ok in (("null", none), ('"auto"', auto)) if ok]
        self.form = form + "".join(f" or {x}" for x in extra)
        self._check, self.none, self.auto = check, none, auto

    def __call__(self, value):
        if value is None and self.none:
            return None
        if isinstance(value, str) and value == "auto" and self.auto:
            return value
        return self._check(value)


def _number(value) -> float:
    """int/float, or a string that reads as one (YAML reads ``1e-3`` as a string); never a bool."""
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, str):
        value = float(value.strip())
    if not isinstance(value, (int, float)):
        raise ValueError
    value = float(value)
    if not math.isfinite(value):
        raise ValueError
    return value


def _range_text(lo, hi, lo_open, hi_open) -> str:
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '≥'} {lo}"
    if hi is not None:
        return f" {'<' if hi_open else '≤'} {hi}"
    return ""


def _in_range(v, lo, hi, lo_open, hi_open) -> bool:
    return not ((lo is not None and (v < lo or (lo_open and v == lo)))
                or (hi is not None and (v > hi or (hi_open and v == hi))))


def Float(lo=None, hi=None, lo_open=False, hi_open=False, **kw) -> _Spec:
    def check(value):
        v = _number(value)
        if not _in_range(v, lo, hi, lo_open, hi_open):
            raise ValueError
        return v

    return _Spec("a number" + _range_text(lo, hi, lo_open, hi_open), check, **kw)


def Int(lo=None, hi=None, **kw) -> _Spec:
    def check(value):
        v = _number(value)
        if not v.is_integer() or not _in_range(v, lo, hi, False, False):
            raise ValueError
        return int(v)

    return _Spec("a whole number" + _range_text(lo, hi, False, False), check, **kw)


def Bool(**kw) -> _Spec:
    def check(value):
        if not isinstance(value, bool):
            raise ValueError
        return value

    return _Spec("true or false", check, **kw)


def Str(**kw) -> _Spec:
    def check(value):
        if not isinstance(value, str) or not value:
            raise ValueError
        return value

    return _Spec("a non-empty string", check, **kw)


def Choice(options, **kw) -> _Spec:
    def check(value):
        if value not in options:
            raise ValueError
        return value

    return _Spec("one of " + ", ".join(map(str, options)), check, **kw)


def Paths(**kw) -> _Spec:
    """A file path or a list of them."""
    def check(value):
        items = value if isinstance(value, (list, tuple)) else [value]
        if not items or not all(isinstance(p, (str, os.PathLike)) and str(p) for p in items):
            raise ValueError
        return [str(p) for p in items] if isinstance(value, (list, tuple)) else str(value)

    return _Spec("a file path or a list of file paths", check, **kw)


def StrList(**kw) -> _Spec:
    """A list of strings (a single string is taken as a list of one)."""
    def check(value):
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(x, str) and x for x in items):
            raise ValueError
        return list(items)

    return _Spec("a list of strings", check, **kw)


def _element(symbol) -> str:
    from ase.data import atomic_numbers

    if not isinstance(symbol, str) or symbol not in atomic_numbers or symbol == "X":
        raise ValueError
    return symbol


def Species(**kw) -> _Spec:
    def check(value):
        if not isinstance(value, (list, tuple)) or not value:
            raise ValueError
        out = [_element(s) for s in value]
        if len(set(out)) != len(out):
            raise ValueError
        return out

    return _Spec("a list of distinct element symbols (e.g. [H, C, O])", check, **kw)


def ReferenceEnergies() -> _Spec:
    modes = ("auto", "isolated_atoms", "least_squares")

    def check(value):
        if isinstance(value, str) and value in modes:
            return value
        if isinstance(value, dict) and value:
            return {_element(k): _number(v) for k, v in value.items()}
        raise ValueError

    return _Spec("auto, isolated_atoms, least_squares or a mapping element symbol → energy in eV", check)


def Index() -> _Spec:
    def check(value):
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            raise ValueError
        return value

    return _Spec('an ASE frame selection such as ":", "0:100" or 5', check)


#: key → expected type and range, beside DEFAULTS (same nesting). Checked by :func:`check_config`.
TYPES: Dict[str, Any] = {
    "run_dir": Str(),
    "overwrite": Bool(),
    "seed": Int(0),
    "dtype": Choice(("float32", "float64")),
    "device": Str(),
    "threads": Int(1, none=True),
    "progress": Bool(),
    "plots": Bool(),
    "data": {
        "train": Paths(none=True),  # required: make_config says so in its own words
        "valid": Paths(none=True),
        "test": Paths(none=True),
        "n_train": Int(1, none=True),
        "n_valid": Int(1, none=True),
        "valid_fraction": Float(0, 1, lo_open=True, hi_open=True),
        "split_seed": Int(0, none=True),
        "isolated_atoms": Paths(none=True),
        "reference_energies": ReferenceEnergies(),
        "energy_key": Str(),
        "forces_key": Str(),
        "stress_key": Str(),
        "energy_unit": Choice(sorted(ENERGY_UNITS), none=True),
        "length_unit": Choice(sorted(LENGTH_UNITS)),
        "format": Str(none=True),
        "index": Index(),
        "config_types": StrList(none=True),
    },
    "model": {
        "type": Str(),
        "species": Species(auto=True),
        "cutoff": Float(0, lo_open=True),
        "avg_num_neighbors": Float(0, lo_open=True, auto=True),
        "energy_scale": Float(0, lo_open=True, auto=True),
    },
    "loss": {"energy_weight": Float(0), "forces_weight": Float(0), "stress_weight": Float(0)},
    "optim": {
        "batch_size": Int(1),
        "valid_batch_size": Int(1),
        "lr": Float(0),
        "weight_decay": Float(0),
        "warmup_steps": Int(0),
        "plateau_factor": Float(0, 1, lo_open=True),
        "plateau_patience": Int(0),
        "min_lr": Float(0),
        "grad_clip": Float(0, none=True),
        "ema_decay": Float(0, 1, hi_open=True),
        "max_epochs": Int(1),
        "max_time_minutes": Float(0, lo_open=True, none=True),
        "anneal_fraction": Float(0, 1, lo_open=True, none=True),
        "early_stopping_patience": Int(1, none=True),
        "valid_every_epochs": Int(1),
    },
    "checkpoint": {"every_steps": Int(0, none=True)},
    "finetune": {
        "from": Str(none=True),
        "freeze": StrList(),
        "refit_reference_energies": Bool(),
    },
}

#: model settings passed to the model constructors, checked when a config sets them.
MODEL_SETTING_TYPES: Dict[str, _Spec] = {
    **{k: Int(1) for k in ("hidden", "num_layers", "num_basis", "envelope_p", "lmax", "channels", "num_heads",
                           "radial_hidden")},
    "update_coords": Bool(),
    "parity_even": Bool(),
}

#: config keys that hold data file paths (resolved to absolute paths).
DATA_PATH_KEYS = ("train", "valid", "test", "isolated_atoms")


def _spec(section: str, key: str) -> Optional[_Spec]:
    table = TYPES.get(section) if section else TYPES
    spec = table.get(key) if isinstance(table, dict) else None
    if spec is None and section == "model":
        spec = MODEL_SETTING_TYPES.get(key)
    return spec if isinstance(spec, _Spec) else None


def _bad(where: str, value, form: str) -> GeoffInputError:
    return GeoffInputError(f"config key {where}: {value!r} is not valid; expected {form}.")


def check_config(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Check every key against ``TYPES`` and return ``cfg`` with values in their canonical
    types (e.g. ``lr: 1e-3``, which YAML reads as a string, becomes a float).

    Raises :class:`GeoffInputError` naming the key, the value and the expected form.
    """
    for key, default in DEFAULTS.items():
        if isinstance(default, dict):
            section = cfg.get(key)
            if not isinstance(section, dict):
                raise GeoffInputError(f"config key {key}: expected a mapping of settings (indented `name: value` "
                                      f"lines, e.g. {key}:\\n  {next(iter(default))}: ...), got "
                                      f"{type(section).__name__} {section!r}.")
            for k, v in section.items():
                spec = _spec(key, k)
                if spec is None:
                    continue
                try:
                    section[k] = spec(v)
                except (ValueError, TypeError, OverflowError):
                    raise _bad(f"{key}.{k}", v, spec.form) from None
        elif key in cfg:
            spec = _spec("", key)
            try:
                cfg[key] = spec(cfg[key])
            except (ValueError, TypeError, OverflowError):
                raise _bad(key, cfg[key], spec.form) from None
    return cfg


def resolve_data_paths(cfg: Dict[str, Any], base: Optional[os.PathLike] = None) -> Dict[str, Any]:
    """Make the data paths of ``cfg`` absolute (relative ones are taken relative to ``base``,
    default the working directory); ``finetune.from`` too when it names an existing file."""
    base = Path(base) if base is not None else Path.cwd()

    def absolute(p):
        p = Path(os.path.expanduser(str(p)))
        return os.path.normpath(str(p if p.is_absolute() else base / p))

    d = cfg["data"]
    for key in DATA_PATH_KEYS:
        v = d.get(key)
        if v is None:
            continue
        d[key] = [absolute(p) for p in v] if isinstance(v, (list, tuple)) else absolute(v)
    ft = cfg.get("finetune") or {}
    if isinstance(ft.get("from"), str) and Path(ft["from"]).is_file():
        ft["from"] = absolute(ft["from"])
    return cfg


# ----------------------------------------------------------------------------- merging, reading


def merge_config(base: Dict[str, Any], new: Optional[Dict[str, Any]], path: str = "", strict: bool = True,
                 open_keys=("model",)) -> Dict[str, Any]:
    """A copy of ``base`` with ``new`` merged in, section by section (nested mappings merge, other values
    and ``reference_energies`` mappings replace). ``strict``: a key ``base`` lacks is an error (except
    inside the ``open_keys`` sections, whose keys depend on the model); ``path`` names the section in
    messages."""
    out = copy.deepcopy(base)
    if new is not None and not isinstance(new, dict):
        raise GeoffInputError(f"config key {path}: expected a mapping of settings (name: value), got "
                              f"{type(new).__name__} {new!r}.")
    for k, v in (new or {}).items():
        where = f"{path}.{k}" if path else k
        if strict and k not in base and path not in open_keys:
            raise GeoffInputError(f"unknown config key {where!r}; known keys here: {sorted(base)}.")
        if isinstance(base.get(k), dict) and k != "reference_energies" and (strict or isinstance(v, dict)):
            out[k] = merge_config(base[k], v, where, strict, open_keys)
        else:
            out[k] = copy.deepcopy(v)
    return out


def make_config(overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """DEFAULTS with ``overrides`` merged in (nested dicts), checked, data paths made absolute."""
    cfg = check_config(merge_config(DEFAULTS, overrides))
    if not cfg["data"]["train"]:
        raise GeoffInputError("the config names no training data: set data.train to a file.")
    return resolve_data_paths(cfg)


def load_config(path, overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Read a YAML config; relative data paths are relative to the working directory
    (and stored as absolute paths in the returned config)."""
    path = Path(path)
    if not path.is_file():
        raise GeoffInputError(f"config file {str(path)!r} not found.")
    try:
        with open(path) as fh:
            user = yaml.safe_load(fh) or {}
    except yaml.YAMLError as exc:
        raise GeoffInputError(f"{path}: not valid YAML ({' '.join(str(exc).split())}). Fix the line it names: "
                              "a config is `key: value` lines, nested sections indented by two spaces.") from None
    if not isinstance(user, dict):
        raise GeoffInputError(f"{path}: a config is a YAML mapping (key: value), got {type(user).__name__}.")
    return make_config(merge_config(merge_config(DEFAULTS, user), overrides))
