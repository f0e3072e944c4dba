"""The MD loop every engine runs: the output folder, chunks of steps with a health check of each logged
frame, Ctrl-C handling, and the frame a failed run leaves behind."""

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional, Tuple

import numpy as np

from ..errors import GeoffError, GeoffInputError
from ..io import atomic_path
from ..units import FS_PER_PS
from .health import HealthMonitor, MDFailure, MDInterrupted, Snapshot, non_finite


#: file names an MD run writes into its output folder
FAILED_FRAME = "failed-frame.xyz"
RESULT_FILES = ("trajectory.traj", "trajectory.dcd", "trajectory.pdb", "energies.csv", "energies.png", FAILED_FRAME)


def prepare_output_dir(output_dir, overwrite: bool = True) -> Path:
    """Create ``output_dir`` (parents too) and return it.

    With ``overwrite`` False, refuse a folder that already holds an MD run's results (see
    :data:`RESULT_FILES`), naming a free folder to use instead. With ``overwrite``, a stale
    ``failed-frame.xyz`` of an earlier run is removed (the other files are replaced at the end).
    """
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise GeoffInputError(f"the output {out} is a file, not a folder; name a folder for the MD results.")
    existing = [name for name in RESULT_FILES if (out / name).exists()]
    if existing and not overwrite:
        k = 2
        while Path(f"{out}-{k}").exists():
            k += 1
        raise GeoffInputError(
            f"the output folder {out} already holds the results of an earlier run ({', '.join(existing)}); "
            f"choose a new folder (e.g. --output {out}-{k}) or pass --overwrite to replace them.")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GeoffInputError(f"cannot create the output folder {out}: {exc.strerror or exc}. "
                              "Choose a folder you can write to (--output).") from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise GeoffInputError(f"the output folder {out} is not writable; choose a folder you can write to (--output).")
    if overwrite and (out / FAILED_FRAME).exists():
        (out / FAILED_FRAME).unlink()
    return out


@contextmanager
def stop_on_sigint() -> Iterator[dict]:
    """While active, the first Ctrl-C sets ``state["stop"]`` (the MD loop stops cleanly at the end of
    the chunk in progress); a second one raises KeyboardInterrupt at once."""
    state = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield state
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:
        previous = signal.default_int_handler

    def handler(signum, frame):
        state["stop"] = True
        signal.signal(signal.SIGINT, previous)
        print("\nCtrl-C: stopping after the steps in progress and keeping the files (Ctrl-C again to stop now).",
              file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)


def write_failed_frame(path: Path, numbers, cell, pbc, snap: Snapshot) -> Path:
    """The frame at which an MD run failed, as extended XYZ (positions Å; energy eV and forces eV/Å when known;
    step and time_ps in the comment line)."""
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    atoms = Atoms(numbers=numbers, positions=snap.positions, cell=cell, pbc=pbc)
    atoms.info.update(step=int(snap.step), time_ps=float(snap.time_ps))
    results = {}
    if snap.row is not None:
        results["energy"] = float(snap.row[1])
        atoms.info["temperature_K"] = float(snap.row[4])
    if snap.forces is not None:
        results["forces"] = np.asarray(snap.forces, dtype=float)
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    with atomic_path(path) as tmp:
        write(str(tmp), atoms, format="extxyz")
    return path


def run_in_chunks(steps: int, log_every: int, advance: Callable[[int], None], observe: Callable[[int], Snapshot],
                  commit: Optional[Callable[[Snapshot], None]], desc: str, progress: bool = True, *,
                  monitor: Optional[HealthMonitor] = None, steps_done: Optional[Callable[[], int]] = None,
                  salvage: Optional[Callable[[int], Optional[Snapshot]]] = None,
                  on_failure: Optional[Callable[[Snapshot], None]] = None, timestep_fs: float = 0.0,
                  phase: str = "MD") -> float:
    """Advance MD ``steps`` steps, ``log_every`` at a time, checking each logged frame; returns the wall time, s.

    ``advance(n)`` runs n steps; ``observe(done)`` returns the :class:`Snapshot` after ``done`` steps
    (frame 0 first); ``commit(snapshot)`` records a frame that passed the checks (energy row,
    trajectory frame). ``monitor`` (a :class:`HealthMonitor`) judges each frame; without one only
    non-finite values stop the run. When the engine itself fails inside a chunk, ``steps_done()``
    gives the exact step and ``salvage(step)`` the positions there. The frame that failed goes to
    ``on_failure(snapshot)`` and is not committed.

    Raises :class:`MDFailure` (with ``wall_s``) when a frame is bad or the engine fails, and
    :class:`MDInterrupted` on Ctrl-C (the first Ctrl-C stops after the chunk in progress);
    everything committed before stays committed.
    """
    from tqdm.auto import tqdm

    if log_every < 1:
        raise GeoffInputError(f"log_every must be ≥ 1 step, got {log_every}.")
    if monitor is None:
        monitor = _FiniteOnly()
    bar = tqdm(total=steps, desc=desc, unit="step", disable=not progress)
    t0 = time.perf_counter()
    done = 0

    def fail(snap: Optional[Snapshot], step: int, problem: str, cause=None):
        bar.close()
        if snap is not None and on_failure is not None:
            on_failure(snap)
        exc = MDFailure(step, step * timestep_fs / FS_PER_PS, problem, phase)
        exc.wall_s = time.perf_counter() - t0
        exc.__cause__ = cause
        return exc

    def engine_failed(exc: BaseException, step: Optional[int] = None):
        if step is None:  # the step the engine was working on
            step = (steps_done() + 1) if steps_done is not None else done + 1
        snap = None
        if salvage is not None:
            try:
                snap = salvage(step)
            except Exception:  # the engine may not even give positions any more
                snap = None
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = first.split(" Check the structure")[0]  # the calculator's advice is about input files
        return fail(snap, step, f"the engine stopped ({type(exc).__name__}: {first}).", exc)

    def interrupted(step: int):
        bar.close()
        exc = MDInterrupted(step, step * timestep_fs / FS_PER_PS, phase)
        exc.wall_s = time.perf_counter() - t0
        return exc

    with stop_on_sigint() as sigint:
        try:
            snap = observe(0)
        except Exception as exc:
            raise engine_failed(exc, 0) from exc
        problem = monitor.start(snap)
        if problem:
            raise fail(snap, 0, problem)
        if commit is not None:
            commit(snap)
        while done < steps:
            if sigint["stop"]:
                raise interrupted(done)
            chunk = min(log_every, steps - done)
            try:
                advance(chunk)
                snap = observe(done + chunk)
            except KeyboardInterrupt:
                raise interrupted(steps_done() if steps_done is not None else done) from None
            except Exception as exc:
                raise engine_failed(exc) from exc
            done += chunk
            problem = monitor.check(snap)
            if problem:
                raise fail(snap, done, problem)
            if commit is not None:
                commit(snap)
            bar.update(chunk)
            if snap.row is not None:
                bar.set_postfix(T=f"{snap.row[4]:.0f}K", Etot=f"{snap.row[3]:.4f}")
    wall = time.perf_counter() - t0
    bar.close()
    return wall


def run_recorded(*args, **kwargs) -> Tuple[float, Optional[GeoffError]]:
    """:func:`run_in_chunks` (same arguments) for the recorded part of a run: returns (wall time s,
    None), or on a failure or Ctrl-C (its wall time, the :class:`MDFailure` / :class:`MDInterrupted`)
    instead of raising it, so that the caller closes its trajectory first; :func:`geoff.md.log.finish_run`
    then writes the log of the frames committed so far and raises it."""
    try:
        return run_in_chunks(*args, **kwargs), None
    except (MDFailure, MDInterrupted) as exc:
        return exc.wall_s, exc


class _FiniteOnly:
    """The checks made without a health monitor: finite values only."""

    def start(self, snap: Snapshot) -> Optional[str]:
        return self.check(snap)

    def check(self, snap: Snapshot) -> Optional[str]:
        return non_finite(snap)
