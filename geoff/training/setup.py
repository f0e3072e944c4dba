"""From a config to training-ready pieces: datasets (read, split, checked, with
neighbour lists) and a model whose fixed scales come from the data.

Everything here happens before the first step, so bad data fail fast with an
error naming the file, the structure and the fix.
"""

import inspect
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import torch

from ..errors import GeoffInputError
from ..models import build_model
from ..models.registry import MODEL_TYPES
from .data import (Sample, check_samples, check_units, precompute_edges, read_dataset, split_by_seed,
                   split_isolated_atoms)
from .statistics import average_num_neighbors, force_rms, least_squares_reference_energies, species_of

RESOLVED_MODEL_KEYS = ("type", "species", "cutoff", "avg_num_neighbors", "energy_scale")


@dataclass
class Datasets:
    train: List[Sample]
    valid: List[Sample]
    test: List[Sample]
    isolated_atom_energies: Dict[str, float]


def _paths(value) -> List[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]


def read_files(paths: List[str], data_cfg: Dict) -> List[Sample]:
    out: List[Sample] = []
    for p in paths:
        out += read_dataset(p, energy_key=data_cfg["energy_key"], forces_key=data_cfg["forces_key"],
                            stress_key=data_cfg["stress_key"], energy_unit=data_cfg["energy_unit"],
                            length_unit=data_cfg["length_unit"], index=data_cfg["index"],
                            format=data_cfg["format"], config_types=data_cfg["config_types"])
    return out


def load_datasets(cfg: Dict) -> Datasets:
    """Read the training, validation and test data of a config and split them."""
    d = cfg["data"]
    train, e0 = split_isolated_atoms(read_files(_paths(d["train"]), d))
    if d["isolated_atoms"]:
        _, extra = split_isolated_atoms(read_files(_paths(d["isolated_atoms"]), {**d, "config_types": None}))
        if not extra:
            raise GeoffInputError(f"{d['isolated_atoms']}: no isolated-atom frames (one atom, config_type="
                                  "isolated_atom, with an energy).")
        e0.update(extra)
    seed = cfg["seed"] if d["split_seed"] is None else d["split_seed"]
    if d["valid"]:
        valid, _ = split_isolated_atoms(read_files(_paths(d["valid"]), d))
        if d["n_train"] is not None:
            if d["n_train"] > len(train):
                raise GeoffInputError(f"data.n_train = {d['n_train']} but the training files hold {len(train)}.")
            train = [train[k] for k in np.random.default_rng(seed).permutation(len(train))[: d["n_train"]]]
    else:
        train, valid = split_by_seed(train, d["n_train"], d["n_valid"], d["valid_fraction"], seed)
    test = split_isolated_atoms(read_files(_paths(d["test"]), d))[0] if d["test"] else []
    return Datasets(train, valid, test, e0)


def reference_energies(cfg: Dict, data: Datasets, species: List[str]) -> Dict[str, float]:
    """Per-element reference energies (eV) as the config asks."""
    mode = cfg["data"]["reference_energies"]
    if isinstance(mode, dict):
        return {str(k): float(v) for k, v in mode.items()}
    if mode == "isolated_atoms" or (mode == "auto" and data.isolated_atom_energies):
        missing = [s for s in species if s not in data.isolated_atom_energies]
        present = {z for s in data.train for z in s.numbers}
        from ase.data import atomic_numbers

        missing = [s for s in missing if atomic_numbers[s] in present]
        if missing:
            raise GeoffInputError(f"no isolated-atom energy for {missing}; add their frames to data.isolated_atoms "
                                  "or use data.reference_energies: least_squares.")
        return {s: e for s, e in data.isolated_atom_energies.items() if s in species}
    if mode in ("auto", "least_squares"):
        return least_squares_reference_energies(data.train, species)
    raise GeoffInputError(f"data.reference_energies must be auto, isolated_atoms, least_squares or a mapping "
                          f"symbol → eV; got {mode!r}.")


def check_datasets(cfg: Dict, data: Datasets, species: List[str], refs: Optional[Dict[str, float]] = None,
                   train_label: str = "training") -> None:
    """Refuse data that lack what the loss weights or hold elements outside ``species``, energies in another
    unit than the reference energies ``refs`` (eV; skipped when None), and a run without validation data."""
    w = cfg["loss"]
    for label, samples in ((train_label, data.train), ("validation", data.valid)):
        check_samples(samples, species, w["energy_weight"] > 0, w["forces_weight"] > 0, w["stress_weight"] > 0,
                      label)
        if refs is not None:
            check_units(samples, refs, label)
    if not data.valid:
        raise GeoffInputError("no validation structures: set data.valid, data.n_valid or data.valid_fraction.")


def build_model_from_config(cfg: Dict, data: Datasets) -> torch.nn.Module:
    """Resolve the "auto" model settings from the training data and build the model.

    Writes the resolved values back into ``cfg["model"]`` (so the run folder's
    config.yaml reproduces the model exactly).
    """
    m = cfg["model"]
    if m["type"] not in MODEL_TYPES:
        raise GeoffInputError(f"unknown model.type {m['type']!r}; geoff knows {sorted(MODEL_TYPES)}.")
    species = species_of(data.train + data.valid) if m["species"] == "auto" else list(m["species"])
    refs = reference_energies(cfg, data, species)
    check_datasets(cfg, data, species, refs)
    if m["energy_scale"] == "auto":
        m["energy_scale"] = force_rms(data.train)
    m["species"] = species
    cls = MODEL_TYPES[m["type"]]
    accepted = inspect.signature(cls.__init__).parameters
    if "parity_even" in accepted and "parity_even" not in m:
        # DFT energies do not change under a mirror, so a trained potential should not either
        m["parity_even"] = True
    kwargs = {k: v for k, v in m.items() if k not in ("type", "avg_num_neighbors")}
    if "avg_num_neighbors" in accepted:
        if m["avg_num_neighbors"] == "auto":
            m["avg_num_neighbors"] = average_num_neighbors(data.train)
        kwargs["avg_num_neighbors"] = float(m["avg_num_neighbors"])
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise GeoffInputError(f"model.{unknown[0]} is not a setting of model type {m['type']!r}; "
                              f"its settings: {sorted(k for k in accepted if k != 'self')}.")
    cfg["data"]["reference_energies"] = refs
    model = build_model(m["type"], {**kwargs, "reference_energies": refs})
    init_readout_bias(model, data.train, refs, float(m["energy_scale"]))
    return model


def mean_residual_energy_per_atom(samples: List[Sample], refs: Dict[str, float]) -> float:
    """Mean of (E − Σ_i E_ref[Z_i]) / N over the samples with energies, eV/atom."""
    from ase.data import chemical_symbols

    vals = [(s.energy - sum(refs.get(chemical_symbols[int(z)], 0.0) for z in s.numbers)) / len(s)
            for s in samples if s.energy is not None]
    return float(np.mean(vals)) if vals else 0.0


def init_readout_bias(model: torch.nn.Module, samples: List[Sample], refs: Dict[str, float], scale: float) -> None:
    """Start the per-atom read-out at the mean binding energy per atom.

    With isolated-atom reference energies the energy the network must produce is
    several eV per atom (the atomisation energy); setting the bias of the
    read-out's last linear layer (``model.readout``, out_features 1) to
    mean residual / energy_scale removes that offset from the first steps. The
    model is unchanged otherwise; models without such a layer are left alone.
    """
    readout = getattr(model, "readout", None)
    if readout is None:
        return
    last = [m for m in readout.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 1]
    if last and last[-1].bias is not None:
        with torch.no_grad():
            last[-1].bias.fill_(mean_residual_energy_per_atom(samples, refs) / scale)


def prepare(cfg: Dict, model: Optional[torch.nn.Module] = None, progress: bool = False):
    """Datasets with neighbour lists, and the model (built from the config unless given)."""
    data = load_datasets(cfg)
    if model is None:
        precompute_edges(data.train, float(cfg["model"]["cutoff"]), progress)
        model = build_model_from_config(cfg, data)
    cutoff = float(model.cutoff)
    for samples in (data.train, data.valid, data.test):
        if samples and samples[0].edges is None:
            precompute_edges(samples, cutoff, progress)
    return data, model
