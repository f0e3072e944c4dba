"""Learning-rate schedule (linear warm-up, then plateau decay) and the
exponential moving average (EMA) of the weights. Both are small classes with
``state_dict`` / ``load_state_dict`` so that a resumed run continues exactly."""

from typing import Dict, Optional

import torch
from torch import nn


class WarmupPlateau:
    """lr(step) = base_lr · min(1, (step+1)/warmup_steps) · factor^k, where k counts
    the times the validation loss failed to improve by ``threshold`` (relative)
    for ``patience`` consecutive validations (as ``ReduceLROnPlateau``), never
    below ``min_lr``. With a wall-clock budget the trainer may also pass a time
    factor that anneals the LR linearly to ``min_lr`` over the budget's last part."""

    def __init__(self, optimizer: torch.optim.Optimizer, base_lr: float, warmup_steps: int = 0,
                 factor: float = 0.5, patience: int = 10, threshold: float = 1e-4, min_lr: float = 1e-6):
        self.optimizer = optimizer
        self.base_lr, self.warmup_steps = float(base_lr), int(warmup_steps)
        self.factor, self.patience, self.threshold, self.min_lr = float(factor), int(patience), float(threshold), float(min_lr)
        self.scale = 1.0
        self.time_factor = 1.0  # set by the trainer in the last part of a wall-clock budget (anneal)
        self.best = float("inf")
        self.bad = 0
        self.step_count = 0
        self._apply()

    def lr(self) -> float:
        warm = min(1.0, (self.step_count + 1) / self.warmup_steps) if self.warmup_steps > 0 else 1.0
        lr = self.base_lr * self.scale * warm
        if self.time_factor < 1.0:
            lr = max(lr * self.time_factor, min(self.min_lr, lr))
        return lr

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr() * group.get("lr_multiplier", 1.0)

    def step(self, time_factor: float = 1.0) -> None:
        """Call after each optimiser step; ``time_factor`` in [0, 1] scales the LR down
        towards ``min_lr`` (linear annealing at the end of a time budget)."""
        self.step_count += 1
        self.time_factor = float(time_factor)
        self._apply()

    def validation(self, loss: float) -> bool:
        """Report a validation loss; returns True when the LR was reduced."""
        if loss < self.best * (1.0 - self.threshold):
            self.best, self.bad = loss, 0
            return False
        self.bad += 1
        if self.bad > self.patience and self.base_lr * self.scale > self.min_lr * (1 + 1e-9):
            self.scale = max(self.scale * self.factor, self.min_lr / self.base_lr)
            self.bad = 0
            self._apply()
            return True
        return False

    def state_dict(self) -> Dict[str, float]:
        return {"scale": self.scale, "best": self.best, "bad": self.bad, "step_count": self.step_count,
                "time_factor": self.time_factor}

    def load_state_dict(self, state: Dict[str, float]) -> None:
        self.scale, self.best = float(state["scale"]), float(state["best"])
        self.bad, self.step_count = int(state["bad"]), int(state["step_count"])
        self.time_factor = float(state.get("time_factor", 1.0))
        self._apply()


class EMA:
    """θ_ema ← d·θ_ema + (1−d)·θ with d = min(decay, (1+n)/(10+n)) after n updates
    (the warm-up of the decay keeps early averages from remembering the random
    initialisation). Buffers (reference energies, scales) are copied."""

    def __init__(self, model: nn.Module, decay: float = 0.99):
        self.decay = float(decay)
        self.num_updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.num_updates += 1
        d = min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point and self.shadow[k].shape == v.shape:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1.0 - d)
            else:
                self.shadow[k].copy_(v)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict(self.shadow)

    def state_dict(self) -> Dict[str, object]:
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": self.shadow}

    def load_state_dict(self, state: Dict[str, object], device: Optional[torch.device] = None) -> None:
        self.decay, self.num_updates = float(state["decay"]), int(state["num_updates"])
        self.shadow = {k: v.clone().to(device) if device is not None else v.clone() for k, v in state["shadow"].items()}


