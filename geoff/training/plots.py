"""Learning-curve and parity plots (PNG, matplotlib Agg), written atomically."""

from pathlib import Path
from typing import Dict, List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..io import atomic_path  # noqa: E402


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return Path(path)


def learning_curve(history: List[Dict[str, float]], path) -> Path:
    """Train/validation loss (log scale) and validation MAEs against epoch."""
    epoch = [r["epoch"] for r in history]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].semilogy(epoch, [r["train_loss"] for r in history], label="train (running)")
    ax[0].semilogy(epoch, [r["valid_loss"] for r in history], label="validation (EMA)")
    ax[0].set_xlabel("epoch")
    ax[0].set_ylabel("loss (eV²)")
    ax[0].legend()
    if "valid_forces_mae_mev_per_a" in history[0]:
        ax[1].semilogy(epoch, [r["valid_forces_mae_mev_per_a"] for r in history], label="force MAE (meV/Å)")
    if "valid_energy_mae_mev_per_atom" in history[0]:
        ax[1].semilogy(epoch, [r["valid_energy_mae_mev_per_atom"] for r in history], label="energy MAE (meV/atom)")
    ax[1].set_xlabel("epoch")
    ax[1].set_title("validation errors")
    ax[1].legend()
    for a in ax:
        a.grid(alpha=0.3)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.13, top=0.92, wspace=0.25)
    return _save(fig, path)


def parity_plot(arrays: Dict, path, title: str = "") -> Path:
    """Predicted vs reference energy per atom (eV/atom, shifted by the reference mean) and force components (eV/Å)."""
    panels = []
    if "energy_pred" in arrays:
        n = arrays["num_atoms"].numpy()
        ref = arrays["energy_ref"].numpy() / n
        pred = arrays["energy_pred"].numpy() / n
        shift = ref.mean()
        panels.append(("energy per atom − mean (eV/atom)", ref - shift, pred - shift, "meV/atom"))
    if "forces_pred" in arrays:
        panels.append(("force components (eV/Å)", arrays["forces_ref"].numpy().ravel(),
                       arrays["forces_pred"].numpy().ravel(), "meV/Å"))
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(5 * max(len(panels), 1), 4.6), squeeze=False)
    for ax, (label, ref, pred, unit) in zip(axes[0], panels):
        ax.scatter(ref, pred, s=3, alpha=0.4)
        lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        mae = 1e3 * float(np.mean(np.abs(pred - ref)))
        rmse = 1e3 * float(np.sqrt(np.mean((pred - ref) ** 2)))
        ax.set_title(f"MAE {mae:.2f} {unit}, RMSE {rmse:.2f} {unit}", fontsize=10)
        ax.set_xlabel(f"reference {label}")
        ax.set_ylabel(f"predicted {label}")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.12, top=0.85, wspace=0.3)
    return _save(fig, path)
