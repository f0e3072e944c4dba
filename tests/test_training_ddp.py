"""Data-parallel training: `geoff train` under torchrun with 2 CPU processes (gloo)
reaches the weights of single-process training on the same global batch."""

import os
import socket
import subprocess
import sys

import pytest
import torch
import yaml

from tests.test_training import DATA, tiny_config

pytestmark = pytest.mark.skipif(not (DATA / "train.xyz").exists(), reason="ethanol data not available")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_matches_single_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GEOFF_DDP_BACKEND": "gloo"}
    paths = {}
    for name in ("single", "ddp"):
        # global batch 4 → 2 structures per worker; float64 so that only summation order differs
        cfg = tiny_config(tmp_path / name, dtype="float64", optim={"max_epochs": 2, "batch_size": 4})
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(cfg))
    single = subprocess.run([sys.executable, "-m", "geoff.cli.main", "train", str(paths["single"])], env=env,
                            capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
                          "-m", "geoff.cli.main", "train", str(paths["ddp"])], env=env,
                         capture_output=True, text=True, timeout=600)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert ddp.stdout.count("run folder") == 1  # only rank 0 reports
    a = torch.load(tmp_path / "single" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 2 * 4
    moved = max(float((a["model"][k] - a["ema"]["shadow"][k]).abs().max()) for k in a["model"])
    assert moved > 1e-6  # training did change the weights
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=1e-10, msg=k)
    for r1, r2 in zip(a["history"], b["history"]):
        assert r1["valid_loss"] == pytest.approx(r2["valid_loss"], rel=1e-10)
