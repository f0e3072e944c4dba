"""Saving and loading potentials: round trip, corrupt, unsafe and incompatible files."""

import os
import pickle

import numpy as np
import pytest
import torch

import geoff
from geoff import GeoffFileError, keys, structures_to_graph
from tests.structures import SPECIES, ethanol


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


def test_files_that_are_not_potentials_say_so(tmp_path):
    """Before: a text file gave KeyError, an empty file IndexError, random bytes were called
    'pickled Python objects that could run code'."""
    text = tmp_path / "notes.pt"
    text.write_text("energy: -97.2 eV\n")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.pt"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    for path, what in ((text, "a text file"), (empty, "empty"), (noise, "unreadable bytes")):
        with pytest.raises(GeoffFileError, match=f"not a geoff potential file: .*{what}") as info:
            geoff.load(path)
        assert "could run code" not in str(info.value)


@pytest.mark.parametrize("edit, match", [
    (lambda p: {"config": {**p["config"], "cutoff": -4.0}}, "'cutoff' must be positive, got -4.0"),
    (lambda p: {"config": {**p["config"], "cutoff": float("nan")}}, "'cutoff' must be a finite number"),
    (lambda p: {"config": "egnn, hidden 16"}, "'config' must be a dict"),
    (lambda p: {"config": {**p["config"], "colour": "red"}},
     r"key\(s\) \['colour'\] that a 'egnn' model does not take"),
    (lambda p: {"config": {k: v for k, v in p["config"].items() if k != "species"}}, r"lacks \['species'\]"),
    (lambda p: {"config": {**p["config"], "species": "HCO"}}, "'species' must be a non-empty list"),
    (lambda p: {"config": {**p["config"], "species": ["H", "Qq", "O"]}}, "unknown element symbol 'Qq'"),
    (lambda p: {"config": {**p["config"], "num_layers": 2.5}}, "'num_layers' must be a positive integer"),
    (lambda p: {"config": {**p["config"], "num_layers": 0}}, "'num_layers' must be a positive integer"),
    (lambda p: {"config": {**p["config"], "update_coords": "yes"}}, "'update_coords' must be true or false"),
    (lambda p: {"config": {**p["config"], "reference_energies": {"H": "low"}}}, "'reference_energies' must map"),
    (lambda p: {"dtype": "float7"}, "says its weights are 'float7'; geoff writes .* float32"),
    (lambda p: {"units": {"length": "nm", "energy": "eV"}}, "'units' must be geoff's"),
    (lambda p: {"metadata": "trained by me"}, "'metadata' must be a dict"),
    (lambda p: {"model_type": 7}, "'model_type' must be a string"),
    (lambda p: {"state_dict": {"w": 1.0}}, "'state_dict' must be a non-empty dict of name → tensor"),
    (lambda p: {"comment": "edited by hand"}, r"unknown top-level key\(s\) \['comment'\]"),
    (lambda p: {"state_dict": {k: v for k, v in p["state_dict"].items() if k != "readout.0.bias"}},
     r"weights do not fit .*missing tensors \['readout.0.bias'\]"),
    (lambda p: {"state_dict": {**p["state_dict"], "z_to_species": torch.arange(119)}},
     "z_to_species does not match the config's species"),
], ids=["negative-cutoff", "nan-cutoff", "string-config", "extra-config-key", "no-species", "species-string",
        "unknown-element", "float-layers", "zero-layers", "string-bool", "string-energy", "unknown-dtype",
        "nm-units", "string-metadata", "int-model-type", "no-tensors", "extra-top-level-key", "missing-tensor",
        "species-table"])
def test_edited_headers_are_named(tmp_path, potential, edit, match):
    """Before: ValueError / TypeError / AttributeError tracebacks (or a silently wrong model)."""
    payload = torch.load(geoff.save(potential, tmp_path / "good.pt"), weights_only=True)
    path = tmp_path / "edited.pt"
    torch.save({**payload, **edit(payload)}, path)
    with pytest.raises(GeoffFileError, match=match):
        geoff.load(path)


def test_oversized_config_is_refused_before_allocating(tmp_path, potential):
    """Before: hidden=200000 in a small file tried to allocate 320 GB; the config is now checked
    against the stored weights before any tensor is built."""
    payload = torch.load(geoff.save(potential, tmp_path / "good.pt"), weights_only=True)
    for hidden, match in ((200_000, "larger than the .* numbers stored in the whole file"),
                          (40, r"do not fit .* embedding.weight has shape \[3, 16\], the config implies \[3, 40\]")):
        torch.save({**payload, "config": {**payload["config"], "hidden": hidden}}, tmp_path / "big.pt")
        with pytest.raises(GeoffFileError, match=match):
            geoff.load(tmp_path / "big.pt")


def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, potential):
    """Before: the file loaded, the calculator returned E = nan and `geoff evaluate` a table of nan (exit 0)."""
    payload = torch.load(geoff.save(potential, tmp_path / "good.pt"), weights_only=True)
    for bad in (float("nan"), float("inf")):
        state = dict(payload["state_dict"])
        w = state["layers.1.node_proj.weight"].clone()
        w[3, 2] = bad
        state["layers.1.node_proj.weight"] = w
        torch.save({**payload, "state_dict": state}, tmp_path / "nan.pt")
        with pytest.raises(GeoffFileError, match=r"layers.1.node_proj.weight contains 1 NaN or infinite value"):
            geoff.load(tmp_path / "nan.pt")
    from geoff.cli.main import main

    data = tmp_path / "data.xyz"
    atoms = ethanol()
    atoms.info["energy"] = -97.0
    atoms.arrays["forces"] = np.zeros((len(atoms), 3))
    atoms.write(data)
    assert main(["evaluate", str(tmp_path / "nan.pt"), str(data), "--output", str(tmp_path / "eval"),
                 "--no-progress"]) == 2
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_files_are_refused(tmp_path, potential, dtype):
    """Before: a float16 file loaded and gave energies 444 meV/atom off; geoff writes float32/float64 only."""
    payload = torch.load(geoff.save(potential, tmp_path / "good.pt"), weights_only=True)
    half = {k: v.to(dtype) if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
    name = str(dtype).replace("torch.", "")
    torch.save({**payload, "state_dict": half, "dtype": name}, tmp_path / "half.pt")
    with pytest.raises(GeoffFileError, match=f"weights are '{name}'; geoff writes potential files in .*float32"):
        geoff.load(tmp_path / "half.pt")
    torch.save({**payload, "state_dict": half}, tmp_path / "mixed.pt")  # header still says float32
    with pytest.raises(GeoffFileError, match=f"stored as {name}, but the file says float32"):
        geoff.load(tmp_path / "mixed.pt")


def test_every_model_type_round_trips(tmp_path):
    """The shape check builds each model on the meta device: it must work for every model and size."""
    for pot in (geoff.EGNNPotential(SPECIES, cutoff=4.0, hidden=8, num_layers=2, update_coords=False),
                geoff.SE3TransformerPotential(SPECIES, cutoff=4.0, lmax=3, channels=4, num_heads=2, num_layers=2),
                geoff.SE3TransformerPotential(SPECIES, cutoff=4.0, lmax=1, channels=4, num_heads=2, parity_even=True)):
        loaded = geoff.load(geoff.save(pot, tmp_path / "p.pt"))
        assert loaded.config() == pot.config()
        assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), pot.state_dict().values()))
