"""DFT labels through PySCF (`geoff label`): units and agreement with PySCF called directly, forces
against finite differences, failed SCFs, restart after SIGKILL, bad input refused before any DFT,
and a labelled file that trains. Tiny molecules and minimal basis sets: seconds each."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.io import read, write
from ase.units import Bohr, Hartree

pyscf = pytest.importorskip("pyscf")
from pyscf import dft, gto, scf  # noqa: E402

from geoff.cli.main import main  # noqa: E402
from geoff.dft import DFTSettings, compute, frame_key, label_structures, parse_method  # noqa: E402
from geoff.dft.label import repair_tail  # noqa: E402
from geoff.errors import GeoffInputError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _waters(n, seed=0, scale=0.05):
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        a = molecule("H2O")
        a.positions += rng.normal(scale=scale, size=a.positions.shape)
        frames.append(a)
    return frames


def _direct(atoms, method, basis, spin=0, disp=None):
    """Energy (Ha) and gradient (Ha/Bohr) from PySCF without geoff."""
    mol = gto.M(atom=[(s, p) for s, p in zip(atoms.get_chemical_symbols(), atoms.positions.tolist())],
                basis=basis, spin=spin, unit="Angstrom", verbose=0)
    if method == "HF":
        mf = scf.RHF(mol) if spin == 0 else scf.UHF(mol)
    else:
        mf = dft.RKS(mol) if spin == 0 else dft.UKS(mol)
        mf.xc, mf.grids.level = method, 3
    if disp:
        mf.disp = disp
    mf.conv_tol = 1e-10
    e = mf.kernel()
    assert mf.converged
    return e, mf.nuc_grad_method().kernel()


@pytest.mark.parametrize("method,spin,disp", [("HF", 0, None), ("PBE", 0, None), ("HF", 1, None),
                                              ("PBE", 0, "d3bj")])
def test_energy_and_forces_equal_pyscf_called_directly_in_ev(method, spin, disp):
    atoms = molecule("OH") if spin else _waters(1)[0]
    if disp:
        pytest.importorskip("pyscf.dispersion")
    settings = DFTSettings(method, "sto-3g", spin=spin, dispersion=disp, conv_tol=1e-10)
    r = compute(atoms.numbers, atoms.positions, settings, threads=1)
    assert r.ok and r.converged and r.scf_cycles > 0
    e_ha, g = _direct(atoms, method, "sto-3g", spin, disp)
    assert r.energy == pytest.approx(e_ha * Hartree, abs=1e-7)       # eV; both converged to 1e-10 Ha
    np.testing.assert_allclose(r.forces, -g * Hartree / Bohr, atol=1e-5)
    assert r.forces.shape == (len(atoms), 3)
    if spin:
        assert r.extra["s2"] == pytest.approx(0.75, abs=0.01)         # a doublet: S(S+1) = 3/4


def test_dispersion_changes_the_energy_by_the_d3_term():
    pytest.importorskip("pyscf.dispersion")
    atoms = _waters(1)[0]
    plain = compute(atoms.numbers, atoms.positions, DFTSettings("PBE", "sto-3g", conv_tol=1e-10), threads=1)
    d3 = compute(atoms.numbers, atoms.positions, parse_method("PBE-D3BJ/sto-3g"), threads=1)
    assert parse_method("PBE-D3BJ/sto-3g").dispersion == "d3bj"
    assert d3.ok and 1e-4 < plain.energy - d3.energy < 0.1           # D3 is attractive, meV scale for water


def test_forces_are_minus_the_finite_difference_gradient():
    atoms = _waters(1, seed=3)[0]
    settings = DFTSettings("HF", "sto-3g", conv_tol=1e-12)
    r = compute(atoms.numbers, atoms.positions, settings, threads=1)
    h = 1e-3
    fd = np.zeros_like(r.forces)
    for i in range(len(atoms)):
        for k in range(3):
            e = []
            for sign in (1, -1):
                p = atoms.positions.copy()
                p[i, k] += sign * h
                e.append(compute(atoms.numbers, p, settings, threads=1).energy)
            fd[i, k] = -(e[0] - e[1]) / (2 * h)
    np.testing.assert_allclose(r.forces, fd, atol=1e-4)              # eV/Å; h² error ~1e-6


def test_unconverged_scf_goes_to_the_failures_file_and_retry_labels_it(tmp_path):
    frames = _waters(2)
    write(tmp_path / "in.xyz", frames)
    settings = DFTSettings("HF", "sto-3g", max_cycle=1)
    s = label_structures(tmp_path / "in.xyz", tmp_path / "out.xyz", settings, workers=1, progress=False)
    assert (s.labelled, s.failed) == (0, 2)
    assert not (tmp_path / "out.xyz").exists()                         # nothing written as a label
    failed = read(tmp_path / "out.failures.xyz", ":")
    assert sorted(a.info["source_index"] for a in failed) == [0, 1]
    assert all("SCF did not converge in 1 cycles" in a.info["failure_reason"] for a in failed)
    # a restart does not try them again ...
    s = label_structures(tmp_path / "in.xyz", tmp_path / "out.xyz", settings, workers=1, progress=False)
    assert (s.skipped, s.labelled, s.failed) == (2, 0, 0)
    # ... unless asked to (here with enough SCF cycles): labelled, and gone from the failures file
    settings.max_cycle = 100
    s = label_structures(tmp_path / "in.xyz", tmp_path / "out.xyz", settings, workers=1, progress=False,
                         retry_failed=True)
    assert (s.labelled, s.failed) == (2, 0)
    assert len(read(tmp_path / "out.xyz", ":")) == 2
    assert (tmp_path / "out.failures.xyz").stat().st_size == 0


def _labels(path):
    return {a.info["label_key"]: a for a in read(path, ":")}


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_sigkill_mid_run_then_restart_gives_the_uninterrupted_labels_once(tmp_path):
    frames = _waters(24, seed=1)
    write(tmp_path / "in.xyz", frames)
    reference = label_structures(tmp_path / "in.xyz", tmp_path / "ref.xyz", DFTSettings("HF", "sto-3g"),
                                 workers=1, threads=1, progress=False)
    assert reference.labelled == 24
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "geoff.cli.main", "label", str(tmp_path / "in.xyz"), "--dft", "HF/sto-3g",
           "--output", str(tmp_path / "out.xyz"), "--no-progress"]
    proc = subprocess.Popen(cmd + ["--workers", "2"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    out = tmp_path / "out.xyz"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"label_key=") >= 3:
            break
        time.sleep(0.01)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    partial = _labels(out)
    assert 3 <= len(partial) < 24, "the kill should land mid-run"
    # the DFT workers notice that their parent is gone and stop
    deadline = time.time() + 10
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)
    done = subprocess.run(cmd + ["--workers", "1", "--threads", "1"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"skipped {len(partial)} (done before)" in done.stdout
    got, ref = _labels(out), _labels(tmp_path / "ref.xyz")
    keys = [a.info["label_key"] for a in read(out, ":")]
    assert len(keys) == len(set(keys)) == 24                            # nothing labelled twice
    assert set(got) == set(ref)
    for key, a in ref.items():
        b = got[key]
        assert b.get_potential_energy() == pytest.approx(a.get_potential_energy(), abs=1e-8)
        np.testing.assert_allclose(b.get_forces(), a.get_forces(), atol=2e-8)
        np.testing.assert_array_equal(b.positions, a.positions)


def test_a_torn_last_frame_is_cut_off_and_labelled_again(tmp_path):
    write(tmp_path / "in.xyz", _waters(3))
    settings = DFTSettings("HF", "sto-3g")
    label_structures(tmp_path / "in.xyz", tmp_path / "out.xyz", settings, workers=1, index="0:2", progress=False)
    whole = (tmp_path / "out.xyz").read_bytes()
    first = whole[: whole.index(b"\n3\n") + 1]
    (tmp_path / "out.xyz").write_bytes(first + whole[len(first): len(first) + 150])   # second frame torn
    assert repair_tail(tmp_path / "out.xyz") == 150
    assert (tmp_path / "out.xyz").read_bytes() == first
    (tmp_path / "out.xyz").write_bytes(whole + whole[len(first): len(first) + 150])
    s = label_structures(tmp_path / "in.xyz", tmp_path / "out.xyz", settings, workers=1, progress=False)
    assert s.repaired_bytes == 150 and s.skipped == 2 and s.labelled == 1
    assert sorted(a.info["source_index"] for a in read(tmp_path / "out.xyz", ":")) == [0, 1, 2]


def test_changed_input_and_other_level_of_theory_are_refused(tmp_path):
    frames = _waters(2)
    write(tmp_path / "in.xyz", frames)
    label_structures(tmp_path / "in.xyz", tmp_path / "out.xyz", DFTSettings("HF", "sto-3g"), workers=1, progress=False)
    with pytest.raises(GeoffInputError, match="holds labels at HF/sto-3g, not PBE/sto-3g"):
        label_structures(tmp_path / "in.xyz", tmp_path / "out.xyz", DFTSettings("PBE", "sto-3g"), progress=False)
    frames[1].positions[0, 0] += 0.1
    write(tmp_path / "in.xyz", frames)
    with pytest.raises(GeoffInputError, match="input frame 1 with other atoms or positions"):
        label_structures(tmp_path / "in.xyz", tmp_path / "out.xyz", DFTSettings("HF", "sto-3g"), progress=False)


def test_frame_key_depends_on_index_numbers_and_positions():
    a = _waters(1)[0]
    k = frame_key(0, a.numbers, a.positions)
    assert k.startswith("0:") and k == frame_key(0, a.numbers, a.positions.copy())
    assert k != frame_key(1, a.numbers, a.positions)
    assert k != frame_key(0, a.numbers[::-1], a.positions)
    p = a.positions.copy()
    p[0, 0] = np.nextafter(p[0, 0], 1.0)
    assert k != frame_key(0, a.numbers, p)


def _bad(tmp_path, atoms, dft, *extra):
    write(tmp_path / "bad.xyz", atoms)
    return main(["label", str(tmp_path / "bad.xyz"), "--dft", dft, "-o", str(tmp_path / "o.xyz"), *extra])


@pytest.mark.parametrize("case,dft,extra,message", [
    ("water", "NOTAFUNCTIONAL/sto-3g", (), "unknown method 'NOTAFUNCTIONAL'"),
    ("water", "PBE/not-a-basis", (), "unknown basis set 'not-a-basis'"),
    ("water", "PBE", (), "give the level of theory as METHOD/BASIS"),
    ("OH", "HF/sto-3g", (), "9 electrons .* odd count, which spin 2S = 0 does not allow. Give --spin 1"),
    ("water", "HF/sto-3g", ("--spin", "1"), "10 electrons .* Give --spin 0 or 2"),
    ("Au2", "HF/6-31g", (), "has no functions for element\\(s\\) \\['Au'\\]"),
    ("nan", "HF/sto-3g", (), "frame 0: positions of atoms \\[1\\] are NaN"),
    ("close", "HF/sto-3g", (), "atoms 0 and 1 are 0.200 Å apart"),
    ("periodic", "HF/sto-3g", (), "is periodic"),
    ("water", "HF/sto-3g", ("--max-cycle", "0"), "--max-cycle must be at least 1"),
    ("water", "HF/sto-3g", ("--workers", "0"), "--workers and --threads must be at least 1"),
])
def test_bad_input_is_refused_before_any_dft(tmp_path, capsys, case, dft, extra, message):
    atoms = {"water": _waters(1)[0], "OH": molecule("OH"), "Au2": Atoms("Au2", positions=[[0, 0, 0], [0, 0, 2.5]]),
             "close": Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.2]])}.get(case)
    if case == "nan":
        atoms = _waters(1)[0]
        atoms.positions[1, 2] = np.nan
    if case == "periodic":
        atoms = _waters(1)[0]
        atoms.cell, atoms.pbc = [5, 5, 5], True
    assert _bad(tmp_path, atoms, dft, *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("geoff label: error:") and len(err.strip().splitlines()) == 1
    import re
    assert re.search(message, err), err
    assert not (tmp_path / "o.xyz").exists()


def test_labelled_file_trains(tmp_path):
    import torch

    from geoff.training import train

    write(tmp_path / "in.xyz", _waters(10, seed=2, scale=0.1))
    assert main(["label", str(tmp_path / "in.xyz"), "--dft", "HF/sto-3g", "-o", str(tmp_path / "labels.xyz"),
                 "--workers", "1", "--no-progress"]) == 0
    first = read(tmp_path / "labels.xyz", 0)
    assert first.info["dft_method"] == "HF/sto-3g" and first.info["dft_code"].startswith("pyscf ")
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = train({
            "run_dir": str(tmp_path / "run"), "seed": 1, "progress": False, "plots": False,
            "data": {"train": str(tmp_path / "labels.xyz"), "n_train": 8, "n_valid": 2},
            "model": {"type": "egnn", "cutoff": 4.0, "hidden": 8, "num_layers": 1, "num_basis": 4},
            "optim": {"batch_size": 4, "max_epochs": 2, "warmup_steps": 1, "lr": 1e-2, "valid_batch_size": 8},
        })
    finally:
        torch.set_num_threads(n)
    assert summary["epochs"] == 2 and np.isfinite(summary["best_valid_loss"])
