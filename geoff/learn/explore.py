"""Exploration: Langevin MD driven by the committee's mean forces, watching its spread.

Each exploration run starts from a start structure with Maxwell–Boltzmann velocities at its
temperature and is checked every ``sample_every`` steps by the MD health checks of
:mod:`geoff.md.health` (a broken bond, a collapse, a runaway temperature stop it) and by the
committee: a frame whose max atomic force std exceeds ``upper_bound`` stops the run too (the
potential is guessing there; MD beyond it explores artefacts, not chemistry). The start structure
(frame 0) is exempt: it is the user's, physical however unsure the committee is about it. The
frames checked before the stop are the candidates for labelling.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
from ase import units
from ase.md.langevin import Langevin

from ..ase.md import thermalise
from ..io import atomic_path
from ..md.health import HealthMonitor, MDFailure, Snapshot, check_md_input
from ..md.loop import run_in_chunks
from ..threads import one_thread_worker, spawn_pool
from ..units import FS_PER_PS


@dataclass
class Exploration:
    """One exploration run: ``frames`` (ase.Atoms, positions Å; ``info``: md_step, md_time_ps,
    md_temperature_K, and with a committee max_force_std in eV/Å), ``completed`` (all steps ran)
    ``stop_reason`` (why it stopped early, else None) and ``beyond``: when the upper bound stopped it, the
    frame that crossed it (a structure the health checks passed, with its max_force_std)."""

    frames: list
    completed: bool
    stop_reason: Optional[str]
    steps_run: int
    beyond: Optional[object] = None   # the frame that stopped the run at the upper bound (health checks passed)

    @property
    def max_force_std(self) -> np.ndarray:
        return frame_spreads(self.frames)


class _UncertaintyMonitor:
    """The MD health checks plus the committee's upper bound on the max atomic force std."""

    def __init__(self, health: HealthMonitor, upper_bound: float, spread):
        self.health, self.upper_bound, self.spread = health, float(upper_bound), spread
        self.crossed: Optional[Snapshot] = None

    def _bound(self, snap: Snapshot) -> Optional[str]:
        std = self.spread()
        if np.isfinite(std) and std > self.upper_bound:
            self.crossed = snap
            return (f"the committee's max atomic force std is {std:.3f} eV/Å, above the upper bound "
                    f"{self.upper_bound:g} eV/Å.")
        return None

    def start(self, snap: Snapshot) -> Optional[str]:
        return self.health.start(snap)  # the start structure is the user's: trusted however unsure the committee

    def check(self, snap: Snapshot) -> Optional[str]:
        return self.health.check(snap) or self._bound(snap)


def explore(atoms, calculator, temperature_k: float, steps: int, timestep_fs: float, sample_every: int,
            friction_per_fs: float, upper_bound: float, seed: int, desc: str = "explore",
            progress: bool = True) -> Exploration:
    """Run Langevin MD at ``temperature_k`` with ``calculator`` (a :class:`geoff.GeoffCalculator`; with a
    committee its ``max_force_std`` is watched) for ``steps`` steps of ``timestep_fs``; check and keep a
    frame every ``sample_every`` steps (frame 0 is the start). Stops early as the module says."""
    check_md_input(atoms, getattr(calculator, "potential", None))
    atoms = atoms.copy()
    atoms.calc = calculator
    rng = np.random.default_rng(seed)
    thermalise(atoms, temperature_k, rng)
    dyn = Langevin(atoms, timestep=timestep_fs * units.fs, temperature_K=temperature_k,
                   friction=friction_per_fs / units.fs, fixcm=False, rng=rng)
    committee = getattr(calculator, "members", None) is not None
    numbers, cell, pbc = atoms.numbers.copy(), atoms.cell[:].copy(), atoms.pbc.copy()
    last = {"std": float("nan")}

    def observe(done: int) -> Snapshot:
        epot = atoms.get_potential_energy()
        ekin = atoms.get_kinetic_energy()
        forces = atoms.get_forces()
        last["std"] = float(calculator.results["max_force_std"]) if committee else float("nan")
        t = done * timestep_fs / FS_PER_PS
        return Snapshot(done, t, atoms.positions.copy(), (t, epot, ekin, epot + ekin, atoms.get_temperature()), forces)

    frames: List = []

    def frame_of(snap: Snapshot):
        from ase import Atoms

        frame = Atoms(numbers=numbers, positions=snap.positions, cell=cell, pbc=pbc)
        frame.info.update(md_step=int(snap.step), md_time_ps=round(float(snap.time_ps), 6),
                          md_temperature_K=float(temperature_k))
        if committee:
            frame.info["max_force_std"] = last["std"]
        return frame

    def commit(snap: Snapshot) -> None:
        frames.append(frame_of(snap))

    health = HealthMonitor(numbers, cell, pbc, "nvt", temperature_k, 3 * len(atoms))
    monitor = _UncertaintyMonitor(health, upper_bound, lambda: last["std"])
    try:
        run_in_chunks(steps, sample_every, dyn.run, observe, commit, desc, progress, monitor=monitor,
                      steps_done=lambda: dyn.nsteps, timestep_fs=timestep_fs, phase="exploration")
    except MDFailure as exc:
        beyond = frame_of(monitor.crossed) if monitor.crossed is not None else None
        return Exploration(frames, False, exc.problem, exc.step, beyond)
    return Exploration(frames, True, None, steps)


_CALCULATORS: Dict[str, Any] = {}


def _calculator(potential: str):
    """One calculator per potential file (a file rewritten since is loaded again)."""
    stat = os.stat(potential)
    key = f"{os.path.abspath(potential)}:{stat.st_mtime_ns}:{stat.st_size}"
    if key not in _CALCULATORS:
        from ..ase import GeoffCalculator

        _CALCULATORS.clear()
        _CALCULATORS[key] = GeoffCalculator(potential)
    return _CALCULATORS[key]


def _run_job(job: Dict[str, Any]) -> Exploration:
    job = dict(job)
    return explore(job.pop("atoms"), _calculator(job.pop("potential")), **job)


def _indexed_job(item: Tuple[int, Dict[str, Any]]) -> Tuple[int, Exploration]:
    return item[0], _run_job(item[1])


def explore_many(jobs: Sequence[Dict[str, Any]], processes: int = 1) -> Iterator[Tuple[int, Exploration]]:
    """Run several exploration runs and yield ``(index, Exploration)`` as each finishes. Each job holds
    :func:`explore`'s arguments with ``potential`` (a potential file's path) in place of the calculator.
    ``processes`` > 1 runs that many at once, each in its own process with one torch thread (MD of a
    small molecule uses one core; the runs are independent and seeded, so the frames do not depend on
    how many run at once)."""
    processes = max(1, min(int(processes), len(jobs)))
    if processes == 1:
        for k, job in enumerate(jobs):
            yield k, _run_job(job)
        return
    from concurrent.futures import FIRST_COMPLETED, wait

    pool = spawn_pool(processes, one_thread_worker, (os.getpid(),))
    try:
        pending = {pool.submit(_indexed_job, (k, {**job, "progress": False})) for k, job in enumerate(jobs)}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(finished, key=lambda f: f.result()[0]):
                yield fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def frame_spreads(frames) -> np.ndarray:
    """[F] max atomic force std of each frame (eV/Å; NaN where no committee measured it)."""
    return np.array([float(a.info.get("max_force_std", np.nan)) for a in frames], dtype=float)


def write_frames(path: Path, frames) -> None:
    """Frames as extended XYZ, written atomically (an empty file for none)."""
    from ase.io import write

    with atomic_path(path) as tmp:
        if frames:
            write(str(tmp), list(frames), format="extxyz")
        else:
            tmp.write_text("")


def read_frames(path: Path) -> list:
    from ase.io import read

    if not path.exists() or path.stat().st_size == 0:
        return []
    return read(str(path), index=":", format="extxyz")
