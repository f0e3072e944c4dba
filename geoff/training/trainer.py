"""The training loop: AdamW + warm-up/plateau LR, gradient clipping, EMA weights,
early stopping, a wall-clock budget, atomic checkpoints and exact resume, and
data parallelism under ``torchrun`` (DistributedDataParallel).

Run folder (``run_dir``)::

    config.yaml          the resolved config (data-derived values filled in)
    checkpoint.pt        full training state (every ``checkpoint.every_steps`` steps and every validation)
    best.pt              EMA potential at the best validation loss (a geoff potential file)
    last.pt              EMA potential at the end
    metrics.csv          one row per validation
    learning_curve.png, parity_valid.png (and parity_test.png)

A new run refuses a folder that already holds results of another run (it would
replace them): continue that run with ``geoff train --resume``, pick another
folder, or set ``overwrite: true`` (``--overwrite``), which deletes the files
above first. Temporary files of checkpoint writes interrupted by a kill are
removed when a run (re)starts in its folder.

Reproducibility: the data order of epoch e is a function of (seed, e) only, and
a checkpoint stores the model, optimiser, schedule, EMA, RNG state, epoch and
position within the epoch, so ``resume`` reaches the same weights as an
uninterrupted run (tests/test_training_resume.py kills a run with SIGKILL).

Data parallelism: each global batch (``optim.batch_size`` structures) is split
over the W workers; each worker's loss is its share of the *global* sums
times W, so DDP's gradient average equals the single-process gradient of the
global batch (tests/test_training_ddp.py).
"""

import copy
import csv
import math
import os
import random
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
import yaml
from tqdm import tqdm

from .. import keys
from ..errors import GeoffFileError, GeoffInputError
from ..io import atomic_path, save_potential
from ..io.atomic import remove_stale_temp_files
from ..models import build_model
from .data import Sample, batches, collate, epoch_order
from .loss import ErrorMetrics, loss_terms
from .predict import predict
from .schedule import EMA, WarmupPlateau

CHECKPOINT_FORMAT = "geoff-checkpoint"

#: files whose presence means a run folder holds results (a new run there would replace them).
RESULT_FILES = ("checkpoint.pt", "best.pt", "last.pt", "metrics.csv", "summary.yaml")
#: every file a run writes into its folder (``overwrite`` deletes these, and nothing else, first).
RUN_FILES = RESULT_FILES + ("config.yaml", "learning_curve.png", "parity_valid.png", "parity_test.png")


def check_run_dir(cfg: Dict) -> None:
    """Refuse to start a new run in a folder that holds another run's results, unless
    ``cfg["overwrite"]``. Raises :class:`GeoffInputError` naming the ways out."""
    run_dir = Path(cfg["run_dir"])
    if run_dir.exists() and not run_dir.is_dir():
        raise GeoffInputError(f"run_dir {str(run_dir)!r} is a file, not a folder; choose another run_dir "
                              "(--run-dir).")
    if cfg.get("overwrite") or not run_dir.is_dir():
        return
    found = [name for name in RESULT_FILES if (run_dir / name).exists()]
    if found:
        raise GeoffInputError(
            f"run folder {str(run_dir)!r} already holds the results of a run ({', '.join(found)}); a new run would "
            f"replace them. Continue that run with `geoff train --resume {run_dir}`, choose a new folder "
            "(run_dir in the config, or --run-dir), or replace it with --overwrite (overwrite: true).")


def _legacy_temp_file(name: str) -> bool:
    """Temporary files of run outputs written by older geoff versions: .NAME.XXXXXXXX.tmp."""
    import re

    return any(re.fullmatch(re.escape(f".{target}.") + r"[a-z0-9_]{8}\.tmp", name) for target in RUN_FILES)


def clean_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Remove temporary files of interrupted writes (and, with ``overwrite``, the previous run's files)."""
    remove_stale_temp_files(run_dir)
    if not run_dir.is_dir():
        return
    for entry in run_dir.iterdir():
        if entry.is_file() and (_legacy_temp_file(entry.name) or (overwrite and entry.name in RUN_FILES)):
            entry.unlink()


def _dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "float64": torch.float64}[name]


def _weights(cfg: Dict) -> Dict[str, float]:
    w = cfg["loss"]
    return {"energy": float(w["energy_weight"]), "forces": float(w["forces_weight"]),
            "stress": float(w["stress_weight"])}


class Trainer:
    """Train ``model`` on ``data`` (from :func:`geoff.training.setup.prepare`) as ``cfg`` says.

    Call :meth:`train`; :meth:`load_state_dict` with a checkpoint's state before it to continue a run.
    """

    def __init__(self, cfg: Dict, model: torch.nn.Module, data, rank: int = 0, world_size: int = 1):
        self.cfg, self.data = cfg, data
        self.rank, self.world_size = rank, world_size
        self.run_dir = Path(cfg["run_dir"])
        self.dtype = _dtype(cfg["dtype"])
        self.device = torch.device(cfg["device"])
        self.threads = self._set_threads(cfg, data)
        self.model = model.to(self.dtype).to(self.device).train()
        self.eval_model = copy.deepcopy(self.model).eval()
        self.weights = _weights(cfg)
        freeze = list(cfg.get("finetune", {}).get("freeze") or [])
        for name, p in self.model.named_parameters():
            p.requires_grad_(not any(name == f or name.startswith(f + ".") for f in freeze))
        o = cfg["optim"]
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=float(o["lr"]), weight_decay=float(o["weight_decay"]))
        self.schedule = WarmupPlateau(self.optimizer, float(o["lr"]), int(o["warmup_steps"]), float(o["plateau_factor"]),
                                      int(o["plateau_patience"]), min_lr=float(o["min_lr"]))
        self.ema = EMA(self.model, float(o["ema_decay"]))
        self.ddp = None
        if world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.ddp = DistributedDataParallel(self.model, device_ids=None if self.device.type == "cpu" else [self.device])
        # progress state
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.elapsed = 0.0
        self.cpu_elapsed = 0.0  # CPU seconds of this process (all its threads) in the same stretches
        self.best_val, self.bad_validations = math.inf, 0
        self.epoch_loss_sum, self.epoch_loss_count = 0.0, 0
        self.history: List[Dict[str, float]] = []
        self.stopped_by = ""
        self.resumed = False  # set by load_state_dict: continuing the run of run_dir
        self._provenance = None  # data_provenance of the training files, read when first saved

    @staticmethod
    def _set_threads(cfg: Dict, data):
        """torch's intra-op threads for this process: ``cfg["threads"]``, else OMP_NUM_THREADS, else
        :func:`geoff.threads.choose_threads` for the atoms of one (per-process) batch."""
        from ..threads import choose_threads

        atoms = sum(len(s) for s in data.train) / max(len(data.train), 1)
        per_batch = int(atoms * int(cfg["optim"]["batch_size"]))
        choice = choose_threads(per_batch, cfg.get("threads"))
        if cfg["device"] == "cpu":
            torch.set_num_threads(choice.threads)
        return choice

    # ------------------------------------------------------------------ state
    def state_dict(self) -> Dict:
        return {
            "format": CHECKPOINT_FORMAT, "config": self.cfg,
            "model_type": self.model.model_type, "model_config": self.model.config(),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(), "ema": self.ema.state_dict(),
            "rng_torch": torch.get_rng_state(), "rng_python": list(random.getstate()[1]),
            "epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
            "elapsed": self.elapsed, "cpu_elapsed": self.cpu_elapsed, "best_val": self.best_val,
            "bad_validations": self.bad_validations,
            "epoch_loss_sum": self.epoch_loss_sum, "epoch_loss_count": self.epoch_loss_count,
            "history": self.history,
        }

    def load_state_dict(self, state: Dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.ema.load_state_dict(state["ema"], self.device)
        torch.set_rng_state(state["rng_torch"])
        random.setstate((3, tuple(state["rng_python"]), None))
        for k in ("epoch", "step_in_epoch", "global_step", "elapsed", "best_val", "bad_validations",
                  "epoch_loss_sum", "epoch_loss_count", "history"):
            setattr(self, k, state[k])
        self.cpu_elapsed = state.get("cpu_elapsed", 0.0)  # absent in checkpoints of geoff before it was counted
        self.resumed = True

    def save_checkpoint(self) -> None:
        if self.rank != 0:
            return
        with atomic_path(self.run_dir / "checkpoint.pt") as tmp:
            torch.save(self.state_dict(), tmp)

    # ------------------------------------------------------------------ steps
    def _local_part(self, idx: np.ndarray) -> np.ndarray:
        return np.array_split(idx, self.world_size)[self.rank] if self.world_size > 1 else idx

    def train_step(self, idx: np.ndarray) -> float:
        """One optimiser step on the global batch ``idx``; returns its loss (eV²)."""
        samples = self.data.train
        n_struct = len(idx)
        n_atoms = int(sum(len(samples[k]) for k in idx))
        local = self._local_part(idx)
        module = self.ddp if self.ddp is not None else self.model
        self.optimizer.zero_grad(set_to_none=True)
        if len(local):
            batch = collate([samples[k] for k in local], self.dtype, self.device)
            out = module(batch, compute_forces=self.weights["forces"] > 0,
                         compute_stress=self.weights["stress"] > 0, create_graph=True)
            t = loss_terms(out, batch, self.weights)
            loss = (t["energy"] / n_struct + t["forces"] / n_atoms + t["stress"] / n_struct) * self.world_size
        else:  # more workers than structures in this (last) batch
            loss = sum(p.sum() for p in self.model.parameters() if p.requires_grad) * 0.0
        loss.backward()
        if self.cfg["optim"]["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(self.cfg["optim"]["grad_clip"]))
        self.optimizer.step()
        self.schedule.step(self._time_factor())
        self.ema.update(self.model)
        value = loss.detach() / self.world_size
        if self.world_size > 1:
            torch.distributed.all_reduce(value)
        return float(value)

    def evaluate(self, samples: List[Sample], use_ema: bool = True):
        """Loss (eV², as in training) and :class:`ErrorMetrics` of the EMA (or current) weights."""
        model = self.eval_model
        model.load_state_dict(self.ema.shadow if use_ema else self.model.state_dict())
        metrics = ErrorMetrics()
        sums = {"energy": 0.0, "forces": 0.0, "stress": 0.0}
        n_struct = n_atoms = 0
        for batch, out in predict(model, samples, int(self.cfg["optim"]["valid_batch_size"]),
                                  compute_stress=self.weights["stress"] > 0, dtype=self.dtype, device=self.device):
            for key, v in loss_terms(out, batch, self.weights).items():
                sums[key] += float(v)
            n_struct += int(batch[keys.NUM_ATOMS].shape[0])
            n_atoms += int(batch[keys.NUM_ATOMS].sum())
            metrics.update(out, batch)
        loss = (sums["energy"] + sums["stress"]) / max(n_struct, 1) + sums["forces"] / max(n_atoms, 1)
        return loss, metrics

    # ------------------------------------------------------------------ loop
    def _validate(self, train_loss: float) -> bool:
        """Validate, log, checkpoint; returns True when training should stop early."""
        val_loss, metrics = self.evaluate(self.data.valid)
        self.schedule.validation(val_loss)
        improved = val_loss < self.best_val
        # early stopping counts validations without a relative improvement of 1e-4 (round-off is not progress)
        if val_loss < self.best_val * (1.0 - 1e-4) or not math.isfinite(self.best_val):
            self.bad_validations = 0
        else:
            self.bad_validations += 1
        if improved:
            self.best_val = val_loss
        row = {"epoch": self.epoch, "step": self.global_step, "time_s": round(self.elapsed, 2),
               "cpu_s": round(self.cpu_elapsed, 2),
               "lr": self.optimizer.param_groups[0]["lr"], "train_loss": train_loss, "valid_loss": val_loss,
               **{f"valid_{k}": v for k, v in metrics.summary().items()}}
        self.history.append(row)
        if self.rank == 0:
            self._write_metrics()
            if improved:
                save_potential(self.eval_model, self.run_dir / "best.pt", self._metadata(row))
        patience = self.cfg["optim"]["early_stopping_patience"]
        return patience is not None and self.bad_validations >= int(patience)

    def _metadata(self, row: Dict) -> Dict:
        if self._provenance is None:
            from .provenance import data_provenance

            self._provenance = data_provenance(self.cfg["data"]["train"])
        return {"trained_by": "geoff train", "epoch": int(row["epoch"]), "step": int(row["step"]),
                "valid_loss": float(row["valid_loss"]), "run_dir": str(self.run_dir),
                "valid_metrics": {k: float(v) for k, v in row.items() if k.startswith("valid_")},
                "data_provenance": self._provenance}

    def _write_metrics(self) -> None:
        fields: List[str] = []
        for row in self.history:
            fields += [k for k in row if k not in fields]
        with atomic_path(self.run_dir / "metrics.csv") as tmp:
            with open(tmp, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=fields)
                w.writeheader()
                w.writerows(self.history)

    def _time_factor(self) -> float:
        """1 until the last ``optim.anneal_fraction`` of ``max_time_minutes``, then linearly down to 0."""
        o = self.cfg["optim"]
        frac, budget = o.get("anneal_fraction"), o["max_time_minutes"]
        if not frac or budget is None:
            return 1.0
        remaining = 1.0 - self.elapsed / (60.0 * float(budget))
        return min(1.0, max(remaining / float(frac), 0.0))

    def _out_of_time(self) -> bool:
        budget = self.cfg["optim"]["max_time_minutes"]
        return budget is not None and self.elapsed >= 60.0 * float(budget)

    def train(self) -> Dict[str, float]:
        """Run until max_epochs, early stopping or the time budget; returns the final summary."""
        o = self.cfg["optim"]
        every = int(self.cfg["checkpoint"]["every_steps"] or 0)
        if not self.resumed:
            check_run_dir(self.cfg)  # on every rank, so that all of them stop
        if self.rank == 0:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            clean_run_dir(self.run_dir, overwrite=bool(self.cfg.get("overwrite")) and not self.resumed)
            with atomic_path(self.run_dir / "config.yaml") as tmp:
                tmp.write_text(yaml.safe_dump(self.cfg, sort_keys=False, allow_unicode=True))
        n_train = len(self.data.train)
        stop = False
        while self.epoch < int(o["max_epochs"]) and not stop:
            all_batches = batches(epoch_order(n_train, self.cfg["seed"], self.epoch), int(o["batch_size"]))
            bar = tqdm(total=len(all_batches), initial=self.step_in_epoch, desc=f"epoch {self.epoch + 1}",
                       disable=not (self.cfg["progress"] and self.rank == 0), leave=False, mininterval=1.0)
            while self.step_in_epoch < len(all_batches):
                t0, c0 = time.perf_counter(), time.process_time()
                loss = self.train_step(all_batches[self.step_in_epoch])
                self.elapsed += time.perf_counter() - t0
                self.cpu_elapsed += time.process_time() - c0
                self.step_in_epoch += 1
                self.global_step += 1
                self.epoch_loss_sum += loss
                self.epoch_loss_count += 1
                bar.update(1)
                bar.set_postfix(loss=f"{self.epoch_loss_sum / self.epoch_loss_count:.3g}",
                                lr=f"{self.optimizer.param_groups[0]['lr']:.2g}", refresh=False)
                if not math.isfinite(loss):
                    raise FloatingPointError(
                        f"training loss became {loss} at step {self.global_step}: lower optim.lr or "
                        "optim.grad_clip, or check the data for outliers (resume from the last checkpoint).")
                if every and self.global_step % every == 0:
                    self.save_checkpoint()
                if self._out_of_time():
                    stop, self.stopped_by = True, "max_time_minutes"
                    break
            bar.close()
            end_of_epoch = self.step_in_epoch >= len(all_batches)
            if end_of_epoch:
                self.epoch += 1
                self.step_in_epoch = 0
            due = end_of_epoch and (self.epoch % int(o["valid_every_epochs"]) == 0
                                    or self.epoch >= int(o["max_epochs"]))
            if due or stop:
                train_loss = self.epoch_loss_sum / max(self.epoch_loss_count, 1)
                self.epoch_loss_sum, self.epoch_loss_count = 0.0, 0
                t0, c0 = time.perf_counter(), time.process_time()
                if self._validate(train_loss) and not stop:
                    stop, self.stopped_by = True, "early_stopping"
                self.elapsed += time.perf_counter() - t0
                self.cpu_elapsed += time.process_time() - c0
                if self.rank == 0 and self.cfg["progress"]:
                    r = self.history[-1]
                    tqdm.write(f"epoch {self.epoch:4d} step {self.global_step:6d} {r['time_s']:8.1f}s "
                               f"lr {r['lr']:.2e} train {r['train_loss']:.3e} valid {r['valid_loss']:.3e} "
                               f"E {r.get('valid_energy_mae_mev_per_atom', float('nan')):.2f} meV/atom "
                               f"F {r.get('valid_forces_mae_mev_per_a', float('nan')):.1f} meV/Å")
                self.save_checkpoint()
        if not self.stopped_by:
            self.stopped_by = "max_epochs"
        return self.finish()

    def finish(self) -> Dict[str, float]:
        """Write last.pt, plots and (for the best EMA weights) validation and test errors."""
        summary: Dict[str, float] = {"epochs": self.epoch, "steps": self.global_step,
                                     "train_time_s": self.elapsed,
                                     "train_cpu_s": self.cpu_elapsed, "best_valid_loss": self.best_val,
                                     "threads": self.threads.threads, "threads_reason": self.threads.reason}
        if self.rank != 0:
            return summary
        if self.cfg["plots"]:
            from .plots import learning_curve, parity_plot
        self.eval_model.load_state_dict(self.ema.shadow)
        save_potential(self.eval_model, self.run_dir / "last.pt",
                       self._metadata(self.history[-1]) if self.history else {})
        if self.history and self.cfg["plots"]:
            learning_curve(self.history, self.run_dir / "learning_curve.png")
        best = self.run_dir / "best.pt"
        if best.exists():
            from ..io import read_payload

            best_state = read_payload(best)["state_dict"]
            for name, samples in (("valid", self.data.valid), ("test", self.data.test)):
                if not samples:
                    continue
                self.eval_model.load_state_dict(best_state)
                metrics = ErrorMetrics()
                for batch, out in predict(self.eval_model, samples, int(self.cfg["optim"]["valid_batch_size"]),
                                          dtype=self.dtype, device=self.device):
                    metrics.update(out, batch)
                s = metrics.summary()
                summary.update({f"{name}_{k}": v for k, v in s.items()})
                if self.cfg["plots"]:
                    parity_plot(metrics.arrays(), self.run_dir / f"parity_{name}.png", title=f"{name} (best EMA)")
        summary["stopped_by"] = self.stopped_by
        with atomic_path(self.run_dir / "summary.yaml") as tmp:
            tmp.write_text(yaml.safe_dump({k: (float(v) if isinstance(v, (int, float)) else v)
                                           for k, v in summary.items()}, sort_keys=False))
        return summary


def read_checkpoint(run_dir) -> Dict:
    path = Path(run_dir) / "checkpoint.pt"
    if not path.is_file():
        raise GeoffFileError(f"{path}: no checkpoint to resume from. Start the run with `geoff train CONFIG` "
                             "(a checkpoint is written every checkpoint.every_steps steps and at each validation).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise GeoffFileError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc}).") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise GeoffFileError(f"{path}: not a geoff training checkpoint.")
    return state


def model_from_checkpoint(state: Dict) -> torch.nn.Module:
    model = build_model(state["model_type"], dict(state["model_config"]))
    model = model.to(_dtype(state["config"]["dtype"]))
    model.load_state_dict(state["model"])
    return model


def distributed_context():
    """(rank, world_size) under torchrun (initialising the process group), else (0, 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() and os.environ.get("GEOFF_DDP_BACKEND") != "gloo"
                                else "gloo")
    return dist.get_rank(), dist.get_world_size()
