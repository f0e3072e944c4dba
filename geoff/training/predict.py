"""Predictions of a potential over labelled samples, batch by batch: the one loop behind
validation, test errors, ``geoff evaluate``, the fine-tuning refit and the model card."""

from typing import Dict, Iterator, List, Optional, Tuple

import torch
from torch import Tensor
from tqdm import tqdm

from .data import Sample, collate, precompute_edges


def predict(potential, samples: List[Sample], batch_size: int, compute_forces: bool = True,
            compute_stress: bool = False, dtype: Optional[torch.dtype] = None, device=None,
            progress: bool = False, desc: str = "predict") -> Iterator[Tuple[Dict[str, Tensor], Dict[str, Tensor]]]:
    """Yield (batch, outputs) for consecutive batches of ``batch_size`` samples.

    ``batch`` is :func:`~geoff.training.data.collate`'s graph with its targets; ``outputs`` the
    potential's (energy [B] eV, atomic energies [N], forces [N, 3] eV/Å and stress [B, 3, 3] eV/Å³
    when asked), detached. Samples without a neighbour list get one at the potential's cutoff first.
    ``dtype`` / ``device`` default to the potential's.
    """
    missing = [s for s in samples if s.edges is None]
    if missing:
        precompute_edges(missing, float(potential.cutoff))
    if dtype is None:
        dtype = potential.reference_energies.dtype
    if device is None:
        device = potential.reference_energies.device
    for k in tqdm(range(0, len(samples), batch_size), desc=desc, disable=not progress, leave=False):
        batch = collate(samples[k:k + batch_size], dtype, device)
        with torch.set_grad_enabled(compute_forces or compute_stress):  # forces and stress come from autograd
            out = potential(batch, compute_forces=compute_forces, compute_stress=compute_stress)
        yield batch, {key: v.detach() for key, v in out.items()}
