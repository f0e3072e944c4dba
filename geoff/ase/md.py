"""Molecular dynamics with ASE integrators: progress, trajectory, energy log, drift, plot."""

import csv
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from ase import units
from ase.io import read
from ase.io.trajectory import Trajectory
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet

from ..errors import GeoffInputError
from ..io import atomic_path

#: Molecule names accepted in place of a structure file (ase.build.molecule names also work).
MOLECULE_ALIASES = {"ethanol": "CH3CH2OH", "methanol": "CH3OH", "water": "H2O"}


def load_structure(spec: str):
    """An ASE ``Atoms`` from a file ase.io reads (last frame) or a molecule name like "ethanol"."""
    path = Path(spec)
    if path.is_file():
        return read(path, index=-1)
    from ase.build import molecule
    from ase.collections import g2

    name = MOLECULE_ALIASES.get(spec, spec)
    if name in g2.names:
        return molecule(name)
    raise GeoffInputError(f"{spec!r} is neither a structure file nor a molecule name (e.g. 'ethanol', 'CH4').")


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


def run_md(atoms, calculator, steps: int, timestep_fs: float = 0.5, temperature_k: float = 300.0,
           ensemble: str = "nve", friction_per_fs: float = 0.01, output_dir="md-run", log_every: int = 10,
           seed: int = 0, progress: bool = True, plot: bool = True) -> MDResult:
    """Run ASE MD and write ``trajectory.traj``, ``energies.csv`` and ``energies.png`` into ``output_dir``.

    Velocities start from a Maxwell–Boltzmann distribution at ``temperature_k``
    (no net momentum or rotation). ``ensemble`` is "nve" (velocity Verlet) or
    "nvt" (Langevin with ``friction_per_fs``). Drift is the slope of the total
    energy; it measures energy conservation only for NVE.
    """
    from tqdm.auto import tqdm

    if ensemble not in ("nve", "nvt"):
        raise GeoffInputError(f"ensemble must be 'nve' or 'nvt', got {ensemble!r}.")
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    atoms = atoms.copy()
    atoms.calc = calculator
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_k, rng=rng)
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)
    dt = timestep_fs * units.fs
    if ensemble == "nve":
        dyn = VelocityVerlet(atoms, timestep=dt)
    else:
        dyn = Langevin(atoms, timestep=dt, temperature_K=temperature_k, friction=friction_per_fs / units.fs, fixcm=False,
                       rng=rng)

    rows = []
    n = len(atoms)

    def record():
        epot = atoms.get_potential_energy()
        ekin = atoms.get_kinetic_energy()
        rows.append((dyn.nsteps * timestep_fs / 1000.0, epot, ekin, epot + ekin, atoms.get_temperature()))

    traj_path, log_path, png_path = out / "trajectory.traj", out / "energies.csv", out / "energies.png"
    with atomic_path(traj_path) as tmp_traj:
        traj = Trajectory(str(tmp_traj), "w", atoms)
        record()
        traj.write()
        bar = tqdm(total=steps, desc=f"MD {ensemble.upper()} {n} atoms", unit="step", disable=not progress)
        t0 = time.perf_counter()
        done = 0
        while done < steps:
            chunk = min(log_every, steps - done)
            dyn.run(chunk)
            done += chunk
            record()
            traj.write()
            bar.update(chunk)
            bar.set_postfix(T=f"{rows[-1][4]:.0f}K", Etot=f"{rows[-1][3]:.4f}")
            if not np.isfinite(rows[-1][3]):
                raise GeoffInputError(f"MD blew up at step {done}: energy is not finite. Use a smaller time step.")
        wall = time.perf_counter() - t0
        bar.close()
        traj.close()

    data = np.array(rows)
    with atomic_path(log_path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["time_ps", "potential_eV", "kinetic_eV", "total_eV", "temperature_K"])
            w.writerows(data.tolist())
    drift = energy_drift(data[:, 0], data[:, 3], n)
    fluct = float(np.std(data[:, 3]) * 1000.0 / n)
    png = None
    if plot:
        png = plot_energies(data, png_path, drift, ensemble)
    sps = steps / wall if wall > 0 else float("inf")
    return MDResult(steps=steps, wall_s=wall, steps_per_s=sps, ns_per_day=sps * timestep_fs * 86400 / 1e6,
                    drift_mev_per_atom_per_ps=drift, energy_fluctuation_mev_per_atom=fluct,
                    mean_temperature_k=float(data[1:, 4].mean()) if len(data) > 1 else float(data[0, 4]),
                    trajectory=traj_path, log=log_path, plot=png)


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
