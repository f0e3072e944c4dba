"""Errors of a potential on labelled data: energy (total and per atom) and force
MAE / RMSE, with parity plots."""

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from ..errors import GeoffInputError
from .data import Sample, check_samples
from .loss import ErrorMetrics
from .predict import predict


def check_labels(samples: List[Sample], need_energy: bool = False, need_forces: bool = False,
                 energy_key: str = "energy", forces_key: str = "forces") -> None:
    """Raise :class:`GeoffInputError` unless there is something to compare: structures, and
    reference energies or forces on every one of them (energies and forces each all-or-none;
    ``need_energy`` / ``need_forces``: required, e.g. when the user named their keys)."""
    if not samples:
        raise GeoffInputError("no structures to evaluate (isolated-atom frames are not evaluated); give a file of "
                              "labelled structures, or widen --index / --config-types.")
    for name, key, option, need, attr in (("energy", energy_key, "--energy-key", need_energy, "energy"),
                                          ("forces", forces_key, "--forces-key", need_forces, "forces")):
        have = [getattr(s, attr) is not None for s in samples]
        if need and not any(have):
            raise GeoffInputError(f"no structure has {name} under the key {key!r}; set {option} to the name of the "
                                  f"file's {name} field.")
        if any(have) and not all(have):
            missing = samples[have.index(False)]
            raise GeoffInputError(f"structure {missing.source} has no {name} (key {key!r}) while others do; "
                                  f"evaluate files whose structures all carry {name}, or select them with --index "
                                  "/ --config-types.")
    if all(s.energy is None and s.forces is None for s in samples):
        raise GeoffInputError(f"the data have no reference energies (key {energy_key!r}) or forces (key "
                              f"{forces_key!r}): nothing to compare with. Set --energy-key / --forces-key to the "
                              "names of the file's fields (ASE reads extended XYZ energy= and forces as 'energy' "
                              "and 'forces').")


def evaluate_potential(potential, samples: List[Sample], batch_size: int = 32,
                       progress: bool = False) -> Tuple[Dict[str, float], Dict[str, torch.Tensor]]:
    """Predict energies [B] (eV) and forces [N,3] (eV/Å) for ``samples`` and compare.

    Returns (summary, arrays): summary has energy_mae/rmse in meV and meV/atom,
    forces_mae/rmse in meV/Å (per component) and counts; arrays holds the raw
    predictions and references (for parity plots). Raises :class:`GeoffInputError`
    when the samples carry nothing to compare with (see :func:`check_labels`).
    """
    check_labels(samples)
    check_samples(samples, potential.species, need_energy=False, need_forces=False, need_stress=False,
                  label="evaluation")
    metrics = ErrorMetrics()
    has_forces = all(s.forces is not None for s in samples)
    for batch, out in predict(potential, samples, batch_size, compute_forces=has_forces, progress=progress,
                              desc="evaluate"):
        metrics.update(out, batch)
    summary = metrics.summary()
    summary["structures"] = len(samples)
    summary["atoms"] = int(sum(len(s) for s in samples))
    return summary, metrics.arrays()


def format_table(summary: Dict[str, float], title: str = "") -> str:
    """A plain-text table of the errors."""
    rows = [("energy", "meV", "energy_mae_mev", "energy_rmse_mev"),
            ("energy per atom", "meV/atom", "energy_mae_mev_per_atom", "energy_rmse_mev_per_atom"),
            ("forces (components)", "meV/Å", "forces_mae_mev_per_a", "forces_rmse_mev_per_a")]
    lines = [title] if title else []
    lines.append(f"{'quantity':22s} {'MAE':>10s} {'RMSE':>10s}  unit")
    for name, unit, mae, rmse in rows:
        if mae in summary:
            lines.append(f"{name:22s} {summary[mae]:10.3f} {summary[rmse]:10.3f}  {unit}")
    lines.append(f"{summary.get('structures', 0)} structures, {summary.get('atoms', 0)} atoms")
    return "\n".join(lines)


def write_report(summary: Dict[str, float], arrays, output: Optional[Path], name: str = "evaluation") -> Dict[str, Path]:
    """Write NAME.json (the numbers) and NAME_parity.png into ``output``."""
    import json

    from ..io import atomic_path
    from .plots import parity_plot

    output = Path(output)
    files = {"json": output / f"{name}.json", "parity": output / f"{name}_parity.png"}
    with atomic_path(files["json"]) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    parity_plot(arrays, files["parity"], title=name)
    return files
