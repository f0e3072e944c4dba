"""`geoff export`, `geoff md --engine openmm` and the fast OpenMM integration scripts, end to end."""

import importlib.util
import os

import numpy as np
import pytest
import torch

import geoff

pytest.importorskip("openmm")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def potential_file(tmp_path_factory):
    torch.manual_seed(0)
    pot = geoff.EGNNPotential(["H", "C", "O"], cutoff=3.5, hidden=16, num_layers=2, num_basis=6)
    return str(geoff.save(pot, tmp_path_factory.mktemp("pot") / "small.pt"))


def _script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "integration", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_export_and_openmm_md(potential_file, tmp_path, capsys):
    from geoff.cli.main import main
    from geoff.openmm import read_export_info

    out = tmp_path / "model.pt"
    assert main(["export", potential_file, str(out), "--structure", "ethanol", "--ml-atoms", "0-8"]) == 0
    assert read_export_info(out)["ml_atoms"] == list(range(9))
    assert main(["md", potential_file, "ethanol", "--engine", "openmm", "--platform", "Reference", "--steps", "20",
                 "--timestep", "0.25", "--log-every", "5", "--output", str(tmp_path / "md"), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "ns/day" in text and "drift" in text
    for name in ("trajectory.dcd", "energies.csv", "energies.png"):
        assert (tmp_path / "md" / name).stat().st_size > 0
    log = np.loadtxt(tmp_path / "md" / "energies.csv", delimiter=",", skiprows=1)
    assert log.shape == (5, 5) and np.all(np.isfinite(log))
    assert main(["md", potential_file, "ethanol", "--engine", "openmm", "--platform", "Reference", "--steps", "4",
                 "--ensemble", "nvt", "--log-every", "2", "--trajectory-format", "pdb", "--backend", "pythonforce",
                 "--output", str(tmp_path / "md-pdb"), "--no-progress"]) == 0
    assert (tmp_path / "md-pdb" / "trajectory.pdb").read_text().count("MODEL") == 3
    assert main(["export", potential_file, str(out), "--structure", "ethanol", "--ml-atoms", "0-99"]) == 2


def test_integration_ethanol_nvt_runs(tmp_path):
    res = _script("openmm_ethanol_nvt").main(["--potential", "random", "--steps", "20", "--output",
                                               str(tmp_path), "--no-progress"])
    assert res.steps_per_s > 0 and np.isfinite(res.drift_mev_per_atom_per_ps)


def test_integration_water_box_nvt_runs(tmp_path):
    res = _script("openmm_water_box_nvt").main(["--box-nm", "1.2", "--steps", "4", "--output", str(tmp_path),
                                                 "--no-progress"])
    assert res.steps_per_s > 0 and 100 < res.mean_temperature_k < 600
