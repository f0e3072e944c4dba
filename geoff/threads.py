"""How many threads torch uses for one energy + forces call (intra-op parallelism).

torch's default is one thread per core. For a small molecule a call is a few
hundred tiny operators, and splitting each across threads costs more than it
gains; on a machine where other jobs run, threads that wait for each other at
every operator are much slower still, at any size (benchmarks/README.md,
"Measurements behind the code's defaults"). The policy here: an
explicit request wins, then ``OMP_NUM_THREADS`` when set, else one thread below
:data:`MIN_ATOMS_PER_EXTRA_THREAD` atoms and otherwise one thread per core that
other jobs leave idle (1-minute load average), so a busy machine gets one thread
at any size.
"""

import os
import threading
import time
from dataclasses import dataclass
from typing import Mapping, Optional

from .errors import GeoffInputError

#: systems smaller than this always get one thread (a small molecule gains nothing from a second one)
MIN_ATOMS_PER_EXTRA_THREAD = 1000


@dataclass(frozen=True)
class ThreadChoice:
    """``threads`` for torch and why (one phrase, for the MD summary)."""

    threads: int
    reason: str


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def idle_cores(cores: int) -> int:
    """Cores the 1-minute load average leaves idle (at least 1)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cores
    return max(1, min(cores, int(cores - load + 0.5)))


def choose_threads(n_atoms: int, requested: Optional[int] = None, environ: Optional[Mapping[str, str]] = None,
                   cores: Optional[int] = None, idle: Optional[int] = None) -> ThreadChoice:
    """The thread count for a system of ``n_atoms`` atoms.

    ``requested`` (e.g. ``--threads``) wins; then ``OMP_NUM_THREADS`` from ``environ``
    (default ``os.environ``); else one thread below :data:`MIN_ATOMS_PER_EXTRA_THREAD`
    atoms, one per idle core above (``cores`` and ``idle`` default to this machine's).
    """
    if requested is not None:
        if int(requested) != requested or requested < 1:
            raise GeoffInputError(f"the thread count must be a whole number ≥ 1, got {requested!r}.")
        return ThreadChoice(int(requested), "as requested")
    environ = os.environ if environ is None else environ
    value = environ.get("OMP_NUM_THREADS", "").strip()
    if value:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n < 1:
            raise GeoffInputError(f"OMP_NUM_THREADS={value!r} is not a whole number ≥ 1; set it to one "
                                  "(e.g. OMP_NUM_THREADS=1) or unset it.")
        return ThreadChoice(n, "OMP_NUM_THREADS")
    if n_atoms < MIN_ATOMS_PER_EXTRA_THREAD:
        return ThreadChoice(1, f"{n_atoms} atoms: one thread below {MIN_ATOMS_PER_EXTRA_THREAD}")
    cores = available_cores() if cores is None else cores
    idle = idle_cores(cores) if idle is None else idle
    if idle < cores:
        return ThreadChoice(idle, f"{n_atoms} atoms, {idle} of {cores} cores idle")
    return ThreadChoice(cores, f"{n_atoms} atoms, one per core")


def apply_threads(choice: ThreadChoice) -> ThreadChoice:
    """Set torch's intra-op thread count to ``choice.threads``; returns ``choice``."""
    import torch

    torch.set_num_threads(choice.threads)
    return choice


def _exit_with_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(0.5)


def exit_with_parent(parent: int) -> None:
    """In a worker process: exit as soon as the process ``parent`` is gone (killed, even by SIGKILL),
    so that no orphan goes on computing or writing into a run that a restart resumes."""
    threading.Thread(target=_exit_with_parent, args=(int(parent),), daemon=True).start()


def one_thread_worker(parent: int) -> None:
    """Initializer of a worker process that runs small-molecule torch work (MD, training): one torch
    thread, and exit with ``parent``."""
    import torch

    torch.set_num_threads(1)
    exit_with_parent(parent)


def spawn_pool(processes: int, initializer, initargs=()):
    """A ``ProcessPoolExecutor`` of ``processes`` workers started with *spawn* (a fork of a process
    that already runs torch's or OpenMP's threads can hang), each run through ``initializer``."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(int(processes), mp_context=multiprocessing.get_context("spawn"),
                               initializer=initializer, initargs=tuple(initargs))
