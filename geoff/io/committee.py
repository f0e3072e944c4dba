"""Building a committee potential from potential files, shipped names or potentials."""

import os
from typing import Sequence, Union

from ..errors import GeoffInputError
from ..models.committee import CommitteePotential
from ..models.potential import Potential
from .potential_file import load_potential


def build_committee(members: Sequence[Union[str, os.PathLike, Potential]]) -> CommitteePotential:
    """A committee from potentials or potential files/shipped names (each loaded with ``geoff.load``).
    Members must share species (same order) and cutoff (GeoffInputError otherwise)."""
    if len(members) < 2:
        raise GeoffInputError(f"a committee needs at least two members to have a spread, got {len(members)}.")
    loaded = [load_potential(m) if isinstance(m, (str, os.PathLike)) else m for m in members]
    return CommitteePotential.from_members(loaded)
