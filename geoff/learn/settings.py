"""What an active-learning run is asked to do (:class:`LearnSettings`) and the checks made before
anything runs: every mistake that can be found without MD, DFT or training is a
:class:`geoff.errors.GeoffInputError` naming the option and the fix."""

import hashlib
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..errors import GeoffInputError


@dataclass
class LearnSettings:
    """Settings of ``geoff learn`` (units: K, fs, eV/Å, minutes, hours).

    Start: ``potential`` (a potential file or shipped name; a committee file is used as it is, a
    single potential becomes a committee by fine-tuning ``committee_size`` copies with different
    seeds on the first labels) or ``from_scratch`` (members trained from scratch, model from
    ``model_config``: a YAML file holding a ``model:`` section as ``geoff train`` reads it).

    Exploration: Langevin MD of ``steps`` steps at each of ``temperatures`` from each start
    structure, a frame checked every ``sample_every`` steps. A frame whose max atomic force std
    (committee spread) exceeds ``threshold`` and stays at or below ``upper_bound`` is a candidate;
    beyond ``upper_bound`` the trajectory stops (the geometry is no longer trusted). At most
    ``max_per_iteration`` candidates are labelled per iteration, at least ``min_spacing`` steps apart
    within a trajectory; a start structure (step 0) is a candidate above the threshold even beyond the
    upper bound (it is the user's, not the potential's). ``initial_labels``: frames labelled before
    there is a committee (single potential or from scratch): the start structures, randomly
    displaced copies of them, and (half of them, when the potential can run MD on the structures)
    frames spread over MD with the start potential.

    Stop: an exploration in which every trajectory ran all its steps below ``threshold``; or
    ``budget_labels`` labels; or ``max_hours`` of wall time (checked between iterations); or
    ``max_iterations``.
    """

    structures: List[str]
    dft: str
    run_dir: str
    potential: Optional[str] = None
    from_scratch: bool = False
    model_config: Optional[str] = None
    temperatures: List[float] = field(default_factory=lambda: [300.0])
    steps: int = 2000
    timestep_fs: float = 0.5
    friction_per_fs: float = 0.01
    sample_every: int = 10
    threshold: float = 0.05
    upper_bound: float = 0.5
    max_per_iteration: int = 10
    min_spacing: int = 50
    initial_labels: Optional[int] = None
    budget_labels: int = 200
    max_hours: Optional[float] = None
    max_iterations: Optional[int] = None
    committee_size: int = 4
    train_minutes: Optional[float] = 3.0
    max_epochs: int = 200
    test_frames: int = 10
    charge: int = 0
    spin: int = 0
    seed: int = 0
    workers: Optional[int] = None
    threads: Optional[int] = None

    @property
    def n_initial(self) -> int:
        return int(self.initial_labels if self.initial_labels is not None else self.max_per_iteration)

    def signature(self) -> Dict[str, Any]:
        """What makes two runs the same run: every setting, with paths made absolute and the start
        structures' and model config's contents hashed (a changed file is another run)."""
        sig = asdict(self)
        sig.pop("workers"), sig.pop("threads")  # how labels and members are computed, not which
        sig["structures"] = [{"path": str(Path(p).resolve()), "sha256": _sha256(p)} for p in self.structures]
        sig["run_dir"] = str(Path(self.run_dir).resolve())
        if self.potential is not None:
            sig["potential"] = _potential_identity(self.potential)
        if self.model_config is not None:
            sig["model_config"] = {"path": str(Path(self.model_config).resolve()), "sha256": _sha256(self.model_config)}
        sig["temperatures"] = [float(t) for t in self.temperatures]
        return sig


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _potential_identity(name_or_path: str) -> Dict[str, str]:
    from ..io.potential_file import resolve_potential_path

    path = resolve_potential_path(name_or_path)
    return {"name": str(name_or_path), "path": str(Path(path).resolve()), "sha256": _sha256(path)}


def _positive(name: str, value, integer: bool = False, zero: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
        and (value >= 0 if zero else value > 0) and (not integer or float(value).is_integer())
    if not ok:
        kind = "a whole number" if integer else "a number"
        raise GeoffInputError(f"{name} must be {kind} {'≥ 0' if zero else '> 0'}, got {value!r}.")


def check_settings(s: LearnSettings) -> None:
    """Everything about the options that can be checked at once (GeoffInputError)."""
    if s.from_scratch and s.potential is not None:
        raise GeoffInputError(f"give a potential to start from ({s.potential!r}) or --from-scratch, not both.")
    if not s.from_scratch and s.potential is None:
        raise GeoffInputError("give a potential to start from (a .pt file or a shipped name such as ethanol-egnn), "
                              "or --from-scratch to train the committee from the first labels.")
    if s.model_config is not None and not s.from_scratch:
        raise GeoffInputError("--model-config sets the model of a run --from-scratch; a run from a potential keeps "
                              "that potential's model. Drop one of them.")
    if s.model_config is not None and not Path(s.model_config).is_file():
        raise GeoffInputError(f"no model config file {s.model_config!r}.")
    if not s.structures:
        raise GeoffInputError("give at least one start structure file.")
    for p in s.structures:
        if not Path(p).is_file():
            raise GeoffInputError(f"no start structure file {p!r}. Give a file ase.io reads (extended XYZ, ...).")
    if not s.temperatures:
        raise GeoffInputError("give at least one --temperature (K).")
    for t in s.temperatures:
        _positive("--temperature", t)
    _positive("--steps", s.steps, integer=True)
    _positive("--timestep", s.timestep_fs)
    _positive("--friction", s.friction_per_fs)
    _positive("--sample-every", s.sample_every, integer=True)
    if s.sample_every > s.steps:
        raise GeoffInputError(f"--sample-every ({s.sample_every} steps) is longer than the exploration run "
                              f"(--steps {s.steps}); sample at least once per run.")
    _positive("--threshold", s.threshold)
    _positive("--upper-bound", s.upper_bound)
    if s.upper_bound <= s.threshold:
        raise GeoffInputError(f"--upper-bound ({s.upper_bound} eV/Å) must be above --threshold ({s.threshold} eV/Å): "
                              "frames between the two are labelled, beyond the upper bound a trajectory stops. "
                              "Did you swap them?")
    _positive("--max-per-iteration", s.max_per_iteration, integer=True)
    _positive("--min-spacing", s.min_spacing, integer=True, zero=True)
    if s.initial_labels is not None:
        _positive("--initial-labels", s.initial_labels, integer=True)
    _positive("--budget-labels", s.budget_labels, integer=True)
    if s.max_hours is not None:
        _positive("--max-hours", s.max_hours)
    if s.max_iterations is not None:
        _positive("--max-iterations", s.max_iterations, integer=True)
    if s.committee_size < 2 or int(s.committee_size) != s.committee_size:
        raise GeoffInputError(f"--committee-size must be a whole number ≥ 2 (a spread needs two members), "
                              f"got {s.committee_size!r}.")
    if s.train_minutes is not None:
        _positive("--train-minutes", s.train_minutes)
    _positive("--max-epochs", s.max_epochs, integer=True)
    _positive("--test-frames", s.test_frames, integer=True, zero=True)
    if s.n_initial < 2:
        raise GeoffInputError(f"the first committee is trained on the initial labels and needs at least 2 (one for "
                              f"validation), got --initial-labels {s.n_initial}.")
    if s.n_initial > s.budget_labels:
        raise GeoffInputError(f"--initial-labels ({s.n_initial}) exceeds --budget-labels ({s.budget_labels}).")
    if os.path.exists(s.run_dir) and not os.path.isdir(s.run_dir):
        raise GeoffInputError(f"--run-dir {s.run_dir!r} is a file, not a folder; choose another --run-dir.")
