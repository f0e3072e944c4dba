"""Saving and loading potentials: round trip, corrupt, unsafe and incompatible files."""

import os
import pickle

import numpy as np
import pytest
import torch

import geoff
from geoff import GeoffFileError, keys, structures_to_graph
from structures import SPECIES, ethanol


def _energy(pot, atoms):
    g = structures_to_graph([atoms], pot.cutoff, dtype=pot.reference_energies.dtype)
    out = pot(g)
    return out[keys.ENERGY].item(), out[keys.FORCES].detach().numpy()


@pytest.fixture
def potential():
    torch.manual_seed(0)
    return geoff.EGNNPotential(SPECIES, cutoff=4.0, hidden=16, num_layers=2,
                               reference_energies={"H": -13.6, "C": -1025.3, "O": -2035.6})


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trip(tmp_path, potential, dtype):
    potential = potential.to(dtype)
    path = geoff.save(potential, tmp_path / "p.pt", metadata={"note": "test"})
    loaded = geoff.load(path)
    assert loaded.config() == potential.config()
    assert loaded.reference_energies.dtype == dtype
    assert loaded.metadata == {"note": "test"}
    e0, f0 = _energy(potential, ethanol())
    e1, f1 = _energy(loaded, ethanol())
    assert e0 == e1 and np.array_equal(f0, f1)
    assert [p.name for p in tmp_path.iterdir()] == ["p.pt"]  # no temporary files left behind


def test_booby_trapped_file_is_refused(tmp_path, potential):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    payload = {"format": "geoff-potential", "format_version": 1, "model_type": "egnn",
               "config": potential.config(), "state_dict": potential.state_dict(), "metadata": Exploit()}
    torch.save(payload, path)
    with pytest.raises(GeoffFileError, match="refused"):
        geoff.load(path)
    assert not marker.exists()


def test_corrupt_and_incompatible_files(tmp_path, potential):
    path = geoff.save(potential, tmp_path / "p.pt")
    data = path.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(GeoffFileError, match="corrupt or truncated"):
        geoff.load(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a potential at all")
    with pytest.raises(GeoffFileError):
        geoff.load(garbage)

    payload = torch.load(path, weights_only=True)
    for change, match in (({"format_version": 99}, "format version 99"),
                          ({"format": "something-else"}, "not a geoff potential"),
                          ({"model_type": "mystery"}, "unknown model type")):
        bad = tmp_path / "bad.pt"
        torch.save({**payload, **change}, bad)
        with pytest.raises(GeoffFileError, match=match):
            geoff.load(bad)
    wrong_shape = dict(payload)
    wrong_shape["config"] = {**payload["config"], "hidden": 8}
    torch.save(wrong_shape, tmp_path / "shape.pt")
    with pytest.raises(GeoffFileError, match="weights do not fit"):
        geoff.load(tmp_path / "shape.pt")
    with pytest.raises(GeoffFileError, match="no potential file"):
        geoff.load(tmp_path / "missing.pt")


def test_plain_pickle_is_not_a_potential(tmp_path):
    path = tmp_path / "pickle.pt"
    with open(path, "wb") as fh:
        pickle.dump({"format": "geoff-potential"}, fh)
    with pytest.raises(GeoffFileError):
        geoff.load(path)


def test_atomic_writes_respect_the_umask(tmp_path):
    from geoff.io import atomic_path

    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "f.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644
