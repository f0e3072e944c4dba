"""Molecular dynamics with ASE integrators (``geoff md``, the default engine).

Only what is ASE's lives here: the starting velocities, the dynamics (velocity Verlet for NVE,
Langevin for NVT and equilibration), how to step them and read a frame, and the ASE trajectory.
The loop, its health checks, the energy log, drift and plot are :mod:`geoff.md`'s.
"""

from typing import Optional

import numpy as np
from ase import units
from ase.io.trajectory import Trajectory
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from ase.md.verlet import VelocityVerlet

from ..io import atomic_path
from ..md.health import (HealthLimits, HealthMonitor, MDFailure, MDInterrupted, Snapshot, check_ensemble,
                         check_md_input, check_md_parameters)
from ..md.log import MDResult, finish_run
from ..md.loop import FAILED_FRAME, prepare_output_dir, run_in_chunks, run_recorded, write_failed_frame
from ..units import FS_PER_PS


def thermalise(atoms, temperature_k: float, rng: np.random.Generator) -> None:
    """Maxwell–Boltzmann velocities at ``temperature_k`` (K), without centre-of-mass motion and, for a
    molecule (no periodic direction), without overall rotation."""
    thermalize_momenta(atoms, temperature_K=temperature_k, rng=rng)
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)


def run_md(atoms, calculator, steps: int, timestep_fs: float = 0.5, temperature_k: float = 300.0,
           ensemble: str = "nve", friction_per_fs: float = 0.01, output_dir="md-run", log_every: int = 10,
           seed: int = 0, progress: bool = True, plot: bool = True, equilibration_steps: int = 0,
           overwrite: bool = True, health_checks: bool = True, health_limits: Optional[HealthLimits] = None
           ) -> MDResult:
    """Run ASE MD and write ``trajectory.traj``, ``energies.csv`` and ``energies.png`` into ``output_dir``.

    Velocities start from a Maxwell–Boltzmann distribution at ``temperature_k``
    (no net momentum or rotation), then ``equilibration_steps`` of Langevin
    dynamics at ``temperature_k`` (not recorded) bring the structure to that
    temperature. ``ensemble`` is "nve" (velocity Verlet) or "nvt" (Langevin with
    ``friction_per_fs``). Drift is the slope of the total energy; it measures
    energy conservation only for NVE.

    Every logged frame (each ``log_every`` steps) is checked by a
    :class:`geoff.md.health.HealthMonitor` (``health_checks=False``: non-finite values only).
    When the run fails, or on Ctrl-C, the frames up to the last good one stay in
    ``trajectory.traj``, ``energies.csv`` and ``energies.png``, the failing frame goes to
    ``failed-frame.xyz``, and :class:`geoff.md.health.MDFailure` (or ``MDInterrupted``) is raised.
    ``overwrite=False`` refuses an ``output_dir`` that holds an earlier run's results.
    """
    check_ensemble(ensemble)
    check_md_input(atoms, getattr(calculator, "potential", None))
    check_md_parameters(steps, timestep_fs, temperature_k, log_every, friction_per_fs, equilibration_steps)
    out = prepare_output_dir(output_dir, overwrite)
    atoms = atoms.copy()
    atoms.calc = calculator
    rng = np.random.default_rng(seed)
    thermalise(atoms, temperature_k, rng)
    dt = timestep_fs * units.fs
    n = len(atoms)
    failed_path = out / FAILED_FRAME
    numbers, cell, pbc = atoms.numbers.copy(), atoms.cell[:].copy(), atoms.pbc.copy()

    def monitor(ens: str) -> HealthMonitor:
        # ASE's temperature counts 3 N degrees of freedom
        return HealthMonitor(numbers, cell, pbc, ens, temperature_k, 3 * n, health_limits, health_checks)

    def observe(done: int) -> Snapshot:
        t = done * timestep_fs / FS_PER_PS
        epot = atoms.get_potential_energy()
        ekin = atoms.get_kinetic_energy()
        return Snapshot(done, t, atoms.positions.copy(), (t, epot, ekin, epot + ekin, atoms.get_temperature()),
                        atoms.get_forces())

    def salvage(step: int) -> Snapshot:
        return Snapshot(step, step * timestep_fs / FS_PER_PS, atoms.positions.copy())

    def write_failed(snap: Snapshot) -> None:
        write_failed_frame(failed_path, numbers, cell, pbc, snap)

    if equilibration_steps > 0:
        bath = Langevin(atoms, timestep=dt, temperature_K=temperature_k, friction=friction_per_fs / units.fs,
                        fixcm=False, rng=rng)
        try:
            run_in_chunks(equilibration_steps, log_every, bath.run, observe, None,
                          f"equilibrating at {temperature_k:g} K", progress, monitor=monitor("nvt"),
                          steps_done=lambda: bath.nsteps, salvage=salvage, on_failure=write_failed,
                          timestep_fs=timestep_fs, phase="equilibration")
        except (MDFailure, MDInterrupted) as exc:
            exc.kept = (f"Nothing was recorded yet; the failing frame is in {failed_path}."
                        if failed_path.exists() else "Nothing was recorded yet.")
            raise
        Stationary(atoms)
        if not atoms.pbc.any():
            ZeroRotation(atoms)
    if ensemble == "nve":
        dyn = VelocityVerlet(atoms, timestep=dt)
    else:
        dyn = Langevin(atoms, timestep=dt, temperature_K=temperature_k, friction=friction_per_fs / units.fs,
                       fixcm=False, rng=rng)

    rows = []
    traj_path, log_path, png_path = out / "trajectory.traj", out / "energies.csv", out / "energies.png"
    with atomic_path(traj_path) as tmp_traj:
        traj = Trajectory(str(tmp_traj), "w", atoms)

        def commit(snap: Snapshot) -> None:
            rows.append(snap.row)
            traj.write()

        try:
            wall, stopped = run_recorded(steps, log_every, dyn.run, observe, commit, f"MD {ensemble.upper()} {n} atoms",
                                         progress, monitor=monitor(ensemble), steps_done=lambda: dyn.nsteps,
                                         salvage=salvage, on_failure=write_failed, timestep_fs=timestep_fs)
        finally:
            traj.close()
    return finish_run(rows, n, wall, timestep_fs, ensemble, traj_path, log_path, png_path if plot else None,
                      stopped, failed_path)
