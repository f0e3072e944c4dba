"""Reading and writing potential files."""

from .atomic import atomic_path
from .committee import build_committee
from .potential_file import load_potential, read_payload, resolve_potential_path, save_potential, shipped_potentials

__all__ = ["atomic_path", "build_committee", "load_potential", "read_payload", "resolve_potential_path", "save_potential",
           "shipped_potentials"]
