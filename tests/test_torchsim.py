"""geoff in TorchSim: GeoffModel against the ASE calculator, batches against single systems,
NVE against ASE's velocity Verlet, and the metatomic file through metatomic-torchsim."""

import numpy as np
import pytest
import torch

ts = pytest.importorskip("torch_sim", reason="torch-sim-atomistic is not installed (Python >= 3.12: "
                                             "pip install 'geoff[torchsim]')")

from ase import units  # noqa: E402
from ase.build import molecule  # noqa: E402
from ase.md.velocitydistribution import thermalize_momenta  # noqa: E402
from ase.md.verlet import VelocityVerlet  # noqa: E402
from torch_sim.integrators.nve import nve_init, nve_step  # noqa: E402

import geoff  # noqa: E402
from geoff.errors import GeoffInputError  # noqa: E402
from geoff.torchsim import GeoffModel  # noqa: E402

from tests.models_under_test import MODEL_FACTORIES  # noqa: E402
from tests.structures import CUTOFF, SPECIES, ethanol, random_box, triclinic, water_box  # noqa: E402

CPU = torch.device("cpu")
TRICLINIC_BOX = np.array([[9.0, 0.0, 0.0], [2.5, 8.5, 0.0], [-1.5, 2.0, 8.0]])


def state_of(atoms_list, dtype=torch.float64):
    return ts.initialize_state(atoms_list, device=CPU, dtype=dtype)


def assert_close(a, b, rel=1e-10):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(float(np.abs(b).max()), 1e-12)
    assert float(np.abs(a - b).max()) <= rel * scale, (float(np.abs(a - b).max()), scale)


@pytest.fixture(scope="module")
def egnn():
    return MODEL_FACTORIES["egnn"](SPECIES, CUTOFF)


def single_structures():
    return {"ethanol": ethanol(), "small-triclinic": triclinic(), "triclinic-box": random_box(30, TRICLINIC_BOX, seed=3)}


@pytest.mark.parametrize("model_name,neighbour_list", [("egnn", "geoff"), ("egnn", "torchsim"),
                                                       ("se3_transformer", "geoff")])
@pytest.mark.parametrize("name", ["ethanol", "small-triclinic", "triclinic-box"])
def test_one_system_equals_ase_calculator(model_name, neighbour_list, name):
    pot = MODEL_FACTORIES[model_name](SPECIES, CUTOFF)
    atoms = single_structures()[name]
    out = GeoffModel(pot, device=CPU, neighbour_list=neighbour_list)(state_of([atoms]))
    ref = atoms.copy()
    ref.calc = geoff.GeoffCalculator(pot)
    assert out["energy"].shape == (1,)
    assert_close(out["energy"][0], ref.get_potential_energy())
    assert_close(out["forces"], ref.get_forces())
    if atoms.pbc.all():
        assert_close(out["stress"][0], ref.get_stress(voigt=False))
    else:
        assert "stress" not in out


@pytest.mark.parametrize("neighbour_list", ["geoff", "torchsim"])
def test_batch_of_different_systems_equals_each_alone(egnn, neighbour_list):
    """Sizes and elements differ within each batch (TorchSim keeps one pbc per state, so the
    molecules and the periodic cells form two batches)."""
    model = GeoffModel(egnn, device=CPU, neighbour_list=neighbour_list)
    molecules = [ethanol(), molecule("H2O"), molecule("CH3OH"), ethanol(seed=1)]
    cells = [triclinic(), water_box(2, seed=1), random_box(30, TRICLINIC_BOX, seed=3)]
    for batch in (molecules, cells):
        together = model(state_of(batch))
        start = 0
        for k, atoms in enumerate(batch):
            alone = model(state_of([atoms]))
            n = len(atoms)
            assert_close(together["energy"][k], alone["energy"][0], rel=1e-12)
            assert_close(together["forces"][start:start + n], alone["forces"], rel=1e-12)
            if "stress" in alone:
                assert_close(together["stress"][k], alone["stress"][0], rel=1e-12)
            start += n


def test_nve_follows_ase_velocity_verlet(egnn):
    """The same start (positions, momenta) and time step: TorchSim's NVE and ASE's VelocityVerlet
    follow one trajectory, so TorchSim conserves energy exactly as ASE does."""
    atoms = ethanol()
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(0))
    dt, steps = 0.5 * units.fs, 40

    ref = atoms.copy()
    ref.calc = geoff.GeoffCalculator(egnn)
    dyn = VelocityVerlet(ref, timestep=dt)
    e_ase = [ref.get_total_energy()]
    for _ in range(steps):
        dyn.run(1)
        e_ase.append(ref.get_total_energy())

    model = GeoffModel(egnn, device=CPU)
    state = state_of([atoms])
    state.momenta = torch.tensor(atoms.get_momenta())  # ASE's internal units are TorchSim's (Å, eV, amu)
    state = nve_init(state, model, kT=0.0)

    def total(s):
        kinetic = ts.calc_kinetic_energy(masses=s.masses, momenta=s.momenta, system_idx=s.system_idx)
        return float(s.energy[0] + kinetic[0])

    e_ts = [total(state)]
    for _ in range(steps):
        state = nve_step(state, model, dt=dt)
        e_ts.append(total(state))
    e_ase, e_ts = np.array(e_ase), np.array(e_ts)
    assert np.ptp(e_ase) < 1e-4  # ASE conserves it (tiny model, 0.5 fs)
    np.testing.assert_allclose(e_ts, e_ase, rtol=0, atol=1e-9)
    np.testing.assert_allclose(state.positions.numpy(), ref.positions, rtol=0, atol=1e-9)


def test_runners_integrate_and_optimize(egnn):
    """TorchSim's own runners drive the model: an NVE run and a FIRE relaxation of 4 replicas."""
    replicas = [ethanol(seed=s) for s in range(4)]
    final = ts.integrate(system=state_of(replicas), model=GeoffModel(egnn, device=CPU),
                         integrator=ts.Integrator.nve, n_steps=5, timestep=0.0005, temperature=300)
    assert final.positions.shape == (4 * 9, 3) and torch.isfinite(final.positions).all()

    model = GeoffModel(egnn, device=CPU)
    start = model(state_of(replicas))["energy"]
    relaxed = ts.optimize(system=state_of(replicas), model=model, optimizer=ts.Optimizer.fire, max_steps=20)
    assert (model(relaxed)["energy"] < start).all()


def test_bad_input_is_refused(egnn):
    with pytest.raises(GeoffInputError, match="periodic"):
        GeoffModel(egnn, device=CPU, compute_stress=True)(state_of([ethanol()]))
    with pytest.raises(GeoffInputError, match="dtype"):
        GeoffModel(egnn, device=CPU)(state_of([ethanol()], dtype=torch.float32))
    with pytest.raises(GeoffInputError, match="not known to this potential"):
        GeoffModel(egnn, device=CPU)(state_of([molecule("NH3")]))
    with pytest.raises(GeoffInputError, match="neighbour_list"):
        GeoffModel(egnn, device=CPU, neighbour_list="cells")


def test_metatomic_torchsim_equals_native(egnn, tmp_path):
    """The exported metatomic file through metatomic-torchsim gives the native interface's numbers."""
    mts = pytest.importorskip("metatomic_torchsim", reason="metatomic-torchsim is not installed")
    import geoff.metatomic

    path = geoff.metatomic.export(egnn, tmp_path / "model.pt")
    theirs_model = mts.MetatomicModel(str(path), device=CPU)
    ours_model = GeoffModel(egnn, device=CPU)
    for batch in ([ethanol(), molecule("CH3OH")], [triclinic(), random_box(30, TRICLINIC_BOX, seed=3)]):
        state = state_of(batch)
        ours, theirs = ours_model(state), theirs_model(state)
        assert_close(theirs["energy"], ours["energy"])
        assert_close(theirs["forces"], ours["forces"])
        if batch[0].pbc.all():
            assert_close(theirs["stress"], ours["stress"])
