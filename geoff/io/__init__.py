"""Reading and writing potential files."""

from .atomic import atomic_path
from .potential_file import load_potential, read_payload, resolve_potential_path, save_potential, shipped_potentials

__all__ = ["atomic_path", "load_potential", "read_payload", "resolve_potential_path", "save_potential",
           "shipped_potentials"]
