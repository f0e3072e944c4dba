"""The structure an MD run starts from: a file ase.io reads, or a molecule name."""

from pathlib import Path

from ase.io import read

from ..errors import GeoffInputError

#: Molecule names accepted in place of a structure file (ase.build.molecule names also work).
MOLECULE_ALIASES = {"ethanol": "CH3CH2OH", "methanol": "CH3OH", "water": "H2O"}


def load_structure(spec: str):
    """An ASE ``Atoms`` from a file ase.io reads (last frame) or a molecule name like "ethanol"."""
    path = Path(spec)
    if path.is_file():
        return read(path, index=-1)
    from ase.build import molecule
    from ase.collections import g2

    name = MOLECULE_ALIASES.get(spec, spec)
    if name in g2.names:
        return molecule(name)
    raise GeoffInputError(f"{spec!r} is neither a structure file nor a molecule name (e.g. 'ethanol', 'CH4').")
