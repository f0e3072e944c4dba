"""geoff learn: the active-learning loop with real PySCF labels (water, HF/sto-3g: ~0.15 s a label),
tiny EGNN members and short MD, so that a whole loop takes seconds. A run killed with SIGKILL in
each stage (MD, labelling, training) and restarted ends with the labels of an uninterrupted run,
none lost and none computed twice; another command on a run folder is refused; bad input is
refused before anything runs."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.io import read, write

pytest.importorskip("pyscf")

from geoff.cli.main import main  # noqa: E402
from geoff.errors import GeoffInputError  # noqa: E402
from geoff.io import load_potential  # noqa: E402
from geoff.learn import LearnSettings, learn  # noqa: E402
from geoff.learn.select import select_spread, select_uncertain  # noqa: E402
from geoff.learn.state import STATE_FILE, open_state  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TINY = {"model": {"type": "egnn", "cutoff": 4.0, "hidden": 8, "num_layers": 1, "num_basis": 4}}


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _water_file(folder: Path) -> Path:
    path = folder / "water.xyz"
    write(path, molecule("H2O"))
    return path


def _model_config(folder: Path) -> Path:
    import yaml

    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def _settings(folder: Path, run_dir: Path, **kw) -> LearnSettings:
    base = dict(structures=[str(_water_file(folder))], dft="HF/sto-3g", run_dir=str(run_dir), from_scratch=True,
                model_config=str(_model_config(folder)), temperatures=[300.0], steps=60, sample_every=5,
                threshold=0.001, upper_bound=2.0, max_per_iteration=3, min_spacing=10, initial_labels=4,
                budget_labels=40, max_iterations=2, committee_size=2, train_minutes=None, max_epochs=10,
                test_frames=3, workers=1, threads=1)
    base.update(kw)
    return LearnSettings(**base)


@pytest.fixture(scope="module")
def scratch_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("learn")
    settings = _settings(folder, folder / "run")
    t0 = time.perf_counter()
    result = learn(settings, progress=False, log=None)
    return settings, result, time.perf_counter() - t0


def _labels(path):
    return read(path, ":") if Path(path).exists() and Path(path).stat().st_size else []


def test_a_loop_from_scratch_labels_trains_and_reports(scratch_run):
    settings, result, _ = scratch_run
    run = Path(settings.run_dir)
    state = json.loads((run / STATE_FILE).read_text())
    assert state["stage"] == "done" and result.stop_reason == "iterations" and result.iterations == 2
    # iteration 0: start structure + displaced copies; iteration 1: frames the committee was unsure of
    it0, it1 = _labels(run / "iter-000" / "labels.xyz"), _labels(run / "iter-001" / "labels.xyz")
    assert len(it0) == 4 and 1 <= len(it1) <= 3
    selected = _labels(run / "iter-001" / "selected.xyz")
    spreads = [a.info["max_force_std"] for a in selected]
    rec = state["iterations"][1]
    if rec["selected_by"].startswith("max atomic force std"):
        assert all(settings.threshold < s <= settings.upper_bound for s in spreads)
    for run_index in {a.info["explore_run"] for a in selected}:  # spaced within each run
        steps = sorted(a.info["md_step"] for a in selected if a.info["explore_run"] == run_index)
        assert all(b - a >= settings.min_spacing for a, b in zip(steps, steps[1:]))
    # iteration 1 explored from the start structure and from each of the 4 frames labelled before
    runs = json.loads((run / "iter-001" / "explore" / "runs.json").read_text())
    assert [(r["start"], r["index"]) for r in runs] == [("structure", 0)] + [("label", j) for j in range(4)]
    # and labelled none of them again
    hashes = {(a.numbers.tobytes(), np.round(a.positions, 6).tobytes()) for a in it0}
    assert not any((a.numbers.tobytes(), np.round(a.positions, 6).tobytes()) in hashes for a in it1)
    # every label is in the run's data file once, with its provenance, in eV and eV/Å
    every = _labels(run / "labels.xyz")
    assert len(every) == len(it0) + len(it1) == result.labels_total
    assert len({(a.info.get("learn_iteration", 0), a.info["label_key"]) for a in every}) == len(every)
    assert {a.info["dft_method"] for a in every} == {"HF/sto-3g"}
    assert all(a.info["dft_code"].startswith("pyscf ") for a in every)
    assert abs(every[0].get_potential_energy() / -2035.0 - 1) < 0.01  # HF/sto-3g water ≈ −74.96 Ha ≈ −2039.7 eV
    # the true error of iteration 1 is the iteration-0 committee against the new labels
    committee0 = load_potential(run / "iter-000" / "committee.pt")
    from geoff.ase import GeoffCalculator

    calc = GeoffCalculator(committee0)
    diffs = []
    for a in it1:
        b = a.copy()
        b.calc = calc
        diffs.append(b.get_forces() - a.get_forces())
    mae = 1e3 * float(np.mean(np.abs(np.concatenate(diffs))))
    assert rec["true_error"]["forces_mae_mev_per_a"] == pytest.approx(mae, rel=1e-6)
    # the final committee: a committee of 2 fine-tuned members with the data provenance in its metadata
    final = load_potential(run / "committee.pt")
    assert final.model_type == "committee" and final.num_members == 2
    prov = final.metadata["data_provenance"][0]
    assert prov["frames"] == len(every) and prov["groups"][0]["method"] == "HF/sto-3g"
    assert prov["groups"][0]["learn_iterations"] == {"0": 4, "1": len(it1)}
    member = load_potential(run / "iter-001" / "member-0" / "best.pt")
    assert member.metadata["data_provenance"][0]["frames"] == len(every)
    # the test: fresh MD frames labelled, errors of the final committee
    test = result.test
    assert test["frames"] == 3 and len(_labels(run / "test" / "labels.xyz")) == 3
    assert np.isfinite(test["forces_mae_mev_per_a"]) and test["max_force_std_mev_per_a"] > 0
    report = json.loads((run / "report.json").read_text())
    assert [r["labels"] for r in report["iterations"]] == [4, len(it1)]
    assert (run / "report.png").stat().st_size > 10_000
    card = (run / "MODEL_CARD.md").read_text()
    assert "HF/sto-3g" in card and "pyscf" in card and "geoff learn iterations 0 (4)" in card
    text = (run / "report.md").read_text()
    assert "| 1 |" in text
    # the command in the report reproduces the run: every setting not at its default is in it
    command = re.search(r"`(geoff learn [^`]*)`", text).group(1)
    for option in ("--from-scratch", "--model-config tiny.yaml", "--dft HF/sto-3g", "--steps 60", "--sample-every 5",
                   "--threshold 0.001", "--upper-bound 2", "--max-per-iteration 3", "--min-spacing 10",
                   "--initial-labels 4", "--budget-labels 40", "--max-iterations 2", "--committee-size 2",
                   "--max-epochs 10", "--test-frames 3"):
        assert option in command, (option, command)


def test_the_same_command_on_a_finished_run_does_nothing_again(scratch_run):
    settings, result, _ = scratch_run
    run = Path(settings.run_dir)
    before = {p: p.stat().st_mtime_ns for p in run.rglob("labels.xyz")}
    again = learn(settings, progress=False, log=None)
    assert again.labels_total == result.labels_total and again.stop_reason == result.stop_reason
    assert {p: p.stat().st_mtime_ns for p in run.rglob("labels.xyz")} == before


def test_another_command_on_the_run_folder_is_refused(scratch_run, capsys):
    settings, _, _ = scratch_run
    args = ["learn", "--from-scratch", *settings.structures, "--dft", "HF/sto-3g", "--run-dir", settings.run_dir,
            "--model-config", settings.model_config, "--temperature", "500"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "holds a geoff learn run of another command" in err and "temperatures" in err and "--overwrite" in err


def test_overwrite_deletes_only_the_runs_files(tmp_path):
    run = tmp_path / "run"
    state = open_state(run, {"a": 1})
    (run / "iter-000").mkdir()
    (run / "labels.xyz").write_text("")
    (run / "notes.txt").write_text("mine")
    state.move("label")
    with pytest.raises(GeoffInputError, match="another command"):
        open_state(run, {"a": 2})
    fresh = open_state(run, {"a": 2}, overwrite=True)
    assert fresh.stage == "start" and sorted(p.name for p in run.iterdir()) == ["learn.json", "notes.txt"]


def test_a_run_in_progress_may_change_its_budgets_a_finished_one_not(tmp_path):
    run = tmp_path / "run"
    sig = {"steps": 100, "budget_labels": 20, "max_hours": None, "max_iterations": None}
    open_state(run, sig).move("train", 2)
    more = {**sig, "budget_labels": 40, "max_hours": 1.5}
    state = open_state(run, more)
    assert state.stage == "train" and state.iteration == 2
    assert json.loads((run / STATE_FILE).read_text())["command"] == more
    with pytest.raises(GeoffInputError, match="another command .different: steps"):
        open_state(run, {**more, "steps": 200})
    state.move("done")
    with pytest.raises(GeoffInputError, match="a finished run's budgets cannot change"):
        open_state(run, {**more, "budget_labels": 60})


@pytest.mark.parametrize("structure,dft,extra,message", [
    ("water", "NOTAFUNCTIONAL/sto-3g", (), "unknown method 'NOTAFUNCTIONAL'"),
    ("water", "HF/sto-3g", ("--threshold", "0.5", "--upper-bound", "0.1"),
     r"--upper-bound \(0.1 eV/Å\) must be above --threshold \(0.5 eV/Å\)"),
    ("Au2", "HF/6-31g", (), r"has no functions for element\(s\) \['Au'\]"),
    ("water", "HF/sto-3g", ("--spin", "1"), "10 electrons .* Give --spin 0 or 2"),
    ("water", "HF/sto-3g", ("--committee-size", "1"), "--committee-size must be a whole number ≥ 2"),
    ("water", "HF/sto-3g", ("--steps", "5", "--sample-every", "10"), "--sample-every .* is longer than"),
    ("water", "HF/sto-3g", ("--initial-labels", "50", "--budget-labels", "20"), "exceeds --budget-labels"),
    ("water", "HF/sto-3g", ("--model-config", "model.yaml"), r"\['hiden'\] are not settings of model type 'egnn'"),
])
def test_bad_input_is_refused_before_anything_runs(tmp_path, capsys, structure, dft, extra, message):
    atoms = molecule("H2O") if structure == "water" else Atoms("Au2", positions=[[0, 0, 0], [0, 0, 2.5]])
    write(tmp_path / "start.xyz", atoms)
    (tmp_path / "model.yaml").write_text("model: {type: egnn, hiden: 8}\n")
    extra = tuple(str(tmp_path / x) if x == "model.yaml" else x for x in extra)
    code = main(["learn", "--from-scratch", str(tmp_path / "start.xyz"), "--dft", dft, "--run-dir",
                 str(tmp_path / "run"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("geoff learn: error:") and re.search(message, err), err
    assert not (tmp_path / "run").exists()


def test_a_potential_and_from_scratch_together_or_neither_are_refused(tmp_path, capsys):
    write(tmp_path / "start.xyz", molecule("H2O"))
    assert main(["learn", str(tmp_path / "start.xyz"), "--dft", "HF/sto-3g", "--run-dir", str(tmp_path / "r")]) == 2
    assert "give the potential to start from and at least one start structure" in capsys.readouterr().err
    assert main(["learn", "no-such-potential", str(tmp_path / "start.xyz"), "--dft", "HF/sto-3g",
                 "--run-dir", str(tmp_path / "r")]) != 0
    assert not (tmp_path / "r").exists()


def test_selection_takes_the_most_uncertain_frames_spaced_within_bounds():
    spreads = [np.array([0.01, 0.30, 0.29, 0.10, 0.90, 0.20]), np.array([0.06, 0.04])]
    steps = [np.arange(6) * 10, np.arange(2) * 10]
    picks = select_uncertain(spreads, steps, threshold=0.05, upper_bound=0.5, limit=10, min_spacing=20)
    # 0.90 is beyond the upper bound and 0.01, 0.04 below the threshold; 0.29 (step 20) is 10 steps from the
    # more uncertain 0.30 (step 10); 0.30, 0.20 and 0.10 (steps 10, 50, 30) are 20 steps apart
    assert picks == [(0, 1), (0, 5), (0, 3), (1, 0)]
    assert select_uncertain(spreads, steps, 0.05, 0.5, limit=2, min_spacing=20) == [(0, 1), (0, 5)]
    assert select_uncertain(spreads, steps, 0.95, 2.0, limit=5, min_spacing=0) == []
    assert select_spread([5, 5], 3) == [(0, 0), (0, 4), (1, 4)]
    assert select_spread([2, 1], 10) == [(0, 0), (0, 1), (1, 0)]


@pytest.mark.parametrize("start", ["single", "committee"])
def test_a_loop_from_a_potential_fine_tunes_its_members(scratch_run, tmp_path, start):
    settings, _, _ = scratch_run
    first = Path(settings.run_dir)
    potential = first / ("iter-000/member-0/best.pt" if start == "single" else "committee.pt")
    run = tmp_path / "run"
    result = learn(_settings(tmp_path, run, from_scratch=False, model_config=None, potential=str(potential),
                             max_iterations=1, test_frames=0, initial_labels=3), progress=False, log=None)
    state = json.loads((run / STATE_FILE).read_text())
    rec = state["iterations"][0]
    assert result.stop_reason == "iterations" and result.test is None
    # a single potential explores alone and its first labels are spread over the run; a committee selects
    if start == "single":
        assert rec["selected_by"].startswith("start structures, displaced copies and frames spread") and rec["labels"] == 3
        assert "max_force_std_mev_per_a" not in rec["true_error"]
    else:
        assert rec["selected_by"].startswith("max atomic force std") and rec["true_error"]["max_force_std_mev_per_a"] > 0
    assert np.isfinite(rec["true_error"]["forces_mae_mev_per_a"])
    final = load_potential(run / "committee.pt")
    assert final.num_members == 2
    # every member was fine-tuned from the start potential (its weights moved away from it)
    origin = load_potential(potential)
    origins = origin.members if start == "committee" else [origin, origin]
    for member, o in zip(final.members, origins):
        moved = max(float((a - b).abs().max()) for a, b in zip(member.state_dict().values(), o.state_dict().values())
                    if a.dtype.is_floating_point and a.shape == b.shape)
        assert moved > 0
    assert final.metadata["start"] == str(potential)


# ----------------------------------------------------------------------------- SIGKILL in every stage
def _state(run: Path):
    try:
        return json.loads((run / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def _kill_when(cmd, env, run: Path, ready, what: str, timeout: float = 240.0):
    """Start ``cmd``, SIGKILL it as soon as ``ready(run)`` holds; returns True if it was killed."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if ready(run):
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    proc.wait()
    raise AssertionError(f"the run ended (code {proc.returncode}) before {what}: {proc.stderr.read().decode()[-2000:]}")


def _at(stage, iteration):
    def ready(run):
        s = _state(run)
        return s is not None and s["stage"] == stage and s["iteration"] == iteration
    return ready


def _labelling(run):
    s = _state(run)
    return s is not None and s["stage"] == "label" and s["iteration"] == 1 and \
        len(_labels(run / "iter-001" / "labels.xyz")) >= 1


def _training(run):
    s = _state(run)
    return s is not None and s["stage"] == "train" and s["iteration"] == 1 and \
        (run / "iter-001" / "member-0" / "checkpoint.pt").exists()


def test_sigkill_in_md_labelling_and_training_resumes_to_the_uninterrupted_labels(tmp_path):
    reference = _settings(tmp_path, tmp_path / "reference", test_frames=2, steps=120, max_epochs=8)
    learn(reference, progress=False, log=None)
    run = tmp_path / "killed"
    cmd = [sys.executable, "-m", "geoff.cli.main", "learn", "--from-scratch", *reference.structures,
           "--dft", "HF/sto-3g", "--run-dir", str(run), "--model-config", reference.model_config,
           "--temperature", "300", "--steps", "120", "--sample-every", "5", "--threshold", "0.001",
           "--upper-bound", "2.0", "--max-per-iteration", "3", "--min-spacing", "10", "--initial-labels", "4",
           "--budget-labels", "40", "--max-iterations", "2", "--committee-size", "2", "--train-minutes", "60",
           "--max-epochs", "8", "--test-frames", "2", "--workers", "1", "--threads", "1", "--no-progress"]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    kept = {}
    for ready, what in ((_at("explore", 1), "the MD of iteration 1"), (_labelling, "labelling iteration 1"),
                        (_training, "training iteration 1")):
        _kill_when(cmd, env, run, ready, what)
        assert ready(run), f"killed after {what}"
        for path in sorted(run.glob("iter-*/labels.xyz")):  # labels written so far stay byte for byte
            data = path.read_bytes()
            assert data.startswith(kept.get(path, b""))
            kept[path] = data
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for path, data in kept.items():
        assert path.read_bytes().startswith(data)
    # resumed labels = uninterrupted labels, each computed once
    ref_run, got_run = Path(reference.run_dir), run
    for it in ("iter-000", "iter-001", "test"):
        ref, got = _labels(ref_run / it / "labels.xyz"), _labels(got_run / it / "labels.xyz")
        keys = [a.info["label_key"] for a in got]
        assert len(keys) == len(set(keys)) == len(ref) > 0, it
        by_key = {a.info["label_key"]: a for a in ref}
        for a in got:
            b = by_key[a.info["label_key"]]
            np.testing.assert_allclose(a.positions, b.positions, atol=1e-6)
            assert a.get_potential_energy() == pytest.approx(b.get_potential_energy(), abs=1e-6)
    assert _state(got_run)["stage"] == "done" and (got_run / "report.md").exists()


def test_provenance_groups_frames_by_method_and_code(tmp_path):
    from ase.calculators.singlepoint import SinglePointCalculator

    from geoff.training.provenance import data_provenance, provenance_table

    frames = []
    for k in range(5):
        a = molecule("H2O")
        a.calc = SinglePointCalculator(a, energy=-1.0 * k, forces=np.zeros((3, 3)))
        if k < 3:
            a.info.update(dft_method="PBE/def2-SVP", dft_code="pyscf 2.14.0", learn_iteration=k // 2,
                          md_temperature_K=400.0)
        frames.append(a)
    write(tmp_path / "data.xyz", frames)
    (tmp_path / "data.npz").write_bytes(b"not read")
    prov = data_provenance([tmp_path / "data.xyz", tmp_path / "data.npz", tmp_path / "missing.xyz"])
    assert len(prov) == 2 and prov[0]["frames"] == 5
    groups = {g["method"]: g for g in prov[0]["groups"]}
    assert groups["PBE/def2-SVP"]["frames"] == 3 and groups["not recorded"]["frames"] == 2
    assert groups["PBE/def2-SVP"]["learn_iterations"] == {"0": 2, "1": 1}
    assert groups["PBE/def2-SVP"]["md_temperatures_K"] == {"400": 3}
    assert prov[1]["frames"] is None and len(prov[1]["sha256"]) == 64
    table = provenance_table(prov)
    assert "| 3 | PBE/def2-SVP | pyscf 2.14.0 | geoff learn iterations 0 (2), 1 (1); MD at 400 K (3) |" in table


def test_members_trained_two_at_a_time_equal_members_trained_one_by_one(scratch_run, tmp_path):
    from geoff.learn.members import train_members

    settings = scratch_run[0]
    labels = Path(settings.run_dir) / "labels.xyz"
    model = dict(TINY["model"])
    weights = {}
    for processes in (1, 2):
        jobs = [{"run_dir": tmp_path / f"p{processes}" / f"member-{k}", "start": None, "train_file": labels,
                 "seed": k + 1, "max_epochs": 3, "minutes": None, "model": model, "progress": False} for k in range(2)]
        best = train_members(jobs, processes)
        assert [p.name for p in best] == ["best.pt", "best.pt"] and all(p.exists() for p in best)
        weights[processes] = [load_potential(p).state_dict() for p in best]
    for one, two in zip(weights[1], weights[2]):  # same seed, same data, one thread each: the same numbers
        assert one.keys() == two.keys()
        for key in one:
            torch.testing.assert_close(one[key], two[key], rtol=0, atol=0, msg=key)
    first, second = weights[2]
    assert any(not torch.equal(first[k], second[k]) for k in first)  # the seeds made two different members


def test_exploration_runs_two_at_a_time_give_the_frames_of_runs_one_by_one(scratch_run):
    from geoff.learn.explore import explore_many

    settings = scratch_run[0]
    water = molecule("H2O")
    jobs = [{"potential": str(Path(settings.run_dir) / "committee.pt"), "atoms": water, "temperature_k": t,
             "steps": 40, "timestep_fs": 0.5, "sample_every": 5, "friction_per_fs": 0.01, "upper_bound": 2.0,
             "seed": seed, "progress": False} for seed, t in ((1, 300.0), (2, 300.0), (3, 500.0))]
    runs = {}
    for processes in (1, 2):
        got = list(explore_many(jobs, processes))
        assert sorted(k for k, _ in got) == [0, 1, 2]
        runs[processes] = dict(got)
    for k in range(3):
        one, two = runs[1][k], runs[2][k]
        assert (one.completed, one.steps_run, len(one.frames)) == (two.completed, two.steps_run, len(two.frames))
        for a, b in zip(one.frames, two.frames):
            np.testing.assert_array_equal(a.positions, b.positions)
            assert a.info["max_force_std"] == b.info["max_force_std"]
    assert not np.array_equal(runs[1][0].frames[-1].positions, runs[1][1].frames[-1].positions)  # seeds differ
