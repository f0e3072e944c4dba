"""What every MD driver reports: the energy log, drift, speed and the energy plot."""

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

from .io import atomic_path

#: one energy-log row: time ps, potential eV, kinetic eV, total eV, temperature K
Row = Tuple[float, float, float, float, float]


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


def run_in_chunks(steps: int, log_every: int, advance: Callable[[int], None], sample: Callable[[int], Row],
                  desc: str, progress: bool = True) -> float:
    """Advance MD ``steps`` steps, ``log_every`` at a time, calling ``sample(steps_done)`` after each chunk
    (it records a row and writes a frame); show a progress bar; stop with a clear error when the total
    energy stops being finite. Returns the wall time of the stepping, s."""
    from tqdm.auto import tqdm

    from .errors import GeoffInputError

    bar = tqdm(total=steps, desc=desc, unit="step", disable=not progress)
    t0 = time.perf_counter()
    done = 0
    while done < steps:
        chunk = min(log_every, steps - done)
        advance(chunk)
        done += chunk
        row = sample(done)
        bar.update(chunk)
        bar.set_postfix(T=f"{row[4]:.0f}K", Etot=f"{row[3]:.4f}")
        if not np.isfinite(row[3]):
            bar.close()
            raise GeoffInputError(f"MD blew up at step {done}: energy is not finite. Use a smaller time step.")
    wall = time.perf_counter() - t0
    bar.close()
    return wall


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
