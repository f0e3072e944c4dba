"""Training and fine-tuning geoff potentials on DFT data.

    from geoff.training import train, resume
    train("config.yaml")              # or a dict; see geoff.training.config.DEFAULTS
    resume("runs/my-run")             # continue from runs/my-run/checkpoint.pt
    finetune("ethanol-egnn", "new.xyz", {"data": {"n_train": 50}})

Modules: data (reading, splitting, batching), statistics (reference energies,
scales), loss (loss and error metrics), schedule (LR schedule, EMA), trainer
(the loop, checkpoints, DDP), evaluate, finetune, plots.
"""

from .config import DEFAULTS, load_config, make_config
from .data import Sample, collate, read_dataset
from .evaluate import evaluate_potential
from .finetune import finetune
from .run import resume, train

__all__ = ["DEFAULTS", "load_config", "make_config", "Sample", "collate", "read_dataset", "resume", "train",
           "finetune", "evaluate_potential"]
