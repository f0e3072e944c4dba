"""Never lose a run: kill a training process with SIGKILL mid-run, resume it, and
reach the same weights as an uninterrupted run (float64, to round-off)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.test_training import DATA, tiny_config

pytestmark = pytest.mark.skipif(not (DATA / "train.xyz").exists(), reason="ethanol data not available")

EPOCHS = 60  # 4 steps each: long enough to be killed mid-run, a few seconds in all


def _geoff(*args, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "geoff.cli.main", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw)


def _config(tmp_path, name):
    cfg = tiny_config(tmp_path / name, dtype="float64", optim={"max_epochs": EPOCHS},
                      checkpoint={"every_steps": 3})
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _state(run_dir):
    return torch.load(Path(run_dir) / "checkpoint.pt", weights_only=True)


def test_sigkill_then_resume_reaches_the_same_weights(tmp_path):
    # 1. uninterrupted reference run
    ref = _geoff("train", str(_config(tmp_path, "ref")))
    out, _ = ref.communicate(timeout=600)
    assert ref.returncode == 0, out.decode()

    # 2. the same run, killed with SIGKILL once a checkpoint from inside an epoch exists
    victim = _geoff("train", str(_config(tmp_path, "killed")))
    ckpt = tmp_path / "killed" / "checkpoint.pt"
    killed_at = None
    deadline = time.time() + 600
    while time.time() < deadline and victim.poll() is None:
        if ckpt.exists():
            try:
                state = _state(tmp_path / "killed")
            except Exception:  # noqa: BLE001 - the file is replaced atomically; retry on a race with os.replace
                continue
            if state["global_step"] >= 12 and state["step_in_epoch"] > 0:
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                killed_at = state
                break
        time.sleep(0.005)
    assert killed_at is not None, "the run finished before it could be killed; raise EPOCHS"
    assert victim.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "last.pt").exists()  # it really did not finish
    state = _state(tmp_path / "killed")
    assert state["global_step"] < EPOCHS * 4

    # 3. resume and compare
    resumed = _geoff("train", "--resume", str(tmp_path / "killed"))
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out.decode()
    a, b = _state(tmp_path / "ref"), _state(tmp_path / "killed")
    assert a["global_step"] == b["global_step"] == EPOCHS * 4 and a["epoch"] == b["epoch"] == EPOCHS
    for part in ("model",):
        for k in a[part]:
            torch.testing.assert_close(a[part][k], b[part][k], rtol=0, atol=1e-12, msg=f"{part}.{k}")
    for k in a["ema"]["shadow"]:
        torch.testing.assert_close(a["ema"]["shadow"][k], b["ema"]["shadow"][k], rtol=0, atol=1e-12)
    assert a["schedule"] == b["schedule"]
    assert [r["valid_loss"] for r in a["history"]] == pytest.approx([r["valid_loss"] for r in b["history"]],
                                                                     rel=1e-10)
    # the potentials written at the end (EMA weights) agree as well
    pa = torch.load(tmp_path / "ref" / "last.pt", weights_only=True)["state_dict"]
    pb = torch.load(tmp_path / "killed" / "last.pt", weights_only=True)["state_dict"]
    for k in pa:
        torch.testing.assert_close(pa[k], pb[k], rtol=0, atol=1e-12)
