"""Models built by the trainer from a config: data-derived settings and defaults."""

import pytest
import torch

from geoff.training.config import make_config
from geoff.training.setup import prepare

from tests.test_training import DATA, _one_thread, tiny_config  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.skipif(not (DATA / "train.xyz").exists(), reason="ethanol data not available")


@pytest.mark.parametrize("given", [None, False])
def test_trained_se3_transformer_is_mirror_invariant_by_default(tmp_path, given):
    model_cfg = {"type": "se3_transformer", "cutoff": 5.0, "channels": 8, "num_heads": 2, "num_layers": 3}
    if given is not None:
        model_cfg["parity_even"] = given
    cfg = make_config(tiny_config(tmp_path, model=model_cfg))
    cfg["model"] = model_cfg | {"species": "auto", "avg_num_neighbors": "auto", "energy_scale": "auto"}
    data, model = prepare(cfg)
    expected = True if given is None else given
    assert model.config()["parity_even"] is expected
    assert cfg["model"]["parity_even"] is expected  # written to the run's config.yaml
    from geoff.training.data import collate

    model = model.double()
    torch.manual_seed(0)
    with torch.no_grad():  # weights of order one, so that a parity-odd coupling shows in the energy
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    batch = collate(data.train[:2], torch.float64)
    mirrored = dict(batch)
    mirrored["positions"] = batch["positions"] * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    out, out_m = model(batch, compute_forces=False), model(mirrored, compute_forces=False)
    diff = float((out["energy"] - out_m["energy"]).abs().max())
    species = model.z_to_species[batch["atomic_numbers"]]
    scale = float((out["atomic_energies"] - model.reference_energies[species]).abs().sum())  # the network's part
    if expected:
        assert diff <= 1e-10 * scale
    else:  # the SE(3)-only couplings tell a molecule from its mirror image
        assert diff > 1e-4 * scale
