"""Never lose a run: a finished run folder is not overwritten without --overwrite, temporary
files of a checkpoint write killed mid-way are removed when the run resumes, and the run
folder stores absolute data paths, so --resume works from any directory."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
import yaml

from geoff.cli.main import main
from geoff.errors import GeoffInputError
from geoff.io.atomic import atomic_path, remove_stale_temp_files, temp_target
from geoff.training import train

from tests.test_training import DATA, _one_thread, tiny_config  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.skipif(not (DATA / "train.xyz").exists(), reason="ethanol data not available")


def _write_config(path, run_dir, **overrides):
    path.write_text(yaml.safe_dump(tiny_config(run_dir, **overrides)))
    return path


def test_a_second_run_in_a_finished_run_folder_is_refused(tmp_path, capsys):
    config = _write_config(tmp_path / "config.yaml", tmp_path / "run", optim={"max_epochs": 1})
    assert main(["train", str(config)]) == 0
    capsys.readouterr()
    before = {name: (tmp_path / "run" / name).read_bytes() for name in ("best.pt", "last.pt", "checkpoint.pt",
                                                                        "metrics.csv")}
    assert main(["train", str(config), "--max-epochs", "2"]) == 2
    err = capsys.readouterr().err
    assert "already holds the results" in err and "--resume" in err and "--overwrite" in err and "--run-dir" in err
    for name, content in before.items():
        assert (tmp_path / "run" / name).read_bytes() == content, f"{name} was replaced"
    # the Python API refuses as well
    with pytest.raises(GeoffInputError, match="--resume"):
        train(tiny_config(tmp_path / "run", optim={"max_epochs": 1}))
    # an explicit --overwrite starts afresh: the old run's files are replaced, not mixed with the new ones
    (tmp_path / "run" / "parity_test.png").write_bytes(b"from the old run")
    (tmp_path / "run" / "notes.txt").write_text("mine")
    assert main(["train", str(config), "--max-epochs", "2", "--overwrite"]) == 0
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and len(state["history"]) == 2
    assert not (tmp_path / "run" / "parity_test.png").exists()
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"  # not a file of the run: left alone
    # a folder with no results (e.g. a run that failed before its first step) is fine to use
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.yaml").write_text("x")
    assert train(tiny_config(tmp_path / "empty", optim={"max_epochs": 1}))["epochs"] == 1
    # --resume and --overwrite contradict each other
    assert main(["train", "--resume", str(tmp_path / "run"), "--overwrite"]) == 2


def test_temp_files_of_the_atomic_writer_have_a_recognisable_name(tmp_path):
    with atomic_path(tmp_path / "checkpoint.pt") as tmp:
        assert temp_target(tmp.name) == "checkpoint.pt", tmp.name
        assert tmp.name.startswith(".checkpoint.pt.") and tmp.name.endswith(".tmp")
        tmp.write_text("x")
    for other in (".checkpoint.pt.tmp", "checkpoint.pt.geoff-abc.tmp", ".checkpoint.pt.abcd1234.tmp", "notes.tmp",
                  ".checkpoint.pt.geoff-abc.tmp.bak"):
        assert temp_target(other) is None, other
    assert remove_stale_temp_files(tmp_path / "missing") == []


def test_temp_files_left_by_a_kill_during_a_checkpoint_write_are_removed_on_resume(tmp_path):
    """Kill (SIGKILL) the training process while it writes its second checkpoint, after the data
    are in the temporary file and before the rename; resuming removes the temporary file."""
    config = _write_config(tmp_path / "config.yaml", tmp_path / "run", optim={"max_epochs": 3})
    script = textwrap.dedent("""
        import os, signal, sys
        import torch
        real_save, calls = torch.save, []
        def save(obj, f, *a, **kw):
            real_save(obj, f, *a, **kw)
            if os.path.basename(str(f)).startswith(".checkpoint.pt."):
                calls.append(f)
                if len(calls) == 2:
                    os.kill(os.getpid(), signal.SIGKILL)
        torch.save = save
        from geoff.cli.main import main
        sys.exit(main(["train", sys.argv[1]]))
    """)
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script, str(config)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == -9, proc.stderr[-3000:]
    left = [p.name for p in run.iterdir() if p.name.startswith(".checkpoint.pt.") and p.name.endswith(".tmp")]
    assert len(left) == 1 and (run / "checkpoint.pt").is_file(), sorted(p.name for p in run.iterdir())
    # files that only look alike stay: a user's file, and one the atomic writer did not name
    (run / ".notes.tmp").write_text("mine")
    (run / ".checkpoint.pt.mine.tmp").write_text("mine")
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    names = sorted(p.name for p in run.iterdir())
    assert left[0] not in names, names
    assert ".notes.tmp" in names and ".checkpoint.pt.mine.tmp" in names
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 3


def test_resume_from_another_directory_with_relative_data_paths(tmp_path, monkeypatch, capsys):
    start, elsewhere = tmp_path / "project", tmp_path / "somewhere" / "else"
    start.mkdir()
    elsewhere.mkdir(parents=True)
    cfg = tiny_config("runs/x", optim={"max_epochs": 1})
    rel = os.path.relpath(DATA, start)  # data paths relative to the directory `geoff train` runs in
    cfg["data"].update(train=f"{rel}/train.xyz", isolated_atoms=f"{rel}/isolated_atoms.xyz")
    (start / "config.yaml").write_text(yaml.safe_dump(cfg))
    monkeypatch.chdir(start)
    assert main(["train", "config.yaml"]) == 0
    stored = yaml.safe_load((start / "runs" / "x" / "config.yaml").read_text())
    assert os.path.isabs(stored["data"]["train"]) and os.path.isabs(stored["data"]["isolated_atoms"])
    assert os.path.samefile(stored["data"]["train"], DATA / "train.xyz")
    monkeypatch.chdir(elsewhere)
    assert main(["train", "--resume", os.path.relpath(start / "runs" / "x"), "--max-epochs", "2"]) == 0, \
        capsys.readouterr().err
    assert torch.load(start / "runs" / "x" / "checkpoint.pt", weights_only=True)["epoch"] == 2
