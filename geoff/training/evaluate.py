"""Errors of a potential on labelled data: energy (total and per atom) and force
MAE / RMSE, with parity plots."""

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
from tqdm import tqdm

from .data import Sample, check_samples, collate, precompute_edges
from .loss import ErrorMetrics


def evaluate_potential(potential, samples: List[Sample], batch_size: int = 32,
                       progress: bool = False) -> Tuple[Dict[str, float], Dict[str, torch.Tensor]]:
    """Predict energies [B] (eV) and forces [N,3] (eV/Å) for ``samples`` and compare.

    Returns (summary, arrays): summary has energy_mae/rmse in meV and meV/atom,
    forces_mae/rmse in meV/Å (per component) and counts; arrays holds the raw
    predictions and references (for parity plots).
    """
    check_samples(samples, potential.species, need_energy=False, need_forces=False, need_stress=False,
                  label="evaluation")
    if samples and samples[0].edges is None:
        precompute_edges(samples, float(potential.cutoff))
    param = next(iter(potential.buffers()))
    dtype, device = potential.reference_energies.dtype, param.device
    metrics = ErrorMetrics()
    has_forces = all(s.forces is not None for s in samples)
    for k in tqdm(range(0, len(samples), batch_size), desc="evaluate", disable=not progress, leave=False):
        batch = collate(samples[k:k + batch_size], dtype, device)
        out = potential(batch, compute_forces=has_forces)
        metrics.update({key: v.detach() for key, v in out.items()}, batch)
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
