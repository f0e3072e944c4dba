"""geoff train picks torch's thread count like geoff md: explicit > OMP_NUM_THREADS > by batch size."""

import pytest
import torch

from geoff.training import train
from geoff.threads import MIN_ATOMS_PER_EXTRA_THREAD

from tests.test_training import DATA, _one_thread, tiny_config  # noqa: F401 (autouse fixture)

pytestmark = pytest.mark.skipif(not (DATA / "train.xyz").exists(), reason="ethanol data not available")


def test_small_batches_train_on_one_thread(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    s = train(tiny_config(tmp_path, optim={"max_epochs": 1}))
    assert 4 * 9 < MIN_ATOMS_PER_EXTRA_THREAD  # batch of 4 ethanol molecules
    assert s["threads"] == 1 and "36 atoms" in s["threads_reason"]
    assert torch.get_num_threads() == 1


def test_explicit_threads_win_over_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    s = train(tiny_config(tmp_path, threads=2, optim={"max_epochs": 1}))
    assert s["threads"] == 2 and s["threads_reason"] == "as requested"
    assert torch.get_num_threads() == 2


def test_bad_thread_count_is_a_config_error(tmp_path):
    from geoff.errors import GeoffInputError

    with pytest.raises(GeoffInputError, match="threads"):
        train(tiny_config(tmp_path, threads=0))
