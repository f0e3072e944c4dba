"""One-call entry points: ``train(config)`` and ``resume(run_dir)``.

Both work the same under ``torchrun --nproc_per_node W`` (data parallel).
"""

import random
from typing import Dict, Optional, Union

import numpy as np
import torch

from ..errors import GeoffInputError
from .config import DATA_PATH_KEYS, DEFAULTS, check_config, load_config, make_config, merge_config
from .setup import prepare
from .trainer import Trainer, check_run_dir, distributed_context, model_from_checkpoint, read_checkpoint


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def _device_for_rank(cfg: Dict, world_size: int) -> None:
    if world_size > 1 and str(cfg["device"]).startswith("cuda"):
        import os

        cfg["device"] = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"


def train(config: Union[str, Dict], overrides: Optional[Dict] = None, model: Optional[torch.nn.Module] = None
          ) -> Dict[str, float]:
    """Train from a YAML path or a config dict (merged over the defaults).

    ``model`` (optional) starts from given weights (fine-tuning) instead of a fresh model.
    Returns a summary: epochs, steps, train_time_s, best_valid_loss, valid_/test_ errors.
    """
    cfg = load_config(config, overrides) if isinstance(config, (str, bytes)) or hasattr(config, "__fspath__") \
        else make_config({**config, **(overrides or {})})
    check_run_dir(cfg)  # before the data are read: a refused run fails at once
    rank, world = distributed_context()
    _device_for_rank(cfg, world)
    _seed_everything(int(cfg["seed"]))
    data, model = prepare(cfg, model, progress=bool(cfg["progress"]) and rank == 0)
    trainer = Trainer(cfg, model, data, rank, world)
    return trainer.train()


def resume(run_dir, overrides: Optional[Dict] = None) -> Dict[str, float]:
    """Continue the run in ``run_dir`` from its checkpoint.pt (``overrides`` may raise
    ``optim.max_epochs`` or ``optim.max_time_minutes``)."""
    state = read_checkpoint(run_dir)
    # settings added to geoff after the run started get their defaults
    cfg = merge_config(DEFAULTS, state["config"], strict=False)
    cfg["run_dir"] = str(run_dir)
    cfg = merge_config(cfg, overrides, strict=False)
    check_config(cfg)
    _check_data_paths(cfg, run_dir)
    rank, world = distributed_context()
    _device_for_rank(cfg, world)
    model = model_from_checkpoint(state)
    data, model = prepare(cfg, model, progress=False)
    trainer = Trainer(cfg, model, data, rank, world)
    trainer.load_state_dict(state)
    return trainer.train()


def _check_data_paths(cfg: Dict, run_dir) -> None:
    """Runs store absolute data paths; runs started by older geoff versions stored them as
    given, relative to the folder the run started in. Name that folder when one is missing."""
    import os

    for key in DATA_PATH_KEYS:
        value = cfg["data"].get(key)
        for p in (value if isinstance(value, (list, tuple)) else [value] if value else []):
            if not os.path.exists(p):
                where = ("it is a relative path, read from the folder the run was started in: resume from that "
                         "folder" if not os.path.isabs(p) else "restore the file at that path")
                raise GeoffInputError(f"{run_dir}: the run's data file data.{key} = {p!r} is not found from "
                                      f"{os.getcwd()}; {where}.")
