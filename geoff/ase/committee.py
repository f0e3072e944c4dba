"""A committee's mean and spread over many structures, through the ASE calculator."""

import os
from typing import Dict, Sequence, Union

import numpy as np
import torch

from ..errors import GeoffInputError
from ..models.committee import CommitteePotential
from .calculator import GeoffCalculator


def committee_uncertainty(committee: Union[CommitteePotential, str, os.PathLike], structures: Sequence,
                          device: Union[str, torch.device] = "cpu") -> Dict[str, np.ndarray]:
    """The committee's predictions and spreads on each of ``structures`` (ase.Atoms), e.g. to pick
    the configurations to label next.

    Returns arrays over the S structures: energy [S] (eV), energy_std [S] (eV), max_force_std [S]
    (eV/Å), and lists forces / forces_std of [N_s, 3] / [N_s] arrays (eV/Å); see
    :func:`geoff.models.committee.committee_statistics`.
    """
    calc = GeoffCalculator(committee, device=device)
    if calc.members is None:
        raise GeoffInputError("committee_uncertainty needs a committee potential (geoff committee build), "
                              f"got a single {calc.potential.model_type!r} potential.")
    rows: Dict[str, list] = {"energy": [], "energy_std": [], "max_force_std": [], "forces": [], "forces_std": []}
    for atoms in structures:
        atoms = atoms.copy()
        atoms.calc = calc
        atoms.get_forces()
        for name in rows:
            rows[name].append(calc.results[name])
    return {name: (np.asarray(v, dtype=np.float64) if name in ("energy", "energy_std", "max_force_std") else v)
            for name, v in rows.items()}
