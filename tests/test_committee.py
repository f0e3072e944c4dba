"""Committees: mean and spread against numpy on the members' own outputs, identical members, the
file round trip (and a damaged committee file), rotation invariance of the spreads, the existing
evaluation paths (compiled-free: Potential.forward, TorchScript export, OpenMM) and `geoff committee build`."""

import numpy as np
import pytest
import torch
from ase.build import molecule
from scipy.spatial.transform import Rotation

import geoff
from geoff.cli.main import main
from geoff.errors import GeoffFileError, GeoffInputError
from geoff.graph import complete_graph
from geoff.io import build_committee
from geoff.models.committee import CommitteePotential, committee_statistics


def _member(seed, species=("H", "C", "O"), cutoff=4.0, dtype=torch.float64, **kw):
    torch.manual_seed(seed)
    pot = geoff.EGNNPotential(list(species), cutoff=cutoff, hidden=8, num_layers=2, num_basis=4,
                              reference_energies={"H": -13.6 + seed, "C": -1000.0, "O": -2040.0 - seed}, **kw)
    return pot.to(dtype).eval()


def _ethanol(seed=0):
    atoms = molecule("CH3CH2OH")
    atoms.positions += np.random.default_rng(seed).normal(scale=0.05, size=atoms.positions.shape)
    return atoms


def _evaluate(potential, atoms):
    a = atoms.copy()
    a.calc = geoff.GeoffCalculator(potential)
    return a.get_potential_energy(), a.get_forces(), a.calc


def test_two_different_members_mean_and_std_equal_numpy_on_their_outputs():
    members = [_member(1), _member(2)]
    atoms = _ethanol()
    outs = [_evaluate(m, atoms) for m in members]
    e = np.array([o[0] for o in outs])
    f = np.stack([o[1] for o in outs])
    energy, forces, calc = _evaluate(build_committee(members), atoms)
    assert energy == pytest.approx(e.mean(), abs=1e-10)
    np.testing.assert_allclose(forces, f.mean(0), atol=1e-10)
    r = calc.results
    assert r["energy_std"] == pytest.approx(np.std(e), abs=1e-10) and r["energy_std"] > 0.1
    expected = np.sqrt(np.sum(np.std(f, axis=0) ** 2, axis=1))         # [N]: norm of per-component std
    np.testing.assert_allclose(r["forces_std"], expected, atol=1e-10)
    assert r["forces_std"].shape == (len(atoms),) and r["forces_std"].min() > 0
    assert r["max_force_std"] == pytest.approx(expected.max(), abs=1e-10)
    assert calc.get_property("max_force_std", calc.atoms) == r["max_force_std"]
    np.testing.assert_allclose(r["member_energies"], e, atol=1e-10)
    # Potential.forward (used by evaluation, training code and the compiled path) gives the same mean
    out = build_committee(members)(complete_graph(atoms.positions, atoms.numbers, dtype=torch.float64))
    assert float(out["energy"][0].detach()) == pytest.approx(e.mean(), abs=1e-10)
    np.testing.assert_allclose(out["forces"].detach().numpy(), f.mean(0), atol=1e-10)


def test_committee_of_identical_members_has_zero_spread_and_the_member_prediction():
    member = _member(3)
    atoms = _ethanol(1)
    e1, f1, _ = _evaluate(member, atoms)
    energy, forces, calc = _evaluate(build_committee([member, member, member]), atoms)
    assert energy == pytest.approx(e1, abs=1e-10)
    np.testing.assert_allclose(forces, f1, atol=1e-10)
    assert calc.results["energy_std"] < 1e-10 and calc.results["max_force_std"] < 1e-10


def test_spreads_are_rotation_invariant():
    committee = build_committee([_member(1), _member(2), _member(4)])
    atoms = _ethanol(2)
    _, f, calc = _evaluate(committee, atoms)
    e_std, f_std = calc.results["energy_std"], calc.results["forces_std"].copy()
    rotated = atoms.copy()
    R = Rotation.random(random_state=7).as_matrix()
    rotated.positions = atoms.positions @ R.T + np.array([1.0, -2.0, 0.5])
    _, f_rot, calc_rot = _evaluate(committee, rotated)
    assert calc_rot.results["energy_std"] == pytest.approx(e_std, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(calc_rot.results["forces_std"], f_std, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(f_rot, f @ R.T, atol=1e-10)                # mean forces rotate


def test_statistics_function_on_known_numbers():
    e = np.array([1.0, 3.0])
    f = np.zeros((2, 2, 3))
    f[0, 0] = [1.0, 0.0, 0.0]
    f[1, 0] = [-1.0, 0.0, 2.0]
    s = committee_statistics(e, f)
    assert s["energy"] == 2.0 and s["energy_std"] == 1.0
    # atom 0: per-component std (1, 0, 1) → norm √2; atom 1: 0
    np.testing.assert_allclose(s["forces_std"], [np.sqrt(2.0), 0.0], atol=1e-15)
    assert s["max_force_std"] == pytest.approx(np.sqrt(2.0))


def test_file_round_trip_and_cli_build(tmp_path, capsys):
    members = [_member(1), _member(2)]
    paths = []
    for k, m in enumerate(members):
        paths.append(tmp_path / f"m{k}.pt")
        geoff.save(m, paths[-1], metadata={"trained": f"seed {k}"})
    assert main(["committee", "build", *map(str, paths), "-o", str(tmp_path / "c.pt")]) == 0
    assert "committee of 2 members" in capsys.readouterr().out
    loaded = geoff.load(tmp_path / "c.pt")
    assert isinstance(loaded, CommitteePotential) and loaded.num_members == 2
    assert loaded.reference_energies.dtype == torch.float64
    assert loaded.metadata["committee_members"] == [str(p) for p in paths]
    for a, b in zip(loaded.members, members):
        for (na, ta), (nb, tb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert na == nb and torch.equal(ta, tb)
    atoms = _ethanol()
    e_direct, f_direct, c_direct = _evaluate(build_committee(members), atoms)
    e_file, f_file, c_file = _evaluate(tmp_path / "c.pt", atoms)               # a path works too
    assert e_file == e_direct and np.array_equal(f_file, f_direct)
    assert c_file.results["max_force_std"] == c_direct.results["max_force_std"]
    # an existing output is not replaced silently
    assert main(["committee", "build", *map(str, paths), "-o", str(tmp_path / "c.pt")]) == 2
    assert "exists; give another --output, or --overwrite" in capsys.readouterr().err


def test_members_must_share_species_and_cutoff(tmp_path, capsys):
    with pytest.raises(GeoffInputError, match="share their species in the same order"):
        build_committee([_member(1), _member(2, species=("H", "O", "C"))])
    with pytest.raises(GeoffInputError, match="share the cutoff: member 0 has 4.0 Å, member 1 has 5.0 Å"):
        build_committee([_member(1), _member(2, cutoff=5.0)])
    with pytest.raises(GeoffInputError, match="at least two members"):
        build_committee([_member(1)])
    geoff.save(_member(1), tmp_path / "a.pt")
    geoff.save(_member(2, cutoff=5.0), tmp_path / "b.pt")
    assert main(["committee", "build", str(tmp_path / "a.pt"), str(tmp_path / "b.pt"), "-o", str(tmp_path / "c.pt")]) == 2
    assert "share the cutoff" in capsys.readouterr().err and not (tmp_path / "c.pt").exists()


def test_a_committee_of_committees_is_flattened_and_mixed_dtypes_widen():
    inner = build_committee([_member(1), _member(2)])
    c = build_committee([inner, _member(3, dtype=torch.float32)])
    assert c.num_members == 3 and c.reference_energies.dtype == torch.float64


def test_damaged_committee_configs_are_refused_when_loading(tmp_path):
    geoff.save(build_committee([_member(1), _member(2)]), tmp_path / "c.pt")
    payload = torch.load(tmp_path / "c.pt", weights_only=True)

    def bad(edit, match):
        p = {**payload, "config": {"members": [dict(m, config=dict(m["config"])) for m in payload["config"]["members"]]}}
        edit(p)
        torch.save(p, tmp_path / "bad.pt")
        with pytest.raises(GeoffFileError, match=match):
            geoff.load(tmp_path / "bad.pt")

    bad(lambda p: p["config"]["members"][1]["config"].update(hidden=10 ** 9), "'hidden' = 1000000000 is larger")
    bad(lambda p: p["config"]["members"][0].update(model_type="nope"), "unknown model type 'nope'")
    bad(lambda p: p["config"].update(members=[]), "needs 'members': a non-empty list")
    bad(lambda p: p["config"].update(members=p["config"]["members"] * 1000), "lists 2000 committee members")
    bad(lambda p: p["config"]["members"][1]["config"].update(cutoff=6.0), "share the cutoff")


def test_torchscript_export_and_openmm_use_the_mean(tmp_path):
    openmm = pytest.importorskip("openmm")
    from geoff.openmm import export
    from geoff.units import EV_TO_KJ_PER_MOL

    committee = build_committee([_member(1), _member(2)])
    atoms = _ethanol()
    energy, forces, _ = _evaluate(committee, atoms)
    export(committee, tmp_path / "c_ts.pt", atomic_numbers=atoms.numbers)
    module = torch.jit.load(str(tmp_path / "c_ts.pt"))
    e = module(torch.tensor(atoms.positions / 10.0, dtype=torch.float64))
    assert float(e) == pytest.approx(energy * EV_TO_KJ_PER_MOL, abs=1e-8)
    import openmm.app as app
    from openmmml import MLPotential

    geoff.save(committee, tmp_path / "c.pt")
    top = app.Topology()
    res = top.addResidue("ETH", top.addChain())
    for s in atoms.get_chemical_symbols():
        top.addAtom(s, app.Element.getBySymbol(s), res)
    system = MLPotential("geoff", model=str(tmp_path / "c.pt")).createSystem(top)
    ctx = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    ctx.setPositions(atoms.positions * 0.1)
    state = ctx.getState(getEnergy=True, getForces=True)
    kj = openmm.unit.kilojoule_per_mole
    assert state.getPotentialEnergy().value_in_unit(kj) == pytest.approx(energy * EV_TO_KJ_PER_MOL, abs=1e-6)
    f = state.getForces(asNumpy=True).value_in_unit(kj / openmm.unit.angstrom) / EV_TO_KJ_PER_MOL
    np.testing.assert_allclose(f, forces, atol=1e-8)


def test_single_potential_has_no_committee_results():
    from ase.calculators.calculator import PropertyNotImplementedError

    atoms = _ethanol()
    atoms.calc = geoff.GeoffCalculator(_member(1))
    with pytest.raises(PropertyNotImplementedError):
        atoms.calc.get_property("max_force_std", atoms)


def test_committee_uncertainty_over_structures_matches_the_calculator():
    from geoff.ase import committee_uncertainty

    committee = build_committee([_member(1), _member(2)])
    frames = [_ethanol(k) for k in range(3)]
    u = committee_uncertainty(committee, frames)
    for k, atoms in enumerate(frames):
        energy, forces, calc = _evaluate(committee, atoms)
        assert u["energy"][k] == energy and u["max_force_std"][k] == calc.results["max_force_std"]
        np.testing.assert_array_equal(u["forces_std"][k], calc.results["forces_std"])
    with pytest.raises(GeoffInputError, match="needs a committee potential"):
        committee_uncertainty(_member(1), frames)
