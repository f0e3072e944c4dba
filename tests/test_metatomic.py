"""The metatomic export: the file an engine loads without geoff gives geoff's own numbers.

metatomic-ase's calculator (the engine side: its own neighbour list, its own autograd for forces
and stress) against GeoffCalculator, in float64 to 1e-10 relative, on a molecule and on triclinic
periodic cells (one small enough that atoms see several images of each neighbour).
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

pytest.importorskip("metatomic.torch", reason="metatomic-torch is not installed (pip install 'geoff[metatomic]')")
pytest.importorskip("metatomic_ase", reason="metatomic-ase is not installed (pip install 'geoff[metatomic]')")

import geoff  # noqa: E402
import geoff.metatomic as gm  # noqa: E402
from geoff.errors import GeoffInputError  # noqa: E402
from metatomic_ase import MetatomicCalculator  # noqa: E402

from tests.models_under_test import MODEL_FACTORIES  # noqa: E402
from tests.structures import CUTOFF, SPECIES, ethanol, random_box, triclinic  # noqa: E402

TRICLINIC_BOX = np.array([[9.0, 0.0, 0.0], [2.5, 8.5, 0.0], [-1.5, 2.0, 8.0]])


def structures():
    return {"ethanol": ethanol(), "small-triclinic": triclinic(), "triclinic-box": random_box(30, TRICLINIC_BOX, seed=3)}


@pytest.fixture(scope="module", params=["egnn", "se3_transformer"])
def exported(request, tmp_path_factory):
    pot = MODEL_FACTORIES[request.param](SPECIES, CUTOFF)
    path = gm.export(pot, tmp_path_factory.mktemp("mta") / f"{request.param}.pt")
    return pot, path


@pytest.fixture(scope="module")
def egnn_file(tmp_path_factory):
    pot = MODEL_FACTORIES["egnn"](SPECIES, CUTOFF)
    return pot, gm.export(pot, tmp_path_factory.mktemp("mta") / "egnn-only.pt")


def assert_close(a, b, rel=1e-10):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(float(np.abs(b).max()), 1e-12)
    assert float(np.abs(a - b).max()) <= rel * scale, (float(np.abs(a - b).max()), scale)


@pytest.mark.parametrize("name", ["ethanol", "small-triclinic", "triclinic-box"])
def test_metatomic_ase_equals_geoff_calculator(exported, name):
    pot, path = exported
    atoms = structures()[name]
    ours, theirs = atoms.copy(), atoms.copy()
    ours.calc = geoff.GeoffCalculator(pot)
    theirs.calc = MetatomicCalculator(str(path))
    assert_close(theirs.get_potential_energy(), ours.get_potential_energy())
    assert_close(theirs.get_forces(), ours.get_forces())
    assert_close(theirs.get_potential_energies(), ours.get_potential_energies())
    if atoms.pbc.all():
        assert_close(theirs.get_stress(), ours.get_stress())


def test_file_declares_what_engines_need(exported):
    pot, path = exported
    info = gm.read_export_info(path)
    assert info["atomic_types"] == [1, 6, 8]
    assert info["neighbor_lists"] == [{"cutoff": CUTOFF, "full_list": True, "strict": True}]
    assert info["interaction_range"] == pytest.approx(CUTOFF * pot.hyperparameters()["num_layers"])
    assert (info["length_unit"], info["energy_unit"], info["dtype"]) == ("angstrom", "eV", "float64")
    assert info["extensions"] == []  # torch-cluster may be loaded here: the file must not ask for it


def test_batch_and_selected_atoms(egnn_file):
    """Several systems in one call equal each alone; selected atoms sum only their atomic energies."""
    from metatensor.torch import Labels
    from metatomic.torch import ModelOutput

    pot, path = egnn_file
    calc = MetatomicCalculator(str(path))
    batch = list(structures().values())
    together = calc.compute_energy(batch, compute_forces_and_stresses=True)
    for k, atoms in enumerate(batch):
        alone = calc.compute_energy(atoms, compute_forces_and_stresses=True)
        assert_close(together["energy"][k], alone["energy"], rel=1e-12)
        assert_close(together["forces"][k], alone["forces"], rel=1e-12)

    atoms = batch[2]
    chosen = [0, 3, 4, 17]
    selected = Labels(["system", "atom"], torch.tensor([[0, a] for a in chosen], dtype=torch.int32))
    out = calc.run_model(atoms, {"energy": ModelOutput(unit="eV", sample_kind="system")}, selected_atoms=selected)
    ref = atoms.copy()
    ref.calc = geoff.GeoffCalculator(pot)
    assert_close(float(out["energy"].block().values[0, 0].detach()), ref.get_potential_energies()[chosen].sum())


def test_float32_export(tmp_path):
    pot = MODEL_FACTORIES["egnn"](SPECIES, CUTOFF)
    path = gm.export(pot, tmp_path / "f32.pt", dtype="float32")
    assert gm.read_export_info(path)["dtype"] == "float32"
    atoms = ethanol()
    ours, theirs = atoms.copy(), atoms.copy()
    ours.calc = geoff.GeoffCalculator(pot)
    theirs.calc = MetatomicCalculator(str(path))
    assert_close(theirs.get_forces(), ours.get_forces(), rel=1e-5)


def test_loads_and_runs_in_a_process_that_cannot_import_geoff(egnn_file, tmp_path):
    """The file needs no geoff: a fresh interpreter that refuses to import geoff runs it."""
    pot, path = egnn_file
    (tmp_path / "model.pt").write_bytes(path.read_bytes())
    atoms = random_box(30, TRICLINIC_BOX, seed=3)
    np.save(tmp_path / "positions.npy", atoms.positions)
    np.save(tmp_path / "numbers.npy", atoms.numbers)
    script = textwrap.dedent(f"""
        import importlib.abc, json, sys
        class NoGeoff(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "geoff" or name.startswith("geoff."):
                    raise ImportError("geoff must not be imported here")
        sys.meta_path.insert(0, NoGeoff())
        import numpy as np
        from ase import Atoms
        from metatomic_ase import MetatomicCalculator
        atoms = Atoms(numbers=np.load("numbers.npy"), positions=np.load("positions.npy"),
                      cell={TRICLINIC_BOX.tolist()}, pbc=True)
        atoms.calc = MetatomicCalculator("model.pt")
        out = dict(energy=atoms.get_potential_energy(), forces=atoms.get_forces().tolist(),
                   stress=atoms.get_stress().tolist())
        assert not any(m == "geoff" or m.startswith("geoff.") for m in sys.modules)
        print(json.dumps(out))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    ours = atoms.copy()
    ours.calc = geoff.GeoffCalculator(pot)
    assert_close(out["energy"], ours.get_potential_energy())
    assert_close(out["forces"], ours.get_forces())
    assert_close(out["stress"], ours.get_stress())


def test_unknown_element_is_refused(egnn_file):
    from ase.build import molecule

    _, path = egnn_file
    atoms = molecule("NH3")
    atoms.calc = MetatomicCalculator(str(path))
    with pytest.raises(ValueError, match="atomic type '7'"):
        atoms.get_potential_energy()


def test_cli_export_metatomic(tmp_path, capsys):
    from geoff.cli.main import main

    pot = MODEL_FACTORIES["egnn"](SPECIES, CUTOFF)
    src = geoff.save(pot, tmp_path / "pot.pt")
    out = tmp_path / "model-metatomic.pt"
    assert main(["export", "--format", "metatomic", str(src), str(out)]) == 0
    text = capsys.readouterr().out
    assert "interaction range  10.5 Å" in text and "extensions needed  0" in text
    assert gm.read_export_info(out)["atomic_types"] == [1, 6, 8]
    assert main(["export", "--format", "metatomic", str(src), str(out), "--structure", "ethanol"]) == 2
    assert "--structure" in capsys.readouterr().err
    assert main(["export", str(src), str(tmp_path / "x.pt")]) == 2
    assert "--structure is required for --format openmm" in capsys.readouterr().err


def test_bad_dtype_is_refused():
    with pytest.raises(GeoffInputError, match="dtype"):
        gm.build_atomistic_model(MODEL_FACTORIES["egnn"](SPECIES, CUTOFF), dtype="float16")


def test_committee_exports_its_mean(tmp_path):
    """A committee's file gives the members' mean; its interaction range is its deepest member's."""
    a = MODEL_FACTORIES["egnn"](SPECIES, CUTOFF)               # 3 layers
    b = MODEL_FACTORIES["egnn-invariant"](SPECIES, CUTOFF)     # 2 layers
    committee = geoff.CommitteePotential.from_members([a, b])
    path = gm.export(committee, tmp_path / "committee.pt")
    assert gm.read_export_info(path)["interaction_range"] == pytest.approx(3 * CUTOFF)
    atoms = ethanol()
    ours, theirs = atoms.copy(), atoms.copy()
    ours.calc = geoff.GeoffCalculator(committee)
    theirs.calc = MetatomicCalculator(str(path))
    assert_close(theirs.get_potential_energy(), ours.get_potential_energy())
    assert_close(theirs.get_forces(), ours.get_forces())


@pytest.mark.parametrize("name", ["ethanol", "triclinic-box"])
def test_openmm_ml_runs_the_file_as_geoff_openmm_path(egnn_file, tmp_path, name):
    """OpenMM-ML 1.8 has no metatomic backend yet; its ``ase`` backend runs the file through
    metatomic-ase. That System gives what geoff's own OpenMM path (``MLPotential("geoff")``) gives,
    on OpenMM's Reference platform (doubles), to 1e-10 relative."""
    openmm = pytest.importorskip("openmm")
    pytest.importorskip("openmmml")
    from openmm import unit
    from openmmml import MLPotential

    from tests.test_openmm_plugin import topology_from_atoms

    pot, path = egnn_file
    atoms = structures()[name]
    top = topology_from_atoms(atoms)
    systems = {
        "metatomic": MLPotential("ase").createSystem(top, calculator=MetatomicCalculator(str(path))),
        "geoff": MLPotential("geoff", model=str(geoff.save(pot, tmp_path / "pot.pt"))).createSystem(
            top, backend="pythonforce"),
    }
    out = {}
    for key, system in systems.items():
        ctx = openmm.Context(system, openmm.VerletIntegrator(0.0005), openmm.Platform.getPlatformByName("Reference"))
        ctx.setPositions(atoms.positions / 10.0)
        state = ctx.getState(getEnergy=True, getForces=True)
        out[key] = (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
                    state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer))
    assert_close(out["metatomic"][0], out["geoff"][0])
    assert_close(out["metatomic"][1], out["geoff"][1])
