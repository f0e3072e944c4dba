"""`geoff evaluate`: errors agree with an independent computation through the ASE calculator."""

import json

import ase.io
import numpy as np
import pytest

import geoff
from geoff.training import train

from tests.test_training import DATA, _one_thread, tiny_config  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.skipif(not (DATA / "test_MD.xyz").exists(), reason="ethanol data not available")


def test_evaluate_command_matches_the_ase_calculator(tmp_path, capsys):
    from geoff.cli.main import main

    train(tiny_config(tmp_path / "run", optim={"max_epochs": 1}))
    pot_path = tmp_path / "run" / "best.pt"
    assert main(["evaluate", str(pot_path), str(DATA / "test_MD.xyz"), "--index", "0:6",
                 "--output", str(tmp_path / "eval"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "forces (components)" in out and "6 structures, 54 atoms" in out
    numbers = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert (tmp_path / "eval" / "evaluation_parity.png").stat().st_size > 1000

    calc = geoff.GeoffCalculator(geoff.load(pot_path))
    de, df, n = [], [], []
    for atoms in ase.io.read(DATA / "test_MD.xyz", index="0:6"):
        e_ref, f_ref = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = calc
        de.append(atoms.get_potential_energy() - e_ref)
        df.append(atoms.get_forces() - f_ref)
        n.append(len(atoms))
    de, df = np.array(de), np.concatenate(df)
    # float32 model: energies of ~-4200 eV carry ~0.5 meV of round-off
    assert numbers["energy_mae_mev"] == pytest.approx(1e3 * np.abs(de).mean(), abs=0.5)
    assert numbers["energy_mae_mev_per_atom"] == pytest.approx(1e3 * np.abs(de / np.array(n)).mean(), abs=0.06)
    assert numbers["forces_mae_mev_per_a"] == pytest.approx(1e3 * np.abs(df).mean(), rel=1e-4)
    assert numbers["forces_rmse_mev_per_a"] == pytest.approx(1e3 * np.sqrt((df ** 2).mean()), rel=1e-4)


def _frames(tmp_path, name, energy=True, forces=True, n=4, skip_energy_of=()):
    from ase import Atoms

    frames = []
    for k, a in enumerate(ase.io.read(DATA / "test_MD.xyz", index=f"0:{n}")):
        b = Atoms(a.numbers, a.positions)
        if energy and k not in skip_energy_of:
            b.info["energy"] = a.get_potential_energy()
        if forces:
            b.arrays["forces"] = a.get_forces()
        frames.append(b)
    path = tmp_path / f"{name}.xyz"
    ase.io.write(path, frames, format="extxyz")
    return path


def test_evaluate_refuses_data_with_nothing_to_compare(tmp_path, capsys):
    """No labels, a key that names nothing, labels on only some frames, only isolated atoms:
    a one-line error and exit status 2, never an empty table with status 0."""
    from geoff.cli.main import main

    out = ["--output", str(tmp_path / "eval"), "--no-progress"]
    cases = [
        ([str(_frames(tmp_path, "bare", energy=False, forces=False))], "nothing to compare with"),
        ([str(DATA / "test_MD.xyz"), "--index", "0:4", "--energy-key", "dft_energy"],
         "no structure has energy under the key 'dft_energy'; set --energy-key"),
        ([str(DATA / "test_MD.xyz"), "--index", "0:4", "--forces-key", "dft_forces"],
         "no structure has forces under the key 'dft_forces'; set --forces-key"),
        ([str(_frames(tmp_path, "some", skip_energy_of=(2,)))], r"some.xyz[2] has no energy (key 'energy') while"),
        ([str(DATA / "isolated_atoms.xyz")], "no structures to evaluate"),
    ]
    for args, words in cases:
        assert main(["evaluate", "ethanol-egnn", *args, *out]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("geoff evaluate: error: ") and words in err, err
    assert not (tmp_path / "eval").exists()
    # forces without energies is a valid evaluation (of the forces)
    assert main(["evaluate", "ethanol-egnn", str(_frames(tmp_path, "forces_only", energy=False)), *out]) == 0
    table = capsys.readouterr().out
    assert "forces (components)" in table and "energy per atom" not in table
