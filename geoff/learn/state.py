"""The state file of an active-learning run (``learn.json`` in the run folder).

It records the command (:meth:`LearnSettings.signature`), the iteration and the stage in
progress, what each finished stage found, and the wall time spent. It is rewritten whole
through a temporary file and a rename (:func:`geoff.io.atomic_path`) after every stage, so a
kill leaves the previous or the next version, never a torn one. Every stage writes its own
results before the state moves past it, and each stage is safe to run again: the MD of an
exploration is redone, labels are appended one by one and skipped when present, training
resumes from its checkpoint.
"""

import json
import shutil
import time
from pathlib import Path
from typing import Any, Dict, Optional

from ..errors import GeoffInputError
from ..io import atomic_path

STATE_FILE = "learn.json"
FORMAT = "geoff-learn-state"
#: what a run folder of geoff learn holds (``--overwrite`` deletes these and nothing else)
RUN_ENTRIES = (STATE_FILE, "start.xyz", "labels.xyz", "committee.pt", "report.md", "report.json", "report.png",
               "MODEL_CARD.md", "base", "test")
ITERATION_PREFIX = "iter-"
#: settings a run may change when it is continued (before it finished): its budgets
BUDGET_KEYS = ("budget_labels", "max_hours", "max_iterations")


class LearnState:
    """The state of one run; ``data`` is the JSON document, :meth:`save` writes it atomically."""

    def __init__(self, run_dir: Path, data: Dict[str, Any]):
        self.run_dir = Path(run_dir)
        self.data = data
        self._since = time.monotonic()

    @property
    def path(self) -> Path:
        return self.run_dir / STATE_FILE

    @property
    def stage(self) -> str:
        return self.data["stage"]

    @property
    def iteration(self) -> int:
        return int(self.data["iteration"])

    def record(self, i: Optional[int] = None) -> Dict[str, Any]:
        """The record of iteration ``i`` (default: the current one), created empty when new."""
        i = self.iteration if i is None else i
        its = self.data["iterations"]
        while len(its) <= i:
            its.append({"iteration": len(its)})
        return its[i]

    def elapsed_s(self) -> float:
        return float(self.data["elapsed_s"]) + (time.monotonic() - self._since)

    def move(self, stage: str, iteration: Optional[int] = None) -> None:
        """Go to ``stage`` (of ``iteration``) and save."""
        self.data["stage"] = stage
        if iteration is not None:
            self.data["iteration"] = int(iteration)
        self.save()

    def save(self) -> None:
        now = time.monotonic()
        self.data["elapsed_s"] = float(self.data["elapsed_s"]) + (now - self._since)
        self._since = now
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp:
            tmp.write_text(json.dumps(self.data, indent=1, sort_keys=False, default=_plain))


def _plain(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in {STATE_FILE}")


def _differences(old: Dict[str, Any], new: Dict[str, Any]):
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k) != new.get(k)]


def open_state(run_dir, signature: Dict[str, Any], overwrite: bool = False) -> LearnState:
    """The run's state: a new one for an empty (or absent) folder, the stored one when the folder holds
    a run of the same command (resume). A run of another command is refused unless ``overwrite``,
    which deletes that run's files first (only those geoff learn writes)."""
    from ..io.atomic import remove_stale_temp_files

    run_dir = Path(run_dir)
    path = run_dir / STATE_FILE
    if path.exists() and overwrite:
        clear_run_dir(run_dir)
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise GeoffInputError(f"{path} is unreadable ({exc}); move the run folder away or give --overwrite "
                                  "to start afresh in it.") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise GeoffInputError(f"{path} is not the state file of a geoff learn run; choose another --run-dir.")
        changed = _differences(data.get("command", {}), signature)
        budgets = [k for k in changed if k in BUDGET_KEYS]
        if budgets and len(budgets) == len(changed) and data.get("stage") not in ("test", "report", "done"):
            data["command"] = signature  # a new budget for a run in progress: checked after each iteration
        elif changed:
            names = ", ".join(changed)
            finished = " (a finished run's budgets cannot change)" if budgets and len(budgets) == len(changed) else ""
            raise GeoffInputError(
                f"the run folder {run_dir} holds a geoff learn run of another command (different: {names}){finished}. "
                f"Re-run that command to continue it, choose a new --run-dir, or give --overwrite to delete that run "
                "and start afresh.")
        remove_stale_temp_files(run_dir)
        state = LearnState(run_dir, data)
        if budgets:
            state.save()
        return state
    if run_dir.is_dir() and not overwrite:
        foreign = [p.name for p in run_dir.iterdir() if p.name in RUN_ENTRIES or p.name.startswith(ITERATION_PREFIX)]
        if foreign:
            raise GeoffInputError(f"the run folder {run_dir} holds files of a geoff learn run ({', '.join(sorted(foreign))}) "
                                  f"but no {STATE_FILE}; choose a new --run-dir, or give --overwrite to delete them.")
    if overwrite and run_dir.is_dir():
        clear_run_dir(run_dir)
    data = {"format": FORMAT, "version": 1, "command": signature, "stage": "start", "iteration": 0,
            "iterations": [], "elapsed_s": 0.0, "labels_total": 0, "stop_reason": None, "test": None}
    state = LearnState(run_dir, data)
    state.save()
    return state


def clear_run_dir(run_dir: Path) -> None:
    """Delete what geoff learn wrote into ``run_dir`` (and nothing else)."""
    if not run_dir.is_dir():
        return
    for entry in run_dir.iterdir():
        if entry.name in RUN_ENTRIES or entry.name.startswith(ITERATION_PREFIX) or entry.name.startswith(f".{STATE_FILE}"):
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()
