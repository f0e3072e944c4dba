"""Training the committee's members, each in its own run folder, and building the committee.

A member run that finished (``summary.yaml`` and ``best.pt`` present) is used as it is; one that
was killed continues from its ``checkpoint.pt`` (:func:`geoff.training.resume`); one killed before
its first checkpoint starts again. Members differ in their seed: the validation split, the data
order and (from scratch) the initial weights.
"""

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import yaml

from ..errors import GeoffInputError
from ..io import build_committee, load_potential, save_potential
from ..threads import one_thread_worker, spawn_pool


def _optim(max_epochs: int, minutes: Optional[float]) -> Dict[str, Any]:
    return {"max_epochs": int(max_epochs), "max_time_minutes": minutes}


def read_model_section(path: Optional[str]) -> Dict[str, Any]:
    """The ``model:`` section of a YAML file (or the whole file when it has no such key); default: an
    EGNN with geoff's default sizes."""
    if path is None:
        return {"type": "egnn"}
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise GeoffInputError(f"cannot read the model config {path}: {exc}") from None
    section = doc.get("model", doc) if isinstance(doc, dict) else None
    if not isinstance(section, dict):
        raise GeoffInputError(f"{path}: give the model as a mapping (model: {{type: egnn, hidden: 32, ...}}).")
    check_model_section(section, path)
    return dict(section)


def check_model_section(section: Dict[str, Any], path) -> None:
    """The model type is known and every key is one of its settings (or one geoff train resolves)."""
    import inspect

    from ..models.registry import MODEL_TYPES
    from ..training.setup import RESOLVED_MODEL_KEYS

    kind = section.get("type", "egnn")
    if kind not in MODEL_TYPES or kind == "committee":
        raise GeoffInputError(f"{path}: unknown model type {kind!r}; choose one of "
                              f"{sorted(k for k in MODEL_TYPES if k != 'committee')}.")
    accepted = set(inspect.signature(MODEL_TYPES[kind].__init__).parameters) | set(RESOLVED_MODEL_KEYS)
    unknown = sorted(k for k in section if k not in accepted)
    if unknown:
        raise GeoffInputError(f"{path}: {unknown} are not settings of model type {kind!r}; its settings: "
                              f"{sorted(accepted - {'self'})}.")


def train_member(run_dir: Path, start: Optional[str], train_file: Path, seed: int, max_epochs: int,
                 minutes: Optional[float], model: Optional[Dict[str, Any]] = None, progress: bool = True) -> Path:
    """Train one member into ``run_dir`` and return its ``best.pt``: fine-tuned from ``start`` (a potential
    file), or from scratch with the ``model`` section when ``start`` is None."""
    from ..training import finetune, resume, train

    run_dir = Path(run_dir)
    best = run_dir / "best.pt"
    if (run_dir / "summary.yaml").exists() and best.exists():
        return best
    if (run_dir / "checkpoint.pt").exists():
        resume(run_dir, {"progress": progress})
        return best
    common = {"run_dir": str(run_dir), "seed": int(seed), "overwrite": True, "progress": progress, "plots": False}
    if start is not None:
        finetune(start, str(train_file), {**common, "optim": _optim(max_epochs, minutes),
                                          "data": {"valid_fraction": 0.1}})
    else:
        train({**common, "model": dict(model or {"type": "egnn"}),
               "data": {"train": str(train_file), "valid_fraction": 0.1},
               "optim": {**_optim(max_epochs, minutes), "warmup_steps": 20}})
    return best


def _train_member_job(kwargs: Dict[str, Any]) -> str:
    return str(train_member(**kwargs))


def train_members(jobs: Sequence[Dict[str, Any]], processes: int = 1) -> List[Path]:
    """Train several members (each ``jobs[k]`` holds :func:`train_member`'s arguments) and return
    their ``best.pt`` files in order. ``processes`` > 1 trains that many members at once, each in
    its own process with one torch thread: training a small molecule is fastest with one thread per
    process (two intra-op threads are several times slower, see benchmarks/results/training-throughput.md),
    so on a 2-core machine two processes train two members in the time of one."""
    processes = max(1, min(int(processes), len(jobs)))
    if processes == 1:
        return [Path(train_member(**job)) for job in jobs]
    quiet = [{**job, "progress": False} for job in jobs]
    with spawn_pool(processes, one_thread_worker, (os.getpid(),)) as pool:
        return [Path(p) for p in pool.map(_train_member_job, quiet)]


def member_summary(run_dir: Path) -> Dict[str, Any]:
    path = Path(run_dir) / "summary.yaml"
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    return {k: data[k] for k in ("epochs", "train_time_s", "valid_forces_mae_mev_per_a",
                                 "valid_energy_mae_mev_per_atom", "stopped_by") if k in data}


def save_members(committee_or_path, folder: Path) -> List[str]:
    """Each member of a committee file as its own potential file in ``folder`` (to fine-tune it)."""
    committee = load_potential(committee_or_path) if not hasattr(committee_or_path, "members") else committee_or_path
    paths = []
    for k, member in enumerate(committee.members):
        path = Path(folder) / f"member-{k}.pt"
        if not path.exists():
            save_potential(member, path, metadata=dict(getattr(member, "metadata", {}) or {}))
        paths.append(str(path))
    return paths


def write_committee(members: List[Path], path: Path, metadata: Dict[str, Any]) -> Path:
    """The committee of ``members`` (potential files) saved (atomically) to ``path``."""
    return save_potential(build_committee([str(m) for m in members]), path, metadata=metadata)
