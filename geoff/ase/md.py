"""Molecular dynamics with ASE integrators: progress, trajectory, energy log, drift, plot."""

from pathlib import Path

import numpy as np
from ase import units
from ase.io import read
from ase.io.trajectory import Trajectory
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from ase.md.verlet import VelocityVerlet

from ..errors import GeoffInputError
from ..io import atomic_path
from ..mdlog import MDResult, run_in_chunks, summarise_run

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


def run_md(atoms, calculator, steps: int, timestep_fs: float = 0.5, temperature_k: float = 300.0,
           ensemble: str = "nve", friction_per_fs: float = 0.01, output_dir="md-run", log_every: int = 10,
           seed: int = 0, progress: bool = True, plot: bool = True, equilibration_steps: int = 0) -> MDResult:
    """Run ASE MD and write ``trajectory.traj``, ``energies.csv`` and ``energies.png`` into ``output_dir``.

    Velocities start from a Maxwell–Boltzmann distribution at ``temperature_k``
    (no net momentum or rotation), then ``equilibration_steps`` of Langevin
    dynamics at ``temperature_k`` (not recorded) bring the structure to that
    temperature. ``ensemble`` is "nve" (velocity Verlet) or "nvt" (Langevin with
    ``friction_per_fs``). Drift is the slope of the total energy; it measures
    energy conservation only for NVE.
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
    if equilibration_steps > 0:
        bath = Langevin(atoms, timestep=dt, temperature_K=temperature_k, friction=friction_per_fs / units.fs,
                        fixcm=False, rng=rng)
        with tqdm(total=equilibration_steps, desc=f"equilibrating at {temperature_k:g} K", unit="step",
                  disable=not progress) as bar:
            for done in range(0, equilibration_steps, log_every):
                bath.run(min(log_every, equilibration_steps - done))
                bar.update(min(log_every, equilibration_steps - done))
        Stationary(atoms)
        if not atoms.pbc.any():
            ZeroRotation(atoms)
    if ensemble == "nve":
        dyn = VelocityVerlet(atoms, timestep=dt)
    else:
        dyn = Langevin(atoms, timestep=dt, temperature_K=temperature_k, friction=friction_per_fs / units.fs,
                       fixcm=False, rng=rng)

    rows = []
    n = len(atoms)

    def record():
        epot = atoms.get_potential_energy()
        ekin = atoms.get_kinetic_energy()
        rows.append((dyn.nsteps * timestep_fs / 1000.0, epot, ekin, epot + ekin, atoms.get_temperature()))

    traj_path, log_path, png_path = out / "trajectory.traj", out / "energies.csv", out / "energies.png"
    with atomic_path(traj_path) as tmp_traj:
        traj = Trajectory(str(tmp_traj), "w", atoms)

        def sample(done):
            record()
            traj.write()
            return rows[-1]

        sample(0)
        wall = run_in_chunks(steps, log_every, dyn.run, sample, f"MD {ensemble.upper()} {n} atoms", progress)
        traj.close()

    return summarise_run(rows, n, steps, wall, timestep_fs, ensemble, traj_path, log_path, png_path if plot else None)
