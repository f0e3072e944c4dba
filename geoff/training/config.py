"""Training configuration: YAML file → nested dict merged over ``DEFAULTS``.

Every key a user may set is in ``DEFAULTS`` (with its unit); an unknown key is
an error, so a typo never silently falls back to a default. ``"auto"`` values
are filled from the data (species, reference energies, average number of
neighbours, energy scale).
"""

import copy
from pathlib import Path
from typing import Any, Dict, Optional

import yaml

from ..errors import GeoffInputError

DEFAULTS: Dict[str, Any] = {
    "run_dir": "runs/geoff-run",      # output folder (checkpoints, metrics.csv, plots, potential.pt)
    "seed": 0,                        # weights init, split and data order
    "dtype": "float32",               # float32 | float64
    "device": "cpu",
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


def _merge(base: Dict[str, Any], new: Dict[str, Any], path: str, open_keys=("model",)) -> Dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in (new or {}).items():
        where = f"{path}.{k}" if path else k
        if k not in base and path not in open_keys:
            raise GeoffInputError(f"unknown config key {where!r}; known keys here: {sorted(base)}.")
        if isinstance(base.get(k), dict) and isinstance(v, dict) and k != "reference_energies":
            out[k] = _merge(base[k], v, where, open_keys)
        else:
            out[k] = copy.deepcopy(v)
    return out


def make_config(overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """DEFAULTS with ``overrides`` merged in (nested dicts), checked."""
    cfg = _merge(DEFAULTS, overrides or {}, "")
    if cfg["dtype"] not in ("float32", "float64"):
        raise GeoffInputError(f"dtype must be float32 or float64, got {cfg['dtype']!r}.")
    if not cfg["data"]["train"]:
        raise GeoffInputError("the config names no training data: set data.train to a file.")
    for k in ("batch_size", "max_epochs"):
        if int(cfg["optim"][k]) < 1:
            raise GeoffInputError(f"optim.{k} must be at least 1.")
    return cfg


def load_config(path, overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Read a YAML config; relative data paths stay relative to the working directory."""
    path = Path(path)
    if not path.is_file():
        raise GeoffInputError(f"config file {str(path)!r} not found.")
    with open(path) as fh:
        user = yaml.safe_load(fh) or {}
    if not isinstance(user, dict):
        raise GeoffInputError(f"{path}: a config is a YAML mapping (key: value), got {type(user).__name__}.")
    cfg = make_config(user)
    if overrides:
        cfg = _merge(cfg, overrides, "")
    return cfg
