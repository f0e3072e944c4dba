"""The active-learning loop of ``geoff learn``.

Each iteration i (folder ``iter-NNN`` of the run folder) goes through five stages:

1. explore   — Langevin MD with the current committee (:func:`geoff.learn.explore.explore`) from
               every start structure at every temperature, and from every frame labelled in the
               previous iteration (at one temperature each, in turn): configurations DFT has seen,
               spread over what the last exploration reached, so that a committee still unsure near
               the start structures explores in several directions at once. Frames checked every
               ``sample_every`` steps; ``explore/runs.json`` lists the runs, ``run-KK.xyz`` +
               ``run-KK.json`` hold each one's frames and outcome.
2. select    — the frames to label (:mod:`geoff.learn.select`), never one labelled before →
               ``selected.xyz``; an exploration in which every run finished below the threshold ends
               the loop (converged).
3. label     — DFT (:func:`geoff.dft.label_structures`, append-only) → ``labels.xyz``; the committee's
               error on these new labels before it trains on them (the "true error"); all labels so far
               → ``train.xyz`` and the run folder's ``labels.xyz``.
4. train     — every member fine-tuned on all labels so far → ``member-K/``.
5. committee — the members → ``committee.pt`` (and the run folder's ``committee.pt``).

Before the first committee exists (start from one potential, or from scratch) iteration 0 labels
``initial_labels`` frames: the start structures, randomly displaced copies of them (half of the
frames; all of them when no potential can run MD on these elements), and frames spread evenly
over MD with the start potential (the other half). A potential new to the molecule may run its MD
far from the molecule's equilibrium; the displaced copies make sure the first committee knows the
user's structures. The members are then fine-tuned from the potential (or trained from scratch).

After the loop: ``test/`` (fresh MD with the final committee from the start structures, other
seeds, stopped only by the MD health checks; ``test_frames`` frames spread over it labelled; the
final errors) and the report.

The state file (:mod:`geoff.learn.state`) records the stage; each stage can run again after a
kill without losing or recomputing a label.
"""

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ..errors import GeoffError, GeoffInputError
from .accuracy import errors_against_labels
from .explore import explore, explore_many, frame_spreads, read_frames, write_frames
from .members import member_summary, read_model_section, save_members, train_members, write_committee
from .select import select_spread, select_uncertain
from .settings import LearnSettings, check_settings
from .state import LearnState, open_state

#: standard deviation (Å) of the random displacements of the first frames when there is no potential to run MD with
RATTLE_STDDEV = 0.05
#: seed offset of the test MD (independent of every exploration)
TEST_SEED_OFFSET = 1_000_003


@dataclass
class LearnResult:
    """What a finished run produced (paths inside ``run_dir``)."""

    run_dir: Path
    committee: Path
    labels: Path
    report: Path
    stop_reason: str
    labels_total: int
    iterations: int
    test: Optional[Dict[str, Any]]


def _dft_settings(s: LearnSettings):
    from ..dft import parse_method

    dft = parse_method(s.dft)
    dft.charge, dft.spin = int(s.charge), int(s.spin)
    return dft


def read_start_structures(paths: List[str]) -> List:
    from ..dft import read_structures

    frames = []
    for p in paths:
        frames += read_structures(p)[1]
    return frames


class _Run:
    def __init__(self, s: LearnSettings, dft, starts: List, base: Dict[str, Any], state: LearnState,
                 progress: bool, log: Callable[[str], None]):
        self.s, self.dft, self.starts, self.base, self.state = s, dft, starts, base, state
        self.progress, self.log = progress, log
        self.dir = Path(s.run_dir)
        self.runs: List[Tuple[int, float]] = [(k, float(t)) for k in range(len(starts)) for t in s.temperatures]

    # ------------------------------------------------------------------ paths and facts
    def it_dir(self, i: int) -> Path:
        return self.dir / f"iter-{i:03d}"

    def bootstrap(self, i: int) -> bool:
        """Iteration 0 without a committee to explore with."""
        return i == 0 and self.base["kind"] != "committee"

    def processes(self, jobs: int) -> int:
        """Worker processes for ``jobs`` independent jobs: --workers, else one per core."""
        return max(1, min(jobs, self.s.workers if self.s.workers is not None else (os.cpu_count() or 1)))

    def n_members(self) -> int:
        return len(self.base["members"]) if self.base["kind"] == "committee" else int(self.s.committee_size)

    def explorer(self, i: int) -> Optional[str]:
        """The potential exploration runs with at iteration i (None: no potential can)."""
        if i == 0:
            return self.base["path"] if self.base["covers"] else None
        return str(self.it_dir(i - 1) / "committee.pt")

    def member_start(self, i: int, k: int) -> Optional[str]:
        if i > 0:
            return str(self.it_dir(i - 1) / f"member-{k}" / "best.pt")
        if self.base["kind"] == "scratch":
            return None
        if self.base["kind"] == "single":
            return self.base["path"]
        return save_members(self.base["path"], self.dir / "base")[k]

    # ------------------------------------------------------------------ the driver
    def go(self) -> LearnResult:
        st = self.state
        if st.stage == "start":
            self._copy_starts()
            st.move("explore", 0)
        while st.stage in ("explore", "select", "label", "train", "committee"):
            i = st.iteration
            t0 = time.monotonic()
            stage = st.stage
            getattr(self, f"_{stage}")(i)
            rec = st.record(i)
            rec.setdefault("wall_s", {})[stage] = round(rec.get("wall_s", {}).get(stage, 0.0)
                                                        + time.monotonic() - t0, 2)
            st.save()
        if st.stage == "test":
            self._test()
            st.move("report")
        if st.stage == "report":
            self._report()
            st.move("done")
        return self._result()

    def _copy_starts(self) -> None:
        write_frames(self.dir / "start.xyz", self.starts)

    # ------------------------------------------------------------------ 1. explore
    def n_displaced(self, i: int) -> int:
        """Frames of iteration ``i`` that are start structures or displaced copies of them."""
        if not self.bootstrap(i):
            return 0
        n = self.s.n_initial if self.explorer(i) is None else max(len(self.starts), self.s.n_initial // 2)
        return min(n, self.s.n_initial)

    def run_specs(self, i: int) -> List[Dict[str, Any]]:
        """The exploration runs of iteration ``i`` (fixed in ``explore/runs.json`` when first made):
        {"start": "structure" | "label", "index", "temperature_K"}."""
        path = self.it_dir(i) / "explore" / "runs.json"
        if path.exists():
            return json.loads(path.read_text())
        specs = [{"start": "structure", "index": k, "temperature_K": t} for k, t in self.runs]
        if i > 0:
            temps = [float(t) for t in self.s.temperatures]
            n = len(read_frames(self.it_dir(i - 1) / "labels.xyz"))
            specs += [{"start": "label", "index": j, "temperature_K": temps[j % len(temps)]} for j in range(n)]
        _write_json(path, specs)
        return specs

    def _run_start(self, i: int, spec: Dict[str, Any]):
        if spec["start"] == "structure":
            return self.starts[spec["index"]]
        frame = read_frames(self.it_dir(i - 1) / "labels.xyz")[spec["index"]]
        from ase import Atoms

        return Atoms(numbers=frame.numbers, positions=frame.positions, cell=frame.cell, pbc=frame.pbc)

    def labelled_hashes(self, i: int) -> set:
        """Hashes of the configurations labelled before iteration ``i`` (see :func:`_config_hash`)."""
        return {_config_hash(a) for k in range(i) for a in read_frames(self.it_dir(k) / "labels.xyz")}

    def _explore(self, i: int) -> None:
        out = self.it_dir(i) / "explore"
        potential = self.explorer(i)
        if self.n_displaced(i) and not (out / "displaced.xyz").exists():
            rng = np.random.default_rng(self.s.seed)
            frames = []
            for n in range(self.n_displaced(i)):
                a = self.starts[n % len(self.starts)].copy()
                if n >= len(self.starts):
                    a.positions = a.positions + rng.normal(0.0, RATTLE_STDDEV, a.positions.shape)
                a.info = {"start_index": n % len(self.starts), "displacement_A": 0.0 if n < len(self.starts)
                          else RATTLE_STDDEV}
                frames.append(a)
            write_frames(out / "displaced.xyz", frames)
            self.log(f"iteration {i}: {len(frames)} start structures and randomly displaced copies "
                     f"(σ = {RATTLE_STDDEV} Å) to label first")
        if potential is not None:
            specs = self.run_specs(i)
            todo, jobs = [], []
            for k, spec in enumerate(specs):
                if (out / f"run-{k:02d}.json").exists():
                    continue
                temp = float(spec["temperature_K"])
                start = "start structure" if spec["start"] == "structure" else "label"
                todo.append(k)
                jobs.append({"potential": potential, "atoms": self._run_start(i, spec), "temperature_k": temp,
                             "steps": self.s.steps, "timestep_fs": self.s.timestep_fs,
                             "sample_every": self.s.sample_every, "friction_per_fs": self.s.friction_per_fs,
                             "upper_bound": self.s.upper_bound, "seed": self.s.seed * 7919 + 1000 * i + k,
                             "desc": f"iteration {i} explore {k + 1}/{len(specs)} ({start} {spec['index']}, {temp:g} K)",
                             "progress": self.progress})
            processes = self.processes(len(jobs))
            if processes > 1:
                self.log(f"iteration {i}: {len(jobs)} exploration runs, {processes} at a time")
            for j, run in explore_many(jobs, processes):
                k, spec = todo[j], specs[todo[j]]
                for f in run.frames:
                    f.info.update(learn_iteration=i, explore_run=k, explore_start=f"{spec['start']} {spec['index']}")
                if run.beyond is not None:
                    run.beyond.info.update(learn_iteration=i, explore_run=k)
                    write_frames(out / f"run-{k:02d}.beyond.xyz", [run.beyond])
                write_frames(out / f"run-{k:02d}.xyz", run.frames)
                _write_json(out / f"run-{k:02d}.json", {**spec, "seed": jobs[j]["seed"], "completed": run.completed,
                                                        "steps_run": run.steps_run, "stop_reason": run.stop_reason,
                                                        "frames": len(run.frames)})
                if not run.completed:
                    self.log(f"iteration {i} run {k}: stopped at step {run.steps_run}: {run.stop_reason}")
        self.state.move("select")

    def _exploration(self, i: int) -> Tuple[List[list], List[Dict[str, Any]]]:
        """The frames of each MD run of iteration ``i`` and their run records (none without a potential)."""
        out = self.it_dir(i) / "explore"
        frames, metas = [], []
        if self.explorer(i) is not None:
            for k in range(len(self.run_specs(i))):
                frames.append(read_frames(out / f"run-{k:02d}.xyz"))
                metas.append(json.loads((out / f"run-{k:02d}.json").read_text()))
        return frames, metas

    # ------------------------------------------------------------------ 2. select
    def _select(self, i: int) -> None:
        s, st = self.s, self.state
        frames, metas = self._exploration(i)
        left = s.budget_labels - int(st.data["labels_total"])
        rec = st.record(i)
        if left <= 0:  # the budget was lowered when the run was continued
            st.data["stop_reason"] = "label budget"
            st.move("test")
            return
        summary: Dict[str, Any] = {"runs": len(metas), "completed": sum(bool(m["completed"]) for m in metas),
                                   "frames": sum(len(f) for f in frames),
                                   "stop_reasons": [m["stop_reason"] for m in metas if m["stop_reason"]]}
        if self.bootstrap(i):
            chosen = read_frames(self.it_dir(i) / "explore" / "displaced.xyz")[: min(s.n_initial, left)]
            pool = [[a for a in f if int(a.info["md_step"]) > 0] for f in frames]
            picks = select_spread([len(f) for f in pool], min(s.n_initial, left) - len(chosen))
            chosen += [pool[t][k] for t, k in picks]
            how = "start structures, displaced copies" + (" and frames spread evenly over MD with the start potential"
                                                          if frames else "")
        else:
            steps = [np.array([int(a.info["md_step"]) for a in f], dtype=int) for f in frames]
            raw = [frame_spreads(f) for f in frames]
            done = self.labelled_hashes(i)
            # the start structures (step 0) are physical: candidates however unsure the committee is;
            # a configuration labelled before is never one
            spreads = [np.where(np.array([_config_hash(a) in done for a in f], dtype=bool), -np.inf,
                                np.where(st == 0, np.minimum(sp, s.upper_bound), sp))
                       for f, sp, st in zip(frames, raw, steps)]
            allspread = np.concatenate(raw) if raw else np.zeros(0)
            above = int(np.sum(allspread > s.threshold))
            summary.update(above_threshold=above, above_fraction=above / max(len(allspread), 1),
                           mean_max_force_std_mev_per_a=1e3 * float(np.mean(allspread)) if len(allspread) else None,
                           max_max_force_std_mev_per_a=1e3 * float(np.max(allspread)) if len(allspread) else None)
            if summary["completed"] == summary["runs"] and above == 0:
                rec["explore"] = summary
                rec["selected"] = 0
                st.data["stop_reason"] = "converged"
                self.log(f"iteration {i}: every exploration run finished with the max atomic force std below "
                         f"{s.threshold:g} eV/Å: converged")
                st.move("test")
                return
            picks = select_uncertain(spreads, steps, s.threshold, s.upper_bound, min(s.max_per_iteration, left),
                                     s.min_spacing)
            how = f"max atomic force std in ({s.threshold:g}, {s.upper_bound:g}] eV/Å"
            chosen = [frames[t][k] for t, k in picks]
            if not chosen:  # runs stopped with no new frame between threshold and upper bound
                chosen = self._fallback(i, frames, metas, done)[: min(s.max_per_iteration, left)]
                how = ("the last new frame before each stopped run, else the first frame beyond the upper bound "
                       "(no new frame between threshold and upper bound)")
            summary["selected_max_force_std_mev_per_a"] = [1e3 * float(a.info["max_force_std"]) for a in chosen]
        for a in chosen:
            a.info["learn_iteration"] = i
        rec["explore"] = summary
        rec["selected"] = len(chosen)
        rec["selected_by"] = how
        write_frames(self.it_dir(i) / "selected.xyz", chosen)
        self.log(f"iteration {i}: {summary['frames']} frames explored in {summary['runs']} run(s), {len(chosen)} "
                 f"selected ({how})")
        if not chosen:
            raise GeoffError(f"iteration {i}: no new frame to label (every exploration run stopped where all frames "
                             f"were labelled before: {summary['stop_reasons']}). Lower the temperature, raise "
                             "--upper-bound, or start from relaxed structures.")
        st.move("label")

    def _fallback(self, i: int, frames: List[list], metas: List[Dict[str, Any]], done: set) -> list:
        """Frames to label when no run left a new candidate: of each stopped run its last frame not
        labelled before, else (when it stopped at the upper bound, the health checks passed) the
        frame beyond the bound at which it stopped."""
        out, chosen = self.it_dir(i) / "explore", []
        for k, (f, m) in enumerate(zip(frames, metas)):
            if m["completed"]:
                continue
            new = [a for a in f if _config_hash(a) not in done]
            if new:
                chosen.append(new[-1])
            elif (out / f"run-{k:02d}.beyond.xyz").exists():
                chosen += [a for a in read_frames(out / f"run-{k:02d}.beyond.xyz") if _config_hash(a) not in done]
        return chosen

    # ------------------------------------------------------------------ 3. label
    def _label(self, i: int) -> None:
        from ..dft import label_structures

        st, d = self.state, self.it_dir(i)
        summary = label_structures(d / "selected.xyz", d / "labels.xyz", self.dft, workers=self.s.workers,
                                   threads=self.s.threads, progress=self.progress)
        new = read_frames(d / "labels.xyz")
        rec = st.record(i)
        rec["labels"] = len(new)
        rec["failed"] = len(read_frames(d / "labels.failures.xyz"))
        if summary.label_times:
            rec.setdefault("label_wall_s", []).extend(round(t, 3) for t in summary.label_times)
        self.log(f"iteration {i}: {summary.format().splitlines()[0]}")
        potential = self.explorer(i)
        if new and potential is not None:
            rec["true_error"] = errors_against_labels(potential, new)
        every = []
        for k in range(i + 1):
            every += read_frames(self.it_dir(k) / "labels.xyz")
        if not every:
            raise GeoffError(f"every DFT calculation so far failed (see {d / 'labels.failures.xyz'}): nothing to train "
                             "on. Check the level of theory, --charge and --spin.")
        write_frames(d / "train.xyz", every)
        write_frames(self.dir / "labels.xyz", every)
        st.data["labels_total"] = len(every)
        st.move("train")

    # ------------------------------------------------------------------ 4. train
    def _train(self, i: int) -> None:
        s, d = self.s, self.it_dir(i)
        model = read_model_section(s.model_config) if self.base["kind"] == "scratch" else None
        n = self.n_members()
        processes = self.processes(n)
        self.log(f"iteration {i}: training {n} members on {self.state.data['labels_total']} labels"
                 f"{f', {processes} at a time' if processes > 1 else ''}")
        train_members([{"run_dir": d / f"member-{k}", "start": self.member_start(i, k), "train_file": d / "train.xyz",
                        "seed": s.seed + 1000 * i + k + 1, "max_epochs": s.max_epochs, "minutes": s.train_minutes,
                        "model": model, "progress": self.progress} for k in range(n)], processes)
        self.state.record(i)["train"] = [member_summary(d / f"member-{k}") for k in range(n)]
        self.state.move("committee")

    # ------------------------------------------------------------------ 5. committee
    def _committee(self, i: int) -> None:
        from ..training.provenance import data_provenance

        s, st, d = self.s, self.state, self.it_dir(i)
        members = [d / f"member-{k}" / "best.pt" for k in range(self.n_members())]
        metadata = {"trained_by": "geoff learn", "learn_iteration": i, "labels": int(st.data["labels_total"]),
                    "start": self.base["name"], "data_provenance": data_provenance(d / "train.xyz")}
        write_committee(members, d / "committee.pt", metadata)
        write_committee(members, self.dir / "committee.pt", metadata)
        reason = None
        if int(st.data["labels_total"]) >= s.budget_labels:
            reason = "label budget"
        elif s.max_iterations is not None and i + 1 >= s.max_iterations:
            reason = "iterations"
        elif s.max_hours is not None and st.elapsed_s() >= 3600.0 * s.max_hours:
            reason = "time budget"
        if reason is not None:
            st.data["stop_reason"] = reason
            self.log(f"iteration {i}: stopping ({reason}) with {st.data['labels_total']} labels")
            st.move("test")
        else:
            st.move("explore", i + 1)

    # ------------------------------------------------------------------ after the loop
    def final_committee(self) -> str:
        return str(self.dir / "committee.pt")

    def _test(self) -> None:
        from ..ase import GeoffCalculator
        from ..dft import label_structures

        s, st = self.s, self.state
        out = self.dir / "test"
        if s.test_frames == 0:
            st.data["test"] = None
            return
        frames_path = out / "frames.xyz"
        if not frames_path.exists():
            calc = GeoffCalculator(self.final_committee())
            runs = []
            for k, (start, temp) in enumerate(self.runs):
                # the MD a user would run: stopped by the health checks only, not by the committee's spread
                run = explore(self.starts[start], calc, temp, s.steps, s.timestep_fs, s.sample_every, s.friction_per_fs,
                              math.inf, s.seed * 7919 + TEST_SEED_OFFSET + k,
                              desc=f"test MD {k + 1}/{len(self.runs)} ({temp:g} K)", progress=self.progress)
                runs.append([a for a in run.frames if int(a.info["md_step"]) > 0] or run.frames)
            picks = select_spread([len(r) for r in runs], s.test_frames)
            write_frames(frames_path, [runs[t][k] for t, k in picks])
        label_structures(frames_path, out / "labels.xyz", self.dft, workers=s.workers, threads=s.threads,
                         progress=self.progress)
        labelled = read_frames(out / "labels.xyz")
        result = errors_against_labels(self.final_committee(), labelled)
        st.data["test"] = result
        if labelled:
            self.log(f"test: {len(labelled)} fresh MD frames labelled; force MAE {result['forces_mae_mev_per_a']:.1f} "
                     f"meV/Å, energy MAE {result['energy_mae_mev_per_atom']:.2f} meV/atom")

    def _report(self) -> None:
        from .report import write_report

        write_report(self.dir, self.state.data, self.base)

    def _result(self) -> LearnResult:
        d = self.state.data
        return LearnResult(self.dir, self.dir / "committee.pt", self.dir / "labels.xyz", self.dir / "report.md",
                           d["stop_reason"], int(d["labels_total"]), len(d["iterations"]), d.get("test"))


def _config_hash(atoms) -> str:
    """A hash of the atomic numbers and the positions rounded to 10⁻⁶ Å (as extended XYZ keeps them)."""
    import hashlib

    h = hashlib.sha256(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    h.update((np.round(np.asarray(atoms.positions, dtype=np.float64), 6) + 0.0).tobytes())  # + 0.0: no −0.0
    return h.hexdigest()


def _write_json(path: Path, data) -> None:
    from ..io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def describe_start(s: LearnSettings, elements: List[str]) -> Dict[str, Any]:
    """What the run starts from: kind ("committee", "single" or "scratch"), the potential's path,
    its members (committee), and whether it knows every element of the start structures."""
    if s.from_scratch:
        return {"kind": "scratch", "name": "scratch (no start potential)", "path": None, "covers": False, "members": []}
    from ..io import load_potential, resolve_potential_path

    path = str(resolve_potential_path(s.potential))
    pot = load_potential(path)
    covers = all(e in pot.species for e in elements)
    if pot.model_type == "committee":
        return {"kind": "committee", "name": str(s.potential), "path": path, "covers": covers,
                "members": [m.model_type for m in pot.members], "species": list(pot.species)}
    return {"kind": "single", "name": str(s.potential), "path": path, "covers": covers, "members": [],
            "species": list(pot.species)}


def learn(settings: LearnSettings, overwrite: bool = False, progress: bool = True,
          log: Optional[Callable[[str], None]] = print) -> LearnResult:
    """Run (or continue) the active-learning loop described by ``settings`` in ``settings.run_dir``.

    Everything is checked before any MD, DFT or training (GeoffInputError): the options, the start
    structures (readable, molecules, the electron count against the spin), the level of theory
    (method known to PySCF, the basis covering every element) and the start potential. A run folder
    holding a run of other settings is refused unless ``overwrite``.
    """
    from ..dft import check_structures

    log = log or (lambda line: None)
    check_settings(settings)
    dft = _dft_settings(settings)
    starts = read_start_structures(settings.structures)
    check_structures(list(range(len(starts))), starts, dft, source="start structure")
    elements = sorted({e for a in starts for e in a.get_chemical_symbols()})
    base = describe_start(settings, elements)
    if base["kind"] == "scratch":
        read_model_section(settings.model_config)  # checked now, not after the first labels
    if base["kind"] == "committee" and not base["covers"]:
        raise GeoffInputError(f"the committee {settings.potential} lacks element(s) "
                              f"{[e for e in elements if e not in base['species']]} of the start structures; start "
                              "from one of its members (a single potential gains new elements by fine-tuning) or "
                              "--from-scratch.")
    state = open_state(settings.run_dir, settings.signature(), overwrite)
    if state.stage != "start":
        log(f"continuing the run in {settings.run_dir}: iteration {state.iteration}, stage {state.stage}")
    return _Run(settings, dft, starts, base, state, progress, log).go()
