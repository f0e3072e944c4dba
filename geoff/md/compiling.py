"""Eager or compiled energy + forces for an MD run.

The compiled path (:class:`geoff.CompiledPotential`, torch.compile with inductor)
costs a compilation of each system size first (less when inductor's on-disk cache
already holds it) and then saves time on each step where it is faster, which
depends on the system size and the engine: small molecules and large periodic
boxes gain, systems around 1 500 atoms do not (the timings behind
:data:`COMPILE_SECONDS` and :func:`expected_speedup` are in benchmarks/README.md,
"MD paths" and "Measurements behind the code's defaults"). :func:`choose_path`
compiles when the steps of the run save more than the compilation costs;
``--compile`` / ``--no-compile`` decide instead.
"""

import os
import shutil
import time
from dataclasses import dataclass
from typing import Optional

#: seconds one compilation is expected to take with a cold cache (benchmarks/README.md)
COMPILE_SECONDS = 20.0


@dataclass(frozen=True)
class PathChoice:
    """``compiled`` or eager, and why (one phrase, for the MD summary)."""

    compiled: bool
    reason: str

    @property
    def name(self) -> str:
        return "compiled" if self.compiled else "eager"


def expected_speedup(n_atoms: int, engine: str = "ase") -> float:
    """Expected per-step speed-up of the compiled path over the default eager one (1.0: none expected).

    The values are the benchmarks' (benchmarks/README.md, "MD paths"): a gain up to 32 atoms
    (small molecules: every pair is an edge, no neighbour list; with ASE and over OpenMM's
    TorchForce) and from 6 000 atoms with ASE; none in between, nor for large systems in
    OpenMM (PythonForce, whose pair search is eager).
    """
    if n_atoms <= 32:
        return 3.5 if engine == "ase" else 2.5
    if n_atoms >= 6000 and engine == "ase":
        return 2.0
    return 1.0


def find_compiler() -> Optional[str]:
    """Path of the C++ compiler inductor would use ($CXX, else g++), or None."""
    return shutil.which(os.environ.get("CXX") or "g++")


def choose_path(steps: int, n_atoms: int, eager_step_s: Optional[float], engine: str = "ase",
                forced: Optional[bool] = None, compiler: Optional[str] = "auto",
                compile_seconds: Optional[float] = None) -> PathChoice:
    """Compile or not, for ``steps`` MD steps (equilibration included) of ``n_atoms`` atoms.

    Args:
        eager_step_s: measured seconds per eager energy + forces call (None: not measured).
        engine: "ase" or "openmm".
        forced: True (``--compile``), False (``--no-compile``) or None (decide).
        compiler: the C++ compiler's path, None when there is none; "auto" looks it up.
        compile_seconds: expected compilation time, s (default :data:`COMPILE_SECONDS`). On a busy machine
            the compilation is slower, but so is the measured eager call: the comparison stays fair.
    """
    if forced is False:
        return PathChoice(False, "--no-compile")
    if compiler == "auto":
        compiler = find_compiler()
    if compiler is None:
        what = os.environ.get("CXX") or "g++"
        return PathChoice(False, f"no C++ compiler ({what}) for torch.compile found; running eager")
    if forced:
        return PathChoice(True, "--compile")
    speedup = expected_speedup(n_atoms, engine)
    if speedup <= 1.0 or eager_step_s is None:
        return PathChoice(False, f"no speed-up measured at {n_atoms} atoms; --compile forces it")
    if compile_seconds is None:
        compile_seconds = COMPILE_SECONDS
    saving = steps * eager_step_s * (1.0 - 1.0 / speedup)
    if saving > compile_seconds:
        return PathChoice(True, f"{steps} steps save ~{saving:.0f} s, more than the ~{compile_seconds:.0f} s "
                          "compilation")
    return PathChoice(False, f"{steps} steps would save ~{saving:.0f} s, less than the ~{compile_seconds:.0f} s "
                      "compilation; --compile forces it")


def time_eager_call(calculator, atoms, repeats: int = 3, budget_s: float = 2.0) -> float:
    """Seconds per energy + forces call of an (eager) ASE calculator on ``atoms``: the fastest of up to
    ``repeats`` calls after one warm-up call, stopping early once ``budget_s`` is spent."""
    from ase.calculators.calculator import all_changes

    atoms = atoms.copy()
    calculator.calculate(atoms, ["energy", "forces"], all_changes)
    best = float("inf")
    spent = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        calculator.calculate(atoms, ["energy", "forces"], all_changes)
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
        if spent > budget_s:
            break
    return best
