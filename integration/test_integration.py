"""`make integration`: every end-to-end script's main with short settings, its results checked.

The scripts' own defaults (100 ps of NVT, 10 000 OpenMM steps, ...) are the full runs; here each
runs for seconds to check that it still works end to end and reports sane numbers.
"""

import json

import numpy as np
import pytest

import ethanol_stability
import ipi_metatomic
import openmm_benchmark
import openmm_ethanol_nvt
import openmm_water_box_nvt


def test_ethanol_stability_short(tmp_path):
    rc = ethanol_stability.main(["--nvt-ps", "0.05", "--nve-ps", "0.05", "--output", str(tmp_path)])
    result = json.loads((tmp_path / "stability.json").read_text())
    assert rc == 0 and result["bonding_changed_at_ps"] is None
    assert np.isfinite(result["nve_drift_meV_per_atom_per_ps"]) and result["steps_per_s"] > 0
    assert (tmp_path / "stability.png").stat().st_size > 0


@pytest.mark.parametrize("ensemble", ["nvt", "nve"])
def test_openmm_ethanol_short(tmp_path, ensemble):
    res = openmm_ethanol_nvt.main(["--steps", "40", "--ensemble", ensemble, "--platform", "Reference",
                                   "--output", str(tmp_path), "--no-progress"])
    assert res.steps_per_s > 0 and np.isfinite(res.drift_mev_per_atom_per_ps)
    assert 0 < res.mean_temperature_k < 2000


def test_openmm_water_box_short(tmp_path):
    res = openmm_water_box_nvt.main(["--box-nm", "1.2", "--steps", "10", "--platform", "Reference",
                                     "--output", str(tmp_path), "--no-progress"])
    assert res.steps_per_s > 0 and np.isfinite(res.mean_temperature_k)


def test_openmm_benchmark_short(tmp_path):
    results = openmm_benchmark.main(["--steps", "20", "--box-nm", "1.2", "--repeats", "1", "--platform", "Reference",
                                     "--output", str(tmp_path)])
    assert results and all(r["steps_per_s"] > 0 for r in results)
    assert (tmp_path / "results.json").exists()


def test_ipi_metatomic_short(tmp_path):
    pytest.importorskip("ipi", reason="i-PI is not installed (pip install ipi)")
    pytest.importorskip("metatomic.torch", reason="metatomic-torch is not installed")
    result = ipi_metatomic.main(["--steps", "20", "--output", str(tmp_path)])
    for errors in result["driver_relative_errors"].values():
        assert max(errors.values()) < 1e-10
    run = result["ipi_nve"]
    assert run["steps"] == 20 and run["first_potential_error_ev"] < 1e-6
    assert run["conserved_range_mev"] < 1.0
