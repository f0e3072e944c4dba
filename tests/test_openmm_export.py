"""The exported TorchScript module: neighbour lists, units, subset, file, fresh-process load, bad input."""

import glob
import json
import os
import subprocess
import sys
import sysconfig
import textwrap

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule

import geoff
import geoff.openmm as gom
from geoff.errors import GeoffFileError, GeoffInputError
from geoff.units import EV_PER_ANGSTROM_TO_KJ_PER_MOL_PER_NM, EV_TO_KJ_PER_MOL
from geoff.openmm.forces import have_openmmtorch

from tests.structures import random_box

CUTOFF = 3.5


def small_potential(dtype=torch.float64):
    torch.manual_seed(0)
    return geoff.EGNNPotential(["H", "C", "O"], cutoff=CUTOFF, hidden=16, num_layers=2, num_basis=6,
                               energy_scale=2.0).to(dtype)


def test_neighbour_modes_and_ase_agree_on_periodic_box():
    cell = np.array([[13.0, 0.0, 0.0], [4.0, 12.0, 0.0], [-3.0, 3.0, 11.5]])
    atoms = random_box(60, cell, seed=1)
    pot = small_potential()
    ref = atoms.copy()
    ref.calc = geoff.GeoffCalculator(pot, neighbours="vesin")
    e_ref, f_ref = ref.get_potential_energy(), ref.get_forces()
    spec = gom.system_spec(atomic_numbers=atoms.numbers, periodic=True, box_vectors=cell / 10)
    for mode in gom.NEIGHBOUR_MODES:
        for outputs_forces in (True, False):
            module = gom.build_module(pot, spec, outputs_forces, mode)
            pos = torch.tensor(atoms.positions / 10, requires_grad=not outputs_forces)
            out = module(pos, torch.tensor(cell / 10))
            if outputs_forces:
                energy, forces = out
            else:
                energy = out
                forces = -torch.autograd.grad(energy, pos)[0]
            assert abs(float(energy.detach()) / EV_TO_KJ_PER_MOL - e_ref) < 1e-10 * abs(e_ref) + 1e-10
            np.testing.assert_allclose(forces.detach().numpy() / EV_PER_ANGSTROM_TO_KJ_PER_MOL_PER_NM, f_ref,
                                       atol=1e-10 * np.abs(f_ref).max())


def test_ml_subset_selects_atoms_and_zeroes_other_forces():
    """ML/MM: the module reads only the ML particles; forces on the others are exactly zero."""
    eth = molecule("CH3CH2OH")
    eth.rattle(0.05, seed=0)
    rng = np.random.default_rng(0)
    others = rng.normal(size=(5, 3)) * 3.0 + 20.0  # MM particles far away (any element, even none)
    positions = np.concatenate([others[:2], eth.positions, others[2:]])
    numbers = np.concatenate([[0, 11], eth.numbers, [17, 0, 0]])
    ml = list(range(2, 2 + len(eth)))
    pot = small_potential()
    module = gom.build_module(pot, gom.system_spec(atomic_numbers=numbers, ml_atoms=ml))
    energy, forces = module(torch.tensor(positions / 10))
    ref = eth.copy()
    ref.calc = geoff.GeoffCalculator(pot)
    assert abs(float(energy) / EV_TO_KJ_PER_MOL - ref.get_potential_energy()) < 1e-9
    f = forces.numpy() / EV_PER_ANGSTROM_TO_KJ_PER_MOL_PER_NM
    np.testing.assert_allclose(f[ml], ref.get_forces(), atol=1e-10)
    assert np.all(f[[0, 1, 11, 12, 13]] == 0.0)


def test_bad_input_is_refused_at_creation():
    pot = small_potential()
    eth = molecule("CH3CH2OH")
    with pytest.raises(GeoffInputError, match="not known to this potential"):
        gom.build_module(pot, gom.system_spec(atomic_numbers=[1, 1, 7]))  # N unknown
    with pytest.raises(GeoffInputError, match="empty"):
        gom.system_spec(atomic_numbers=eth.numbers, ml_atoms=[])
    with pytest.raises(GeoffInputError, match="out of range"):
        gom.system_spec(atomic_numbers=eth.numbers, ml_atoms=[0, 1, 9])
    with pytest.raises(GeoffInputError, match="no element"):
        gom.system_spec(atomic_numbers=[1, 0, 8])
    small_box = np.diag([0.6, 0.9, 0.9])  # 6 Å < 2 × 3.5 Å
    with pytest.raises(GeoffInputError, match="twice"):
        gom.build_module(pot, gom.system_spec(atomic_numbers=[1, 8], periodic=True, box_vectors=small_box))
    with pytest.raises(GeoffInputError, match="neighbour_list"):
        gom.build_module(pot, gom.system_spec(atomic_numbers=[1, 8]), neighbour_list="octree")


def test_box_shrinking_below_cutoff_at_run_time_raises():
    pot = small_potential()
    module = gom.build_module(pot, gom.system_spec(atomic_numbers=[1, 8], periodic=True))
    pos = torch.tensor([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0]], dtype=torch.float64)
    module(pos, torch.eye(3, dtype=torch.float64) * 1.0)  # 10 Å box: fine
    with pytest.raises(Exception, match="thinner than twice the cutoff"):
        module(pos, torch.eye(3, dtype=torch.float64) * 0.6)


def test_wrong_format_version_is_refused(tmp_path):
    pot = small_potential()
    path = geoff.save(pot, tmp_path / "pot.pt")
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, path)
    with pytest.raises(GeoffFileError, match="format version 99"):
        gom.export(str(path), tmp_path / "model.pt", atomic_numbers=[1, 8])


def test_export_writes_description_and_keeps_caller_model(tmp_path):
    pot = small_potential(torch.float64)
    path = gom.export(pot, tmp_path / "model.pt", atomic_numbers=[8, 1, 1], dtype="float32")
    info = gom.read_export_info(path)
    assert info["outputs_forces"] is False and info["periodic"] is False and info["dtype"] == "float32"
    assert info["units"] == {"positions": "nm", "energy": "kJ/mol", "forces": "kJ/mol/nm"}
    assert pot.reference_energies.dtype == torch.float64  # export converted a copy, not the caller's model
    assert all(p.requires_grad for p in pot.parameters())
    assert not any(p.name.startswith(".model.pt") for p in tmp_path.iterdir())  # atomic write left no temp file


def _nvidia_library_path():
    """openmm-torch's wheel links torch's CUDA libraries that pip puts under site-packages/nvidia;
    `import torch` would put them on the path, so a process that must not import torch names them."""
    site = sysconfig.get_paths()["purelib"]
    return os.pathsep.join(sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib"))))


@pytest.mark.skipif(not have_openmmtorch(), reason="openmm-torch does not import here")
@pytest.mark.parametrize("periodic", [False, True])
def test_exported_file_runs_in_fresh_process_without_geoff(tmp_path, periodic):
    """openmm + openmmtorch only (no geoff, no torch_cluster): load, run steps, same energy.

    (openmm-torch's own Python wrapper imports torch when a TorchForce is made from a file;
    the script itself never does, and geoff and torch_cluster are never loaded.)"""
    pot = small_potential(torch.float32)
    eth = molecule("CH3CH2OH")
    eth.rattle(0.05, seed=0)
    box = np.diag([1.2, 1.3, 1.4]) if periodic else None
    outputs_forces = not periodic  # one case of each
    path = gom.export(pot, tmp_path / "model.pt", atomic_numbers=eth.numbers, periodic=periodic, box_vectors=box,
                      outputs_forces=outputs_forces)
    module = torch.jit.load(str(path))
    args = [torch.tensor(eth.positions / 10)] + ([torch.tensor(box)] if periodic else [])
    out = module(*args)
    expected = float((out[0] if outputs_forces else out).detach())
    np.save(tmp_path / "pos.npy", eth.positions / 10)
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import openmm, openmmtorch
        force = openmmtorch.TorchForce({str(path)!r})
        force.setOutputsForces({outputs_forces})
        force.setUsesPeriodicBoundaryConditions({periodic})
        system = openmm.System()
        for m in {eth.get_masses().tolist()}:
            system.addParticle(m)
        if {periodic}:
            system.setDefaultPeriodicBoxVectors(openmm.Vec3(1.2, 0, 0), openmm.Vec3(0, 1.3, 0), openmm.Vec3(0, 0, 1.4))
        system.addForce(force)
        ctx = openmm.Context(system, openmm.VerletIntegrator(0.0005), openmm.Platform.getPlatformByName("Reference"))
        ctx.setPositions(np.load({str(tmp_path / "pos.npy")!r}))
        e0 = ctx.getState(getEnergy=True).getPotentialEnergy()._value
        ctx.getIntegrator().step(5)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("geoff", "torch_cluster"))
        print(json.dumps({{"energy": e0, "loaded": loaded}}))
    """)
    env = dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join(
        p for p in [_nvidia_library_path(), os.environ.get("LD_LIBRARY_PATH", "")] if p))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                          cwd=str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["loaded"] == [], result["loaded"][:20]
    assert abs(result["energy"] - expected) <= 1e-5 * abs(expected)
