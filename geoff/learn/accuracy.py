"""How far a potential (or committee) is from DFT labels, and how well its spread foresaw it."""

from typing import Any, Dict, Optional, Sequence

import numpy as np


def spearman(x: np.ndarray, y: np.ndarray) -> Optional[float]:
    """Spearman rank correlation of two [S] arrays (None for fewer than 3 values or a constant one)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def errors_against_labels(potential, labelled: Sequence) -> Dict[str, Any]:
    """Errors of ``potential`` (a potential, a file or a shipped name; a committee gives its mean and
    spread) on ``labelled`` structures (ase.Atoms with DFT energy, eV, and forces, eV/Å).

    Returns (meV, meV/Å): frames; forces_mae_mev_per_a (mean over components of |ΔF|),
    forces_rmse_mev_per_a; energy_mae_mev_per_atom; max_force_error_mev_per_a (per frame the largest
    atomic |ΔF_i|, averaged over frames); with a committee also max_force_std_mev_per_a (per frame
    the largest atomic force std, averaged) and spearman_std_vs_error (per frame, max std against
    max error); per_frame: lists of those per-frame values.
    """
    from ..ase import GeoffCalculator

    calc = GeoffCalculator(potential)
    dF, dE, max_err, max_std = [], [], [], []
    for atoms in labelled:
        ref_f = np.asarray(atoms.get_forces(), dtype=float)
        ref_e = float(atoms.get_potential_energy())
        probe = atoms.copy()
        probe.calc = calc
        f = probe.get_forces()
        e = probe.get_potential_energy()
        d = f - ref_f
        dF.append(d.reshape(-1))
        dE.append((e - ref_e) / len(atoms))
        max_err.append(float(np.linalg.norm(d, axis=1).max()))
        if calc.members is not None:
            max_std.append(float(calc.results["max_force_std"]))
    out: Dict[str, Any] = {"frames": len(labelled)}
    if not labelled:
        return out
    flat = np.concatenate(dF)
    out.update(forces_mae_mev_per_a=1e3 * float(np.abs(flat).mean()),
               forces_rmse_mev_per_a=1e3 * float(np.sqrt(np.mean(flat ** 2))),
               energy_mae_mev_per_atom=1e3 * float(np.abs(dE).mean()),
               max_force_error_mev_per_a=1e3 * float(np.mean(max_err)),
               per_frame={"max_force_error_mev_per_a": [1e3 * v for v in max_err]})
    if max_std:
        out["max_force_std_mev_per_a"] = 1e3 * float(np.mean(max_std))
        out["spearman_std_vs_error"] = spearman(np.array(max_std), np.array(max_err))
        out["per_frame"]["max_force_std_mev_per_a"] = [1e3 * v for v in max_std]
    return out
