"""`geoff md` never loses work, never reports a blown-up run as success, never hangs, and says why.

Runs the shipped ethanol potential on the real engines (ASE, OpenMM CPU platform) with settings
that really blow up (a 20 fs time step, 5000 K), eager (--no-compile) to stay fast.
"""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.io import read, write

import geoff
from geoff.cli.main import main
from geoff.md.compiling import choose_path, expected_speedup
from geoff.md.health import HealthMonitor, MDFailure, Snapshot, nearest_neighbours
from geoff.threads import MIN_ATOMS_PER_EXTRA_THREAD, apply_threads, choose_threads
from tests.structures import SPECIES, water_box


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


#: An earlier, less trained version of ethanol-egnn (8.4 meV/Å): at a 20 fs time step its atoms
#: collide within a few steps, which the shipped potential's smoother surface no longer does.
COLLAPSING = str(Path(__file__).parent / "data" / "ethanol-egnn-collapses.pt")


def md(capsys, *args, potential="ethanol-egnn"):
    """(exit code, stdout, stderr) of an in-process `geoff md` with ``potential`` on ethanol."""
    rc = main(["md", potential, "ethanol", "--no-progress", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def csv_rows(path):
    return list(csv.DictReader(open(path)))


# ---------------------------------------------------------------- data loss


def test_existing_results_are_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert md(capsys, "--steps", "4", "--log-every", "2", "--no-compile", "--output", str(out))[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    rc, _, err = md(capsys, "--steps", "6", "--log-every", "2", "--no-compile", "--output", str(out))
    assert rc == 2 and "already holds the results" in err and "--overwrite" in err and f"{out}-2" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before   # nothing touched
    rc, _, _ = md(capsys, "--steps", "6", "--log-every", "2", "--no-compile", "--output", str(out), "--overwrite")
    assert rc == 0 and len(csv_rows(out / "energies.csv")) == 4


def _check_kept(out: Path, traj_name: str = "trajectory.traj", timestep_fs: float = 0.5):
    """The files of a failed run: log and trajectory agree frame for frame, plot and failing frame present."""
    rows = csv_rows(out / "energies.csv")
    assert len(rows) >= 1 and all(np.isfinite(float(r["total_eV"])) for r in rows)
    if traj_name.endswith(".traj"):
        assert len(read(out / traj_name, ":")) == len(rows)
    else:
        assert (out / traj_name).stat().st_size > 0
    assert (out / "energies.png").read_bytes()[:4] == b"\x89PNG"
    bad = read(out / "failed-frame.xyz")
    assert len(bad) == 9 and bad.info["step"] > round(float(rows[-1]["time_ps"]) * 1000 / timestep_fs) - 1
    assert not list(out.glob(".*.tmp"))
    return rows, bad


def _failed_step(err: str, timestep_fs: float) -> int:
    """The step named by "MD failed at step N (T ps)", checked against its time."""
    words = err.split("MD failed at step ")[1].split()
    step = int(words[0])
    assert words[1] == f"({step * timestep_fs / 1000:.4f}"
    return step


@pytest.mark.parametrize("timestep, cause", [
    (20.0, "apart"),        # the case as found: atoms collide within the first chunk
    (4.0, "temperature"),   # heats up over the first chunk: the monitor's temperature check
])
def test_too_long_time_step_stops_with_step_time_cause_and_fixes(tmp_path, capsys, timestep, cause):
    # before (time step 20 fs): exit 0, "mean temperature 19767 K", atoms kilometres apart
    out = tmp_path / "run"
    rc, stdout, err = md(capsys, "--timestep", str(timestep), "--steps", "400", "--log-every", "5", "--no-compile",
                         "--output", str(out), potential=COLLAPSING)
    assert rc == 3 and "Traceback" not in err
    step = _failed_step(err, timestep)
    assert 1 <= step <= 5 and cause in err and "smaller time step" in err
    assert "lower temperature" in err and "training range" in err
    rows = csv_rows(out / "energies.csv")
    assert len(rows) == 1 and len(read(out / "trajectory.traj", ":")) == 1   # the starting frame only
    bad = read(out / "failed-frame.xyz")
    assert bad.info["step"] == step and len(bad) == 9
    if cause == "temperature":
        assert bad.info["temperature_K"] > 900
        assert np.isfinite(bad.get_potential_energy()) and bad.get_forces().shape == (9, 3)
    assert stdout == ""                                     # no step ran well: no summary of the part that ran


def test_ase_blow_up_at_5000_k_is_an_md_failure_and_keeps_the_run(tmp_path, capsys):
    # before: exit 2 "atoms 3 and 5 are 0.236 Å apart ... duplicated atoms? wrong units?" and an empty folder
    out = tmp_path / "run"
    rc, stdout, err = md(capsys, "--ensemble", "nvt", "--steps", "2000", "--temperature", "5000", "--no-compile",
                         "--output", str(out))
    assert rc == 3 and "MD failed at step" in err and "duplicated atoms" not in err
    rows, bad = _check_kept(out)
    assert len(rows) > 5
    step = int(err.split("MD failed at step ")[1].split()[0])
    assert f"stopped at step {step}; the part that ran:" in stdout and "mean temperature" in stdout


def test_failure_while_equilibrating_records_nothing_but_the_failing_frame(tmp_path, capsys):
    out = tmp_path / "run"
    rc, _, err = md(capsys, "--equilibrate", "2000", "--steps", "10", "--temperature", "5000", "--no-compile",
                    "--output", str(out))
    assert rc == 3 and "equilibration failed at step" in err and "Nothing was recorded yet" in err
    assert sorted(p.name for p in out.iterdir()) == ["failed-frame.xyz"]


def test_engine_failure_inside_a_chunk_is_reported_at_its_step(tmp_path, capsys):
    # without the health checks the calculator's own collapse check stops the run inside a chunk
    out = tmp_path / "run"
    rc, _, err = md(capsys, "--timestep", "20", "--steps", "400", "--no-compile",
                    "--no-health-checks", "--log-every", "50", "--output", str(out), potential=COLLAPSING)
    assert rc == 3 and "the engine stopped" in err and "apart" in err
    assert "Check the structure" not in err
    step = _failed_step(err, 20.0)
    assert step % 50 != 0                          # the exact step, not the end of the chunk
    rows, bad = _check_kept(out, timestep_fs=20.0)
    assert bad.info["step"] == step and (step - 1) // 50 * 50 == round(float(rows[-1]["time_ps"]) * 1000 / 20.0)


def test_openmm_blow_up_at_5000_k_is_caught(tmp_path, capsys):
    pytest.importorskip("openmm")
    # before: exit 0, no warning, the molecule dissociated
    out = tmp_path / "run"
    rc, _, err = md(capsys, "--engine", "openmm", "--platform", "CPU", "--ensemble", "nvt", "--steps", "2000",
                    "--temperature", "5000", "--no-compile", "--output", str(out))
    assert rc == 3 and "MD failed at step" in err
    assert "bond broke" in err or "collapsing" in err or "temperature" in err
    _check_kept(out, "trajectory.dcd")


def test_healthy_runs_pass_the_checks(tmp_path, capsys):
    rc, stdout, err = md(capsys, "--ensemble", "nvt", "--steps", "400", "--temperature", "300", "--no-compile",
                         "--output", str(tmp_path / "run"))
    assert rc == 0, err
    assert not (tmp_path / "run" / "failed-frame.xyz").exists()


# ---------------------------------------------------------------- bad input, clear errors


@pytest.mark.parametrize("engine", ["ase", "openmm"])
def test_bad_structures_get_clear_errors_before_any_engine_object(tmp_path, capsys, engine):
    if engine == "openmm":
        pytest.importorskip("openmm")
    ethanol = molecule("CH3CH2OH")
    cases = {}
    a = ethanol.copy()
    a.positions[1] = a.positions[0]
    cases["coincident"] = (a, "apart")                      # before (OpenMM): OpenMMException traceback
    a = ethanol.copy()
    a.positions[1] = a.positions[0] + [0.01, 0, 0]
    cases["close"] = (a, "apart")                           # before (OpenMM): a finite energy, exit 0
    a = ethanol.copy()
    a.positions[2, 0] = np.nan
    cases["nan"] = (a, "NaN")                               # before (ASE): LinAlgError traceback
    cases["single"] = (Atoms("C", positions=[[0, 0, 0]]), "at least 2 atoms")  # before: ZeroDivisionError
    for name, (atoms, words) in cases.items():
        path = tmp_path / f"{name}.xyz"
        write(path, atoms)
        rc = main(["md", "ethanol-egnn", str(path), "--engine", engine, "--steps", "4", "--no-progress",
                   "--output", str(tmp_path / f"run-{name}")])
        err = capsys.readouterr().err
        assert rc == 2 and words in err and "Traceback" not in err, (name, err)
        assert not (tmp_path / f"run-{name}" / "energies.csv").exists()


@pytest.mark.parametrize("args, words", [
    (["--log-every", "0"], "--log-every"),                  # before: never ended (chunks of 0 steps)
    (["--steps", "-5"], "--steps"),                         # before: exit 0
    (["--timestep", "-1"], "--timestep"),                   # before: exit 0
    (["--timestep", "0"], "--timestep"),                    # before: LinAlgError traceback
    (["--timestep", "nan"], "--timestep"),
    (["--temperature", "-10"], "--temperature"),            # before: "positions ... are NaN" (blames the input)
    (["--threads", "0"], "--threads"),
])
def test_bad_arguments_are_argument_errors(tmp_path, capsys, args, words):
    with pytest.raises(SystemExit) as exc:
        main(["md", "ethanol-egnn", "ethanol", "--output", str(tmp_path / "run"), *args])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and words in err and "must be" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path, capsys):
    # before: RuntimeError traceback "Found no NVIDIA driver"
    rc, _, err = md(capsys, "--device", "cuda", "--steps", "2", "--output", str(tmp_path / "run"))
    assert rc == 2 and "no CUDA GPU" in err and "--device cpu" in err


def test_unwritable_output_is_a_clear_error(tmp_path, capsys):
    # before: FileNotFoundError / NotADirectoryError traceback (e.g. --output /proc/x)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    rc, _, err = md(capsys, "--steps", "2", "--output", str(blocker / "run"))
    assert rc == 2 and "cannot create the output folder" in err and "Traceback" not in err
    rc, _, err = md(capsys, "--steps", "2", "--output", str(blocker))
    assert rc == 2 and "is a file" in err


def test_library_refuses_bad_parameters_and_old_results(tmp_path):
    from geoff.ase.md import run_md

    calc = geoff.GeoffCalculator(geoff.EGNNPotential(SPECIES, cutoff=3.5, hidden=8, num_layers=1))
    with pytest.raises(geoff.GeoffInputError, match="log_every"):
        run_md(molecule("CH3CH2OH"), calc, steps=4, log_every=0, output_dir=tmp_path / "a", progress=False)
    run_md(molecule("CH3CH2OH"), calc, steps=2, log_every=1, output_dir=tmp_path / "b", progress=False)
    with pytest.raises(geoff.GeoffInputError, match="already holds"):
        run_md(molecule("CH3CH2OH"), calc, steps=2, output_dir=tmp_path / "b", progress=False, overwrite=False)


# ---------------------------------------------------------------- Ctrl-C


def test_ctrl_c_stops_cleanly_and_keeps_the_files(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(Path(geoff.__file__).parents[1]), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "geoff.cli.main", "md", "ethanol-egnn", "ethanol", "--steps",
                             "1000000", "--no-compile", "--no-progress", "--output", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 120
        while not list(out.glob(".trajectory.traj.*.tmp")) and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        # a frame written after the file appeared: the MD loop (and its Ctrl-C handler) is running
        tmp = list(out.glob(".trajectory.traj.*.tmp"))
        first_size = tmp[0].stat().st_size if tmp else 0
        while tmp and tmp[0].exists() and tmp[0].stat().st_size <= first_size and time.time() < deadline \
                and proc.poll() is None:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted at step" in stderr and "Traceback" not in stderr and "Kept in" in stderr
    rows = csv_rows(out / "energies.csv")
    assert len(rows) >= 2 and len(read(out / "trajectory.traj", ":")) == len(rows)
    assert (out / "energies.png").exists() and not list(out.glob(".*.tmp"))


# ---------------------------------------------------------------- the health monitor itself


def _snapshot(atoms, temperature=300.0, forces=None, step=10):
    return Snapshot(step, step * 5e-4, atoms.positions.copy(), (0.0, -1.0, 0.1, -0.9, temperature),
                    np.zeros((len(atoms), 3)) if forces is None else forces)


def test_health_monitor_names_each_kind_of_trouble():
    atoms = molecule("CH3CH2OH")
    mon = HealthMonitor(atoms.numbers, atoms.cell[:], atoms.pbc, "nvt", 300.0, 27)
    assert mon.start(_snapshot(atoms)) is None and len(mon.watched) == 9
    assert mon.check(_snapshot(atoms, temperature=850.0)) is None
    assert "temperature is 1200 K" in mon.check(_snapshot(atoms, temperature=1200.0))
    forces = np.zeros((9, 3))
    forces[4, 2] = 150.0
    assert "force on atom 4" in mon.check(_snapshot(atoms, forces=forces))
    close = atoms.copy()
    close.positions[3] = close.positions[0] + [0.3, 0, 0]
    assert "collapsing" in mon.check(_snapshot(close))
    gone = atoms.copy()
    gone.positions[3] += [-4.0, 0, 0]                       # the hydroxyl H leaves
    assert "atom 3" in mon.check(_snapshot(gone)) and "bond broke" in mon.check(_snapshot(gone))
    nan = atoms.copy()
    nan.positions[0, 0] = np.inf
    assert "not finite" in mon.check(_snapshot(nan))
    assert "not finite" in mon.check(Snapshot(1, 0.0, atoms.positions, (0.0, np.nan, 0.1, np.nan, 300.0)))
    off = HealthMonitor(atoms.numbers, atoms.cell[:], atoms.pbc, "nvt", 300.0, 27, enabled=False)
    off.start(_snapshot(atoms))
    assert off.check(_snapshot(gone)) is None and off.check(_snapshot(atoms, temperature=5000.0)) is None


def test_health_monitor_temperature_limits():
    atoms = molecule("H2O")
    water = HealthMonitor(atoms.numbers, atoms.cell[:], atoms.pbc, "nvt", 300.0, 9)
    # 9 degrees of freedom: the instantaneous temperature of an honest run exceeds 3x the target often
    assert water.temperature_limit_k > 3.5 * 300.0
    cold = HealthMonitor(atoms.numbers, atoms.cell[:], atoms.pbc, "nvt", 10.0, 9000)
    assert cold.temperature_limit_k == 500.0              # the floor, not 30 K
    nve = HealthMonitor(atoms.numbers, atoms.cell[:], atoms.pbc, "nve", 300.0, 9000)
    nve.start(_snapshot(atoms, temperature=400.0))
    assert nve.temperature_limit_k == pytest.approx(1200.0)   # from the starting temperature


def test_nearest_neighbours_periodic_match_ase():
    box = water_box(3)
    d, j = nearest_neighbours(box.positions, box.cell[:], box.pbc, 3.0)
    full = box.get_all_distances(mic=True)
    np.fill_diagonal(full, np.inf)
    np.testing.assert_allclose(d, full.min(axis=1), rtol=0, atol=1e-10)
    np.testing.assert_allclose(full[np.arange(len(box)), j], d, rtol=0, atol=1e-10)
    mol = molecule("CH3CH2OH")
    d, j = nearest_neighbours(mol.positions, mol.cell[:], mol.pbc, 1.2)
    full = mol.get_all_distances()
    np.fill_diagonal(full, np.inf)
    expected = full.min(axis=1)
    np.testing.assert_allclose(d, np.where(expected > 1.2, np.inf, expected), atol=1e-12)


def test_water_box_is_healthy_and_a_lost_atom_is_not():
    box = water_box(3)
    mon = HealthMonitor(box.numbers, box.cell[:], box.pbc, "nvt", 300.0, 3 * len(box))
    assert mon.start(_snapshot(box)) is None and len(mon.watched) == len(box)
    gas = molecule("H2O")
    gas.translate([1.0, 1.0, 1.0])
    other = molecule("H2O")
    other.translate([5.0, 5.0, 5.0])
    gas += other
    gas.set_cell(np.eye(3) * 10.0)
    gas.pbc = True
    mon = HealthMonitor(gas.numbers, gas.cell[:], gas.pbc, "nvt", 300.0, 18)
    assert mon.start(_snapshot(gas)) is None
    moved = gas.copy()
    moved.positions[1] -= [3.5, 0.0, 0.0]                  # an H torn from its O, across the cell face
    assert "bond broke: atom 1" in mon.check(_snapshot(moved))
    moved.wrap()
    assert "bond broke: atom 1" in mon.check(_snapshot(moved))
    moved.positions[1] = gas.positions[1] + [10.0, 0.0, 0.0]  # a whole cell away is the same place
    assert mon.check(_snapshot(moved)) is None


def test_md_failure_message_and_exit_code():
    exc = MDFailure(120, 0.06, "a bond broke.")
    exc.kept = "Kept in D."
    assert str(exc).startswith("MD failed at step 120 (0.0600 ps): a bond broke.") and str(exc).endswith("Kept in D.")
    assert exc.exit_code == 3 and isinstance(exc, geoff.GeoffError)


# ---------------------------------------------------------------- threads and the compiled path


def test_thread_policy():
    assert choose_threads(9, requested=3) == choose_threads(9, requested=3, environ={"OMP_NUM_THREADS": "2"})
    assert choose_threads(9, requested=3).threads == 3
    assert choose_threads(5000, environ={"OMP_NUM_THREADS": "2"}).threads == 2
    assert choose_threads(9, environ={}).threads == 1
    big = MIN_ATOMS_PER_EXTRA_THREAD
    assert choose_threads(big, environ={}, cores=4, idle=4).threads == 4
    assert choose_threads(big, environ={}, cores=4, idle=1).threads == 1      # a busy machine
    assert choose_threads(big - 1, environ={}, cores=4, idle=4).threads == 1
    with pytest.raises(geoff.GeoffInputError, match="OMP_NUM_THREADS"):
        choose_threads(9, environ={"OMP_NUM_THREADS": "zero"})
    apply_threads(choose_threads(9, requested=1))
    assert torch.get_num_threads() == 1


def test_summary_names_threads_and_path(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    rc, stdout, _ = md(capsys, "--steps", "4", "--log-every", "2", "--no-compile", "--output", str(tmp_path / "a"))
    assert rc == 0 and "threads          1 (9 atoms: one thread below" in stdout and "path             eager (--no-compile" in stdout
    rc, stdout, _ = md(capsys, "--steps", "4", "--log-every", "2", "--threads", "2", "--output", str(tmp_path / "b"))
    # 4 steps never pay for a compilation
    assert rc == 0 and "threads          2 (as requested)" in stdout and "path             eager (4 steps" in stdout


def test_compile_decision():
    eager = 3.7e-3                                         # s per ethanol step, eager
    assert choose_path(10_000, 9, eager, forced=False, compiler="/usr/bin/g++").compiled is False
    no_cxx = choose_path(10_000, 9, eager, forced=True, compiler=None)
    assert not no_cxx.compiled and "no C++ compiler" in no_cxx.reason
    assert choose_path(10, 9, eager, forced=True, compiler="/usr/bin/g++").compiled
    # 10 000 steps save 10 000 x 3.7 ms x (1 - 1/3.5) = 26 s > 20 s; 5 000 steps save 13 s < 20 s
    assert choose_path(10_000, 9, eager, compiler="g++", compile_seconds=20.0).compiled
    assert not choose_path(5_000, 9, eager, compiler="g++", compile_seconds=20.0).compiled
    # around 1 500 atoms the compiled path is no faster: never worth compiling
    assert expected_speedup(1536) == 1.0 and not choose_path(10**6, 1536, 0.4, compiler="g++").compiled
    assert choose_path(1000, 20_000, 20.0, compiler="g++", compile_seconds=60.0).compiled
    assert expected_speedup(9, "openmm") > 1.0 and expected_speedup(192, "openmm") == 1.0


def test_missing_compiler_falls_back_to_eager_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    rc, stdout, err = md(capsys, "--steps", "4", "--log-every", "2", "--compile", "--output", str(tmp_path / "a"))
    assert rc == 0 and "path             eager (no C++ compiler" in stdout
    assert err.count("\n") == 1 and "no C++ compiler" in err
