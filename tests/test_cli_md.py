"""`geoff md` end to end through the installed console script."""

import csv
import subprocess
import sys
from pathlib import Path

import torch

import geoff
from tests.structures import SPECIES


def test_geoff_md_writes_trajectory_log_and_plot(tmp_path):
    torch.manual_seed(0)
    pot = geoff.EGNNPotential(SPECIES, cutoff=4.0, hidden=16, num_layers=2, energy_scale=5.0)
    path = geoff.save(pot, tmp_path / "pot.pt")
    out = tmp_path / "run"
    exe = Path(sys.executable).with_name("geoff")
    res = subprocess.run([str(exe), "md", str(path), "ethanol", "--steps", "40", "--timestep", "0.5",
                          "--temperature", "300", "--equilibrate", "20", "--output", str(out),
                          "--no-progress"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "steps/s" in res.stdout and "meV/atom/ps" in res.stdout and "after 20 steps at 300.0 K" in res.stdout
    from ase.io import read

    frames = read(out / "trajectory.traj", ":")
    assert len(frames) == 5 and len(frames[0]) == 9
    rows = list(csv.DictReader(open(out / "energies.csv")))
    assert len(rows) == 5 and float(rows[-1]["time_ps"]) == 0.02
    assert (out / "energies.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob("*.tmp"))


def test_geoff_md_reports_bad_input_clearly(tmp_path):
    exe = Path(sys.executable).with_name("geoff")
    res = subprocess.run([str(exe), "md", str(tmp_path / "nope.pt"), "ethanol", "--steps", "1"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    assert "no potential file" in res.stderr and "Traceback" not in res.stderr
