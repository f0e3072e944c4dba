"""What an MD run reports: the energy log (CSV), drift, fluctuation, speed and the energy plot."""

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..io import atomic_path
from ..units import FS_PER_PS
from .health import Row


@dataclass
class MDResult:
    steps: int
    wall_s: float
    steps_per_s: float
    ns_per_day: float
    drift_mev_per_atom_per_ps: float
    energy_fluctuation_mev_per_atom: float
    mean_temperature_k: float
    trajectory: Path
    log: Path
    plot: Optional[Path]


def energy_drift(times_ps: np.ndarray, total_ev: np.ndarray, n_atoms: int) -> float:
    """Slope of a least-squares line through total energy vs time, meV/atom/ps."""
    if len(times_ps) < 2:
        return 0.0
    slope = np.polyfit(times_ps, total_ev, 1)[0]
    return float(slope * 1000.0 / n_atoms)


def finish_run(rows: Sequence[Row], n_atoms: int, wall: float, timestep_fs: float, ensemble: str,
               trajectory: Path, log_path: Path, png_path: Optional[Path], stopped=None,
               failed_frame: Optional[Path] = None) -> MDResult:
    """Write the energy log and plot of the frames in ``rows`` and return the run's figures; when the run
    was ``stopped`` (an :class:`~geoff.md.health.MDFailure` or :class:`~geoff.md.health.MDInterrupted`),
    say in it which files were kept and raise it (its ``result`` holds the figures of the part that ran)."""
    if not rows and stopped is not None:  # the first frame already failed
        where = f"; the failing frame is in {failed_frame}" if failed_frame is not None and failed_frame.exists() else ""
        stopped.kept = f"Nothing was recorded{where}."
        if trajectory.exists():
            trajectory.unlink()  # no frame in it
        raise stopped
    steps = int(round(rows[-1][0] * FS_PER_PS / timestep_fs))
    res = summarise_run(rows, n_atoms, steps, wall, timestep_fs, ensemble, trajectory, log_path, png_path)
    if stopped is None:
        return res
    names = [trajectory.name, log_path.name] + ([png_path.name] if png_path is not None else [])
    frames = f"{len(rows)} frame" + ("s" if len(rows) != 1 else "")
    kept = f"Kept in {trajectory.parent}: {', '.join(names)} up to step {steps} ({frames})"
    if failed_frame is not None and failed_frame.exists():
        kept += f"; the failing frame in {failed_frame.name}"
    stopped.kept = kept + "."
    stopped.result = res
    raise stopped


def summarise_run(rows: Sequence[Row], n_atoms: int, steps: int, wall: float,
                  timestep_fs: float, ensemble: str, trajectory: Path, log_path: Path,
                  png_path: Optional[Path]) -> MDResult:
    """Write ``rows`` (time ps, potential eV, kinetic eV, total eV, temperature K) to ``log_path`` as CSV,
    draw the energy plot to ``png_path`` (when given) and return the run's figures."""
    data = np.array(rows)
    with atomic_path(log_path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["time_ps", "potential_eV", "kinetic_eV", "total_eV", "temperature_K"])
            w.writerows(data.tolist())
    drift = energy_drift(data[:, 0], data[:, 3], n_atoms)
    fluct = float(np.std(data[:, 3]) * 1000.0 / n_atoms)
    png = plot_energies(data, png_path, drift, ensemble) if png_path is not None else None
    sps = steps / wall if wall > 0 else float("inf")
    return MDResult(steps=steps, wall_s=wall, steps_per_s=sps, ns_per_day=sps * timestep_fs * 86400 / 1e6,
                    drift_mev_per_atom_per_ps=drift, energy_fluctuation_mev_per_atom=fluct,
                    mean_temperature_k=float(data[1:, 4].mean()) if len(data) > 1 else float(data[0, 4]),
                    trajectory=trajectory, log=log_path, plot=png)


def plot_energies(data: np.ndarray, path: Path, drift: float, ensemble: str) -> Path:
    """Potential, kinetic and total energy vs time (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = data[:, 0]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    e0 = data[0, 3]
    ax1.plot(t, data[:, 1] - e0, label="potential")
    ax1.plot(t, data[:, 2], label="kinetic")
    ax1.plot(t, data[:, 3] - e0, label="total", color="k")
    ax1.set_ylabel("energy − E_total(0) / eV")
    ax1.legend()
    ax1.set_title(f"{ensemble.upper()}: total-energy drift {drift:.3g} meV/atom/ps")
    ax2.plot(t, data[:, 4])
    ax2.set_xlabel("time / ps")
    ax2.set_ylabel("temperature / K")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path
