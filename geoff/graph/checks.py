"""One check of a structure before geoff touches it: every entry point calls :func:`check_atoms`.

What is refused (each with a :class:`~geoff.errors.GeoffInputError` that names the problem and the fix):
no atoms; NaN or infinite positions; a periodic axis without a cell or with a degenerate cell; a cell
so thin along a periodic axis that the neighbour search would need an absurd number of periodic
images; elements the potential does not know; two atoms (or an atom and a periodic image) closer
than ``min_distance``.

:func:`validate_arrays` is the part that needs no potential and no neighbour search (the graph
builders run it on every structure); :func:`check_distances` finds atoms that are too close from
the edges of an already built graph (the ASE calculator runs it every step).
"""

from typing import Dict, Optional

import numpy as np
import torch
from torch import Tensor

from .. import keys
from ..errors import GeoffInputError
from .neighbours import cell_heights as _cell_heights

#: A periodic axis whose cell height is below this fraction of the cutoff is refused: the
#: neighbour search would need more than 1 / THIN_CELL_FRACTION periodic images along it.
THIN_CELL_FRACTION = 0.1
#: The cutoff (Å) the thin-cell bound assumes when no potential (and no cutoff) is given.
GENERIC_CUTOFF = 5.0
#: Smallest radius (Å) of the search for atoms closer than min_distance (see _min_distance_search).
MIN_DISTANCE_SEARCH = 1.2


def cell_heights(cell) -> np.ndarray:
    """:func:`geoff.graph.neighbours.cell_heights` of a cell [3, 3] Å given as an array: heights [3] Å."""
    return _cell_heights(torch.as_tensor(np.asarray(cell, dtype=np.float64).reshape(3, 3))).numpy()


def validate_arrays(positions, cell, pbc, cutoff: Optional[float] = None, label: str = "structure",
                    atom_ids: Optional[np.ndarray] = None) -> None:
    """Check one structure given as arrays: positions [N, 3] Å, cell [3, 3] Å, pbc [3] bool.

    Raises :class:`GeoffInputError` for positions of the wrong shape, NaN/inf positions, a periodic
    axis without a (non-degenerate) cell, and a cell thinner than ``THIN_CELL_FRACTION`` × ``cutoff``
    (Å; ``GENERIC_CUTOFF`` when None) along a periodic axis. No neighbour search, no potential.
    ``atom_ids`` [N]: how atoms are numbered in messages (default 0..N−1).
    """
    positions = np.asarray(positions)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise GeoffInputError(f"{label}: positions must have shape [N, 3], got {list(positions.shape)}.")
    if not np.all(np.isfinite(positions)):
        bad = np.unique(np.nonzero(~np.isfinite(positions))[0])
        if atom_ids is not None:
            bad = np.asarray(atom_ids)[bad]
        raise GeoffInputError(
            f"{label}: positions of atoms {bad[:10].tolist()}{' ...' if len(bad) > 10 else ''} are NaN or infinite. "
            "Check the structure file or the integrator that produced it (a time step that is too large blows up MD)."
        )
    pbc = np.asarray(pbc, dtype=bool).reshape(-1)
    if not pbc.any():
        return
    cell = np.asarray(cell, dtype=np.float64).reshape(3, 3)
    if not np.all(np.isfinite(cell)):
        raise GeoffInputError(f"{label}: the cell {cell.tolist()} contains NaN or infinite values. "
                              "Set a finite cell (atoms.set_cell(...)).")
    lengths = np.linalg.norm(cell, axis=1)
    volume = abs(float(np.linalg.det(cell)))
    if np.any(lengths[pbc] < 1e-8) or volume < 1e-8:
        raise GeoffInputError(
            f"{label}: periodic boundary conditions {pbc.tolist()} but the cell {cell.tolist()} is missing or "
            "degenerate. Set a cell (atoms.set_cell(...)) or turn periodicity off (atoms.pbc = False)."
        )
    rc = float(cutoff) if cutoff is not None and cutoff > 0 else GENERIC_CUTOFF
    heights = cell_heights(cell)
    thin = [k for k in range(3) if pbc[k] and heights[k] < THIN_CELL_FRACTION * rc]
    if thin:
        k = min(thin, key=lambda a: heights[a])
        images = int(np.ceil(rc / max(heights[k], 1e-300)))
        raise GeoffInputError(
            f"{label}: the cell is only {heights[k]:.3g} Å thick along periodic lattice vector {k} (the distance "
            f"between the cell faces spanned by the other two vectors), less than {THIN_CELL_FRACTION:g} × the "
            f"{rc:g} Å cutoff: the neighbour search would need ~{images} periodic images along it. The cell "
            f"{cell.tolist()} is (nearly) degenerate: check its vectors (a typo, or two nearly parallel vectors?); "
            "if it describes a sensible lattice through very skewed vectors, reduce it first "
            "(ase.build.niggli_reduce(atoms))."
        )


def _too_close(label: str, i: int, j: int, image: bool, distance: float, min_distance: float) -> GeoffInputError:
    what = f"atom {i} and a periodic image of atom {j}" if image else f"atoms {i} and {j}"
    return GeoffInputError(
        f"{label}: {what} are {distance:.3f} Å apart, closer than the {min_distance:g} Å that is physically "
        "sensible. Check the structure (duplicated atoms? wrong units, nm instead of Å? a cell too small for "
        "its atoms?) or lower min_distance if this is intended."
    )


def check_distances(graph: Dict[str, Tensor], min_distance: float, label: str = "structure") -> None:
    """Raise :class:`GeoffInputError` if two atoms (or periodic images) joined by an edge of ``graph``
    (see ``geoff.keys``) are closer than ``min_distance`` Å. Complete for any ``min_distance`` below
    the cutoff the graph was built with."""
    if min_distance <= 0 or graph[keys.EDGE_INDEX].shape[1] == 0:
        return
    i, j = graph[keys.EDGE_INDEX]
    pos = graph[keys.POSITIONS].detach()
    vec = pos[j] - pos[i]
    shifts = graph[keys.EDGE_SHIFTS]
    if bool(graph[keys.PBC].any()):
        cell = graph[keys.CELL].detach().to(pos.dtype)
        vec = vec + torch.bmm(shifts.to(pos.dtype).unsqueeze(1), cell[graph[keys.BATCH][i]]).squeeze(1)
    d = torch.linalg.norm(vec, dim=1)
    k = int(torch.argmin(d))
    if float(d[k]) < min_distance:
        image = bool((shifts[k] != 0).any())
        raise _too_close(label, int(i[k]), int(j[k]), image, float(d[k]), min_distance)


def _check_elements(potential, numbers: np.ndarray) -> None:
    """``potential.check_elements``, with a fast path (a table look-up) when every element is known."""
    table = getattr(potential, "z_to_species", None)
    if table is not None and numbers.size:
        t = table.detach().cpu().numpy()
        if 0 < numbers.min() and numbers.max() < len(t) and bool((t[numbers] >= 0).all()):
            return
    potential.check_elements(numbers)


def _min_distance_search(positions: np.ndarray, cell: np.ndarray, pbc: np.ndarray, min_distance: float,
                         label: str, atom_ids: Optional[np.ndarray] = None) -> None:
    """Pairs (and periodic images) closer than ``min_distance`` through vesin's cell list, searched
    within ``max(min_distance, MIN_DISTANCE_SEARCH)`` Å: a few bonds per atom in a sensible structure,
    and vesin's cell list is slow with cells much smaller than that (many nearly empty cells to visit)."""
    from vesin import NeighborList

    if len(positions) < 2 and not pbc.any():
        return
    box = cell if pbc.any() else np.zeros((3, 3))
    nl = NeighborList(cutoff=max(float(min_distance), MIN_DISTANCE_SEARCH), full_list=False)
    i, j, s, d = nl.compute(points=positions, box=box, periodic=pbc.tolist() if pbc.any() else False,
                            quantities="ijSd")
    if len(d) == 0:
        return
    k = int(np.argmin(d))
    if d[k] < min_distance:
        a, b = (int(i[k]), int(j[k])) if atom_ids is None else (int(atom_ids[i[k]]), int(atom_ids[j[k]]))
        raise _too_close(label, a, b, bool(np.any(s[k] != 0)), float(d[k]), min_distance)


def check_atoms(atoms, potential=None, min_distance: float = 0.5, label: str = "structure",
                *, atom_ids=None) -> None:
    """Refuse a structure geoff cannot evaluate sensibly, before any neighbour search runs.

    Args:
        atoms: an ``ase.Atoms`` (positions Å, cell Å, pbc).
        potential: a geoff ``Potential`` (or anything with ``cutoff`` and ``check_elements``), or None.
            With a potential, the elements are checked against it and the thin-cell bound is
            ``THIN_CELL_FRACTION`` × its cutoff; without, only the generic bound (``GENERIC_CUTOFF``).
        min_distance: refuse atoms (or periodic images) closer than this, Å (≤ 0: no distance check).
        label: how the structure is named in messages.
        atom_ids: [N] how atoms are numbered in messages (default 0..N−1; e.g. particle indices
            when ``atoms`` is a subset of a larger system).

    Raises:
        GeoffInputError: naming the problem and its fix (see the module docstring for the list).
    """
    n = len(atoms)
    if n == 0:
        raise GeoffInputError(f"{label}: the structure has no atoms. Give a structure with at least one atom.")
    positions = np.asarray(atoms.positions, dtype=np.float64)
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cutoff = getattr(potential, "cutoff", None) if potential is not None else None
    ids = None if atom_ids is None else np.asarray(atom_ids, dtype=np.int64).reshape(-1)
    validate_arrays(positions, cell, pbc, cutoff=cutoff, label=label, atom_ids=ids)
    if potential is not None:
        _check_elements(potential, np.asarray(atoms.numbers, dtype=np.int64))
    if min_distance > 0:
        _min_distance_search(positions, cell, pbc, min_distance, label, ids)
