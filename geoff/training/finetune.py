"""Fine-tuning: continue training a saved potential on (usually few) new structures.

What changes with respect to training from scratch:
- the model, its species, cutoff, scales and weights come from the potential;
  species the new data lack are kept (their embeddings are simply not updated
  much);
- elements the potential lacks are added (:func:`add_elements`): a new row of every
  per-element parameter (the element embedding, the reference energy), the
  embedding started from the known elements nearest in atomic number;
- isolated-atom energies given with the data (``data.isolated_atoms`` or frames
  in the training files) replace the reference energies of their elements, so a
  new level of theory starts from its own atomic energies;
- the per-element reference energies are re-fitted to the new data: the shift
  δ_Z minimising Σ_s (E_s − E_s^model − Σ_Z n_sZ δ_Z)² is added to E_ref[Z]
  (this absorbs a different DFT setting's constant offsets);
- optionally parameters are frozen by name prefix (e.g. ``embedding``, ``layers.0``);
- defaults suited to small data and a time budget: short warm-up, a faster EMA, early
  stopping, and the learning rate annealed over the last 35 % of ``--max-time-minutes``.
"""

from typing import Dict, List, Optional

import numpy as np
import torch
from ase.data import chemical_symbols

from ase.data import atomic_numbers

from ..errors import GeoffInputError
from ..io import load_potential
from ..models import build_model
from .config import make_config, merge_config
from .data import Sample, check_units
from .predict import predict
from .setup import check_datasets, prepare
from .statistics import species_of
from .trainer import Trainer, check_run_dir

FINETUNE_DEFAULTS: Dict = {
    # lr and batch: the best of three measured fine-tuning ethanol-egnn to 3BPA (benchmarks/results/accuracy-2026-12-01.md)
    "optim": {"lr": 2e-3, "warmup_steps": 20, "batch_size": 8, "ema_decay": 0.99, "max_epochs": 200,
              "plateau_patience": 10, "early_stopping_patience": 50,
              "anneal_fraction": 0.35},  # with a time budget: LR annealed to min_lr over its last 35 %
    "data": {"valid_fraction": 0.1},
}


def _predict_energies(potential, samples: List[Sample], batch_size: int = 64) -> np.ndarray:
    return np.concatenate([out["energy"].double().numpy()
                           for _, out in predict(potential, samples, batch_size, compute_forces=False)])


def refit_reference_energies(potential, samples: List[Sample]) -> Dict[str, float]:
    """Add the least-squares per-element shift of the residual E − E_model to E_ref; returns the shifts (eV)."""
    samples = [s for s in samples if s.energy is not None]
    if not samples:
        return {}
    residual = np.array([s.energy for s in samples]) - _predict_energies(potential, samples)
    present = sorted({chemical_symbols[int(z)] for s in samples for z in s.numbers})
    counts = np.array([[sum(1 for z in s.numbers if chemical_symbols[int(z)] == e) for e in present]
                       for s in samples], dtype=float)
    delta = np.linalg.lstsq(counts, residual, rcond=None)[0]
    shifts = {e: float(d) for e, d in zip(present, delta)}
    refs = potential.reference_energy_dict()
    potential.set_reference_energies({e: refs[e] + d for e, d in shifts.items()})
    return shifts


def _nearest_known(element: str, known: List[str]) -> List[int]:
    """Indices into ``known`` of the elements nearest to ``element`` in atomic number (ties: all)."""
    z = atomic_numbers[element]
    gaps = [abs(atomic_numbers[e] - z) for e in known]
    return [k for k, g in enumerate(gaps) if g == min(gaps)]


def add_elements(potential, elements: List[str]):
    """A copy of ``potential`` that also knows ``elements`` (appended to its species).

    Every parameter or buffer indexed by species (first dimension = number of
    species: the element embedding, the reference energies) keeps its trained
    rows; a new element's rows start as the mean of the rows of the known
    elements nearest to it in atomic number (N from C and O), its reference
    energy at 0 eV until isolated-atom energies or the refit set it. All other
    weights are copied unchanged, so on structures without the new elements the
    copy gives exactly the same energies and forces.
    """
    new = [e for e in elements if e not in potential.species]
    if not new:
        return potential
    old_species = list(potential.species)
    species = old_species + new
    config = {**potential.config(), "species": species, "energy_scale": float(potential.energy_scale)}
    grown = build_model(potential.model_type, config).to(potential.reference_energies.dtype)
    old_state, state = potential.state_dict(), grown.state_dict()
    n_old, n_new = len(old_species), len(species)
    for name, target in state.items():
        if name == "z_to_species":  # rebuilt by the constructor for the new species list
            continue
        old = old_state[name]
        if old.shape == target.shape:
            state[name] = old.clone()
        elif old.dim() >= 1 and old.shape[0] == n_old and target.shape[0] == n_new and old.shape[1:] == target.shape[1:]:
            rows = [old[k] for k in range(n_old)]
            for e in new:
                rows.append(old[_nearest_known(e, old_species)].mean(0) if name != "reference_energies"
                            else torch.zeros_like(old[0]))
            state[name] = torch.stack(rows)
        else:
            raise GeoffInputError(f"cannot add elements {new} to this {potential.model_type} potential: its "
                                  f"parameter {name} has shape {list(old.shape)}, which does not grow with the species.")
    grown.load_state_dict(state)
    grown.check_species = potential.check_species
    return grown


def finetune(potential_name_or_path, train, overrides: Optional[Dict] = None) -> Dict[str, float]:
    """Fine-tune a saved potential on ``train`` (path or list of paths).

    ``overrides`` is a partial config (see ``geoff.training.config.DEFAULTS``),
    e.g. ``{"run_dir": ..., "data": {"n_train": 50, "valid": ...},
    "finetune": {"freeze": ["embedding"]}, "optim": {"max_epochs": 100}}``.
    Returns the trainer's summary (errors of the best EMA weights).
    """
    potential = load_potential(potential_name_or_path)
    if potential.model_type == "committee":
        raise GeoffInputError(
            f"{potential_name_or_path} is a committee: fine-tuning it as one model would train the members' mean and "
            "lose their spread. Fine-tune each member (geoff finetune MEMBER.pt ... --seed K) and build a new "
            "committee from the results (geoff committee build ... -o committee.pt).")
    user = merge_config(FINETUNE_DEFAULTS, overrides, strict=False)
    user = merge_config(user, {"data": {"train": train}, "finetune": {"from": str(potential_name_or_path)}},
                        strict=False)
    model_cfg = {"type": potential.model_type, **potential.config(),
                 "energy_scale": float(potential.energy_scale)}
    user["model"] = model_cfg
    cfg = make_config(user)
    check_run_dir(cfg)  # before any data are read
    torch.manual_seed(int(cfg["seed"]))
    data, potential = prepare(cfg, potential)  # neighbour lists at the potential's cutoff, which stays
    added = [e for e in species_of(data.train + data.valid) if e not in potential.species]
    if added:
        potential = add_elements(potential, added)
        cfg["model"]["species"] = list(potential.species)
        cfg["finetune"]["added_elements"] = added
        if cfg["progress"]:
            print(f"adding element(s) {added} to the potential's species (now {potential.species})")
    missing = [e for e in added if e not in data.isolated_atom_energies]
    if missing and not cfg["finetune"]["refit_reference_energies"]:
        raise GeoffInputError(f"new element(s) {missing} need reference energies: give their isolated-atom "
                              "energies (data.isolated_atoms / --isolated-atoms) or keep the refit on.")
    if data.isolated_atom_energies:
        potential.set_reference_energies({e: v for e, v in data.isolated_atom_energies.items()
                                          if e in potential.species})
    check_datasets(cfg, data, potential.species, train_label="fine-tuning")
    potential = potential.to(torch.float64)
    if cfg["finetune"]["refit_reference_energies"]:
        cfg["finetune"]["reference_energy_shifts"] = refit_reference_energies(potential, data.train)
    check_units(data.train, potential.reference_energy_dict(), "fine-tuning")
    cfg["model"]["reference_energies"] = potential.reference_energy_dict()
    cfg["data"]["reference_energies"] = potential.reference_energy_dict()
    unknown = [f for f in cfg["finetune"]["freeze"]
               if not any(n == f or n.startswith(f + ".") for n, _ in potential.named_parameters())]
    if unknown:
        names = sorted({n.split(".")[0] for n, _ in potential.named_parameters()})
        raise GeoffInputError(f"finetune.freeze: no parameters named {unknown}; top-level names: {names} "
                              "(use prefixes such as 'embedding' or 'layers.0').")
    trainer = Trainer(cfg, potential, data)
    return trainer.train()
