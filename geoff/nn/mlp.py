"""Small multilayer perceptrons."""

from typing import Sequence

from torch import nn


def mlp(sizes: Sequence[int], activation: str = "silu", last_activation: bool = False) -> nn.Sequential:
    """Linear layers between ``sizes`` with ``activation`` between them."""
    acts = {"silu": nn.SiLU, "tanh": nn.Tanh, "gelu": nn.GELU}
    layers = []
    for k in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[k], sizes[k + 1]))
        if k < len(sizes) - 2 or last_activation:
            layers.append(acts[activation]())
    return nn.Sequential(*layers)
