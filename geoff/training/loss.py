"""The training loss and error metrics.

Loss for a batch of B structures with N atoms (eV², as in NequIP/MACE):

    L = w_E · (1/B) Σ_b ((E_b − E_b^ref) / N_b)²
      + w_F · (1/N) Σ_i |F_i − F_i^ref|²
      + w_σ · (1/B) Σ_b (1/9) ‖σ_b − σ_b^ref‖²_F

Energies enter per atom so that structures of different sizes weigh alike.
Sums (not means) are returned with their denominators so that data-parallel
workers can form the loss of the *global* batch exactly (see ``trainer``).
"""

from typing import Dict

import torch
from torch import Tensor

from .. import keys
from .data import TARGET_ENERGY, TARGET_FORCES, TARGET_STRESS


def loss_terms(out: Dict[str, Tensor], batch: Dict[str, Tensor], weights: Dict[str, float]) -> Dict[str, Tensor]:
    """Weighted *sums* of the loss terms of this batch: {"energy", "forces", "stress"} (eV²·count).

    Divide the energy and stress sums by the number of structures and the forces
    sum by the number of atoms of the (global) batch to obtain L.
    """
    n = batch[keys.NUM_ATOMS].to(out[keys.ENERGY].dtype)
    zero = out[keys.ENERGY].new_zeros(())
    terms = {"energy": zero, "forces": zero, "stress": zero}
    if weights.get("energy", 0.0) > 0:
        terms["energy"] = weights["energy"] * (((out[keys.ENERGY] - batch[TARGET_ENERGY]) / n) ** 2).sum()
    if weights.get("forces", 0.0) > 0:
        terms["forces"] = weights["forces"] * ((out[keys.FORCES] - batch[TARGET_FORCES]) ** 2).sum()
    if weights.get("stress", 0.0) > 0:
        terms["stress"] = weights["stress"] * ((out[keys.STRESS] - batch[TARGET_STRESS]) ** 2).sum() / 9.0
    return terms


class ErrorMetrics:
    """Accumulates energy (total and per atom) and force errors over batches.

    ``summary()`` gives MAE and RMSE: energy in meV and meV/atom, forces in meV/Å
    (per Cartesian component), and keeps the raw predictions for parity plots.
    """

    def __init__(self):
        self.e_pred, self.e_ref, self.n_atoms = [], [], []
        self.f_pred, self.f_ref = [], []

    def update(self, out: Dict[str, Tensor], batch: Dict[str, Tensor]) -> None:
        if TARGET_ENERGY in batch:
            self.e_pred.append(out[keys.ENERGY].detach().double().cpu())
            self.e_ref.append(batch[TARGET_ENERGY].detach().double().cpu())
            self.n_atoms.append(batch[keys.NUM_ATOMS].detach().cpu().double())
        if TARGET_FORCES in batch and keys.FORCES in out:
            self.f_pred.append(out[keys.FORCES].detach().double().cpu())
            self.f_ref.append(batch[TARGET_FORCES].detach().double().cpu())

    def arrays(self) -> Dict[str, Tensor]:
        a = {}
        if self.e_pred:
            a["energy_pred"], a["energy_ref"] = torch.cat(self.e_pred), torch.cat(self.e_ref)
            a["num_atoms"] = torch.cat(self.n_atoms)
        if self.f_pred:
            a["forces_pred"], a["forces_ref"] = torch.cat(self.f_pred), torch.cat(self.f_ref)
        return a

    def summary(self) -> Dict[str, float]:
        a, s = self.arrays(), {}
        if "energy_pred" in a:
            d = a["energy_pred"] - a["energy_ref"]
            s["energy_mae_mev"] = 1e3 * float(d.abs().mean())
            s["energy_rmse_mev"] = 1e3 * float(d.pow(2).mean().sqrt())
            d = d / a["num_atoms"]
            s["energy_mae_mev_per_atom"] = 1e3 * float(d.abs().mean())
            s["energy_rmse_mev_per_atom"] = 1e3 * float(d.pow(2).mean().sqrt())
        if "forces_pred" in a:
            d = a["forces_pred"] - a["forces_ref"]
            s["forces_mae_mev_per_a"] = 1e3 * float(d.abs().mean())
            s["forces_rmse_mev_per_a"] = 1e3 * float(d.pow(2).mean().sqrt())
        return s
