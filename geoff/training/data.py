"""Training data: read labelled structures, check them, split them, batch them.

A dataset is a list of :class:`Sample` (plain NumPy arrays, ASE units: Å, eV,
eV/Å, eV/Å³). Readers:

- anything ``ase.io.read`` reads (extended XYZ, ASE databases ``.db``, ...):
  energy / forces / stress are taken from ``atoms.info`` / ``atoms.arrays``
  under the configured key names, or from the attached calculator results
  (ASE moves ``energy``/``forces``/``stress`` there when reading extended XYZ);
- NumPy ``.npz`` in the MD17 layout (``R`` or ``coords`` [M, N, 3], ``z`` or
  ``nuclear_charges`` [N], ``E`` or ``energies`` [M], ``F`` or ``forces``
  [M, N, 3]). These files carry no units, so the energy unit must be given.

Neighbour lists are computed once per sample (:func:`precompute_edges`) and a
batch is built by concatenation (:func:`collate`), which gives the same graph
as :func:`geoff.graph.structures_to_graph` without redoing the neighbour search
every step.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from ase import units as ase_units
from ase.data import chemical_symbols
from torch import Tensor

from .. import keys
from ..errors import GeoffInputError
from ..graph import arrays_to_graph, assemble_graph

#: energy units a dataset may declare → eV.
ENERGY_UNITS = {"eV": 1.0, "meV": 1e-3, "kcal/mol": ase_units.kcal / ase_units.mol,
                "kJ/mol": ase_units.kJ / ase_units.mol, "Hartree": ase_units.Hartree, "Ha": ase_units.Hartree,
                "Ry": ase_units.Rydberg}
#: length units a dataset may declare → Å.
LENGTH_UNITS = {"Å": 1.0, "A": 1.0, "Angstrom": 1.0, "nm": 10.0, "Bohr": ase_units.Bohr}

TARGET_ENERGY = "target_energy"  # [B] eV
TARGET_FORCES = "target_forces"  # [N, 3] eV/Å
TARGET_STRESS = "target_stress"  # [B, 3, 3] eV/Å³


@dataclass
class Sample:
    """One labelled structure. Shapes: positions [N,3] Å, numbers [N], cell [3,3] Å,
    pbc [3]; energy eV, forces [N,3] eV/Å, stress [3,3] eV/Å³ (None when absent)."""

    numbers: np.ndarray
    positions: np.ndarray
    cell: np.ndarray
    pbc: np.ndarray
    energy: Optional[float] = None
    forces: Optional[np.ndarray] = None
    stress: Optional[np.ndarray] = None
    config_type: Optional[str] = None
    source: str = ""
    edges: Optional[Tuple[np.ndarray, np.ndarray]] = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.numbers)

    def to_atoms(self):
        from ase import Atoms

        return Atoms(numbers=self.numbers, positions=self.positions, cell=self.cell, pbc=self.pbc)


def _voigt_to_matrix(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s, dtype=np.float64).reshape(-1)
    if s.size == 9:
        return s.reshape(3, 3)
    if s.size == 6:  # xx yy zz yz xz xy
        xx, yy, zz, yz, xz, xy = s
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    raise GeoffInputError(f"stress must have 6 (Voigt) or 9 components, got {s.size}.")


def _energy_value(value, source: str, k: int) -> float:
    try:
        return float(np.asarray(value, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        raise GeoffInputError(f"structure {source}[{k}]: energy {value!r} is not one number; check the file's "
                              "energy field (data.energy_key / --energy-key).") from None


def _from_atoms(atoms, k: int, source: str, energy_key: str, forces_key: str, stress_key: str,
                e_factor: float, l_factor: float) -> Sample:
    calc_results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}

    def get(key, standard, per_atom):
        if per_atom and key in atoms.arrays:
            return atoms.arrays[key]
        if not per_atom and key in atoms.info:
            return atoms.info[key]
        if key == standard and standard in calc_results:
            return calc_results[standard]
        return None

    energy = get(energy_key, "energy", False)
    forces = get(forces_key, "forces", True)
    stress = get(stress_key, "stress", False)
    return Sample(
        numbers=np.asarray(atoms.get_atomic_numbers(), dtype=np.int64),
        positions=np.asarray(atoms.get_positions(), dtype=np.float64) * l_factor,
        cell=np.asarray(atoms.get_cell()[:], dtype=np.float64) * l_factor,
        pbc=np.asarray(atoms.get_pbc(), dtype=bool),
        energy=None if energy is None else _energy_value(energy, source, k) * e_factor,
        forces=None if forces is None else np.asarray(forces, dtype=np.float64) * e_factor / l_factor,
        stress=None if stress is None else _voigt_to_matrix(stress) * e_factor / l_factor ** 3,
        config_type=atoms.info.get("config_type"),
        source=f"{source}[{k}]",
    )


def _npz_arrays(path: Path, pos, z, energy, forces, names) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray],
                                                                    Optional[np.ndarray]]:
    """Check the shapes of an MD17-layout file's arrays: R [M, N, 3], z [N], E [M] (or [M, 1]), F [M, N, 3]."""
    if pos is None or z is None:
        raise GeoffInputError(f"{path}: an MD17-layout .npz needs positions ('R' or 'coords') and atomic numbers "
                              f"('z' or 'nuclear_charges'); it has {sorted(names)}.")
    z = np.asarray(z).reshape(-1) if np.ndim(z) == 2 and 1 in np.shape(z) else np.asarray(z)
    if z.ndim != 1 or not np.issubdtype(z.dtype, np.number):
        raise GeoffInputError(f"{path}: atomic numbers have shape {tuple(np.shape(z))}; expected [N] (one per atom).")
    n = len(z)
    if pos.ndim != 3 or pos.shape[1:] != (n, 3):
        raise GeoffInputError(f"{path}: positions have shape {tuple(pos.shape)}; expected [M, N, 3] = [M, {n}, 3] "
                              f"(M frames of the {n} atoms in the atomic numbers).")
    m = pos.shape[0]
    if energy is not None:
        if energy.ndim == 2 and energy.shape[1] == 1:
            energy = energy[:, 0]
        if energy.ndim != 1:
            raise GeoffInputError(f"{path}: energies have shape {tuple(energy.shape)}; expected [M] or [M, 1], "
                                  "one energy per frame.")
        if len(energy) != m:
            raise GeoffInputError(f"{path}: {len(energy)} energies for {m} frames of positions; the file needs one "
                                  "energy per frame (cut the positions to the labelled frames, or fix the file).")
    if forces is not None:
        if forces.ndim != 3 or forces.shape[1:] != (n, 3):
            hint = (" It looks like [M, 3, N]: transpose it with np.transpose(F, (0, 2, 1)) before saving."
                    if forces.ndim == 3 and forces.shape[1:] == (3, n) else "")
            raise GeoffInputError(f"{path}: forces have shape {tuple(forces.shape)}; expected [M, N, 3] = "
                                  f"[{m}, {n}, 3] (frames, atoms, x/y/z), like the positions.{hint}")
        if len(forces) != m:
            raise GeoffInputError(f"{path}: {len(forces)} force frames for {m} frames of positions; the file needs "
                                  "forces for every frame (cut the positions to the labelled frames, or fix the file).")
    return pos, z, energy, forces


def _read_npz(path: Path, energy_unit: Optional[str], l_factor: float) -> List[Sample]:
    if energy_unit is None:
        raise GeoffInputError(
            f"{path}: .npz files carry no units. Set the energy unit (data.energy_unit, e.g. 'kcal/mol' for "
            f"MD17/rMD17 files, or 'eV'); choices: {sorted(ENERGY_UNITS)}."
        )
    e_factor = ENERGY_UNITS[energy_unit]
    try:
        f = np.load(path)
    except Exception as exc:  # noqa: BLE001 - numpy raises several types for unreadable files
        raise GeoffInputError(f"{path}: numpy could not read it ({type(exc).__name__}: {exc}); give an MD17-layout "
                              ".npz (R, z, E, F) or a file ase.io reads.") from exc
    with f:
        names = set(f.files)

        def pick(*options):
            for o in options:
                if o in names:
                    return np.asarray(f[o])
            return None

        pos = pick("R", "coords", "positions")
        z = pick("z", "nuclear_charges", "atomic_numbers", "numbers")
        energy = pick("E", "energies", "energy")
        forces = pick("F", "forces")
    pos, z, energy, forces = _npz_arrays(path, pos, z, energy, forces, names)
    z = z.astype(np.int64)
    out = []
    for k in range(len(pos)):
        out.append(Sample(
            numbers=z.copy(), positions=pos[k].astype(np.float64) * l_factor, cell=np.zeros((3, 3)),
            pbc=np.zeros(3, dtype=bool),
            energy=None if energy is None else float(energy[k]) * e_factor,
            forces=None if forces is None else forces[k].astype(np.float64) * e_factor / l_factor,
            source=f"{path}[{k}]",
        ))
    return out


def check_shapes(samples: Sequence[Sample]) -> None:
    """The one check of array shapes, for every reader and for hand-made samples: positions
    [N, 3], numbers [N], cell [3, 3], pbc [3], energy a number, forces [N, 3], stress [3, 3].

    Raises :class:`GeoffInputError` naming the structure, the shape found and the one expected.
    """
    for s in samples:
        n = len(s.numbers)
        expected = (("positions", s.positions, (n, 3)), ("cell", s.cell, (3, 3)), ("pbc", s.pbc, (3,)),
                    ("forces", s.forces, (n, 3)), ("stress", s.stress, (3, 3)))
        if np.ndim(s.numbers) != 1 or n == 0:
            raise GeoffInputError(f"structure {s.source}: atomic numbers have shape {np.shape(s.numbers)}; "
                                  "expected [N] with N ≥ 1.")
        for name, value, shape in expected:
            if value is not None and np.shape(value) != shape:
                what = f"[N, 3] = {list(shape)} (one row of x, y, z per atom)" if shape == (n, 3) else f"{list(shape)}"
                raise GeoffInputError(f"structure {s.source}: {name} array of shape {list(np.shape(value))} for "
                                      f"{n} atoms; expected {what}. Check the file's {name} field (and the "
                                      "key names, data.*_key in a config or --*-key on the command line).")
        if s.energy is not None and np.ndim(s.energy) != 0:
            raise GeoffInputError(f"structure {s.source}: energy has shape {np.shape(s.energy)}; expected one "
                                  "number per structure.")


def _select(samples: List[Sample], index, path: Path) -> List[Sample]:
    """Apply an ASE frame selection (":", "0:100", "::10", "-1", 5) to frames read without ase.io."""
    from ase.io.formats import string2index

    try:
        sel = string2index(index) if isinstance(index, str) else index
        return samples[sel] if isinstance(sel, slice) else [samples[sel]]
    except (ValueError, TypeError, IndexError):
        raise GeoffInputError(f"{path}: frame selection {index!r} does not fit its {len(samples)} frames; give "
                              "an index such as ':', '0:100' or '-1'.") from None


def read_dataset(path, energy_key: str = "energy", forces_key: str = "forces", stress_key: str = "stress",
                 energy_unit: Optional[str] = None, length_unit: str = "Å", index: str = ":",
                 format: Optional[str] = None, config_types: Optional[Sequence[str]] = None) -> List[Sample]:
    """Read labelled structures from ``path`` (any ``ase.io`` format or MD17 ``.npz``).

    Args:
        energy_key / forces_key / stress_key: names in ``atoms.info`` / ``atoms.arrays``.
        energy_unit: unit of the file's energies (default eV; required for ``.npz``).
        length_unit: unit of the file's positions and cell (default Å).
        index: ASE frame selection, e.g. ":" or "0:100".
        config_types: keep only frames whose ``config_type`` is listed (isolated
            atoms are always kept, so that reference energies can be read from them).
    Returns:
        list of :class:`Sample` in ASE units.
    """
    path = Path(path)
    if not path.exists():
        raise GeoffInputError(f"data file {str(path)!r} does not exist; check the path in the config.")
    if length_unit not in LENGTH_UNITS:
        raise GeoffInputError(f"unknown length unit {length_unit!r}; choose one of {sorted(LENGTH_UNITS)}.")
    if energy_unit is not None and energy_unit not in ENERGY_UNITS:
        raise GeoffInputError(f"unknown energy unit {energy_unit!r}; choose one of {sorted(ENERGY_UNITS)}.")
    l_factor = LENGTH_UNITS[length_unit]
    if path.suffix == ".npz":
        samples = _select(_read_npz(path, energy_unit, l_factor), index, path)
    else:
        import ase.io

        try:
            frames = ase.io.read(str(path), index=index, format=format)
        except Exception as exc:  # ASE raises many types for unreadable files
            raise GeoffInputError(f"{path}: ase.io could not read it ({type(exc).__name__}: {exc}). "
                                  "Give a file format ase.io knows (data.format) or an MD17 .npz.") from exc
        if not isinstance(frames, list):
            frames = [frames]
        e_factor = ENERGY_UNITS[energy_unit or "eV"]
        samples = [_from_atoms(a, k, str(path), energy_key, forces_key, stress_key, e_factor, l_factor)
                   for k, a in enumerate(frames)]
    if isinstance(config_types, str):
        config_types = [config_types]
    if config_types:
        keep = set(config_types) | {"isolated_atom", "IsolatedAtom"}
        samples = [s for s in samples if s.config_type in keep]
    check_shapes(samples)
    if not samples:
        raise GeoffInputError(f"{path}: no structures read (index {index!r}, config_types {config_types}).")
    return samples


def is_isolated_atom(s: Sample) -> bool:
    return s.config_type in ("isolated_atom", "IsolatedAtom") or (len(s) == 1 and s.energy is not None
                                                                  and not np.any(s.pbc))


def split_isolated_atoms(samples: List[Sample]) -> Tuple[List[Sample], Dict[str, float]]:
    """Remove isolated-atom frames; return the rest and {symbol: energy eV}."""
    rest, e0 = [], {}
    for s in samples:
        if is_isolated_atom(s):
            if s.energy is None:
                raise GeoffInputError(f"{s.source}: isolated-atom frame without an energy.")
            e0[chemical_symbols[int(s.numbers[0])]] = float(s.energy)
        else:
            rest.append(s)
    return rest, e0


def split_by_seed(samples: List[Sample], n_train: Optional[int], n_valid: Optional[int],
                  valid_fraction: float, seed: int) -> Tuple[List[Sample], List[Sample]]:
    """Random train/validation split, reproducible from ``seed``."""
    n = len(samples)
    if n_valid is None:
        n_valid = max(1, int(round(valid_fraction * n)))
    if n_train is None:
        n_train = n - n_valid
    if n_train + n_valid > n or n_train < 1 or n_valid < 0:
        raise GeoffInputError(f"cannot take {n_train} training + {n_valid} validation structures from {n}; "
                              "lower data.n_train / data.n_valid.")
    perm = np.random.default_rng(seed).permutation(n)
    return [samples[k] for k in perm[:n_train]], [samples[k] for k in perm[n_train:n_train + n_valid]]


def check_samples(samples: List[Sample], species: Sequence[str], need_energy: bool, need_forces: bool,
                  need_stress: bool, label: str) -> None:
    """Raise :class:`GeoffInputError` before training when data lack what the loss
    needs, or contain elements the model does not know."""
    known = set(species)
    check_shapes(samples)
    for s in samples:
        names = {chemical_symbols[int(z)] for z in s.numbers}
        if not names <= known:
            raise GeoffInputError(
                f"{label} structure {s.source} contains {sorted(names - known)}, which the model's species "
                f"{list(species)} lack. Add them to model.species (or fine-tune with a potential that has them).")
        if need_energy and s.energy is None:
            raise GeoffInputError(f"{label} structure {s.source} has no energy but the loss weights energies. "
                                  "Set data.energy_key to the file's energy field, or loss.energy_weight: 0.")
        if need_forces and s.forces is None:
            raise GeoffInputError(f"{label} structure {s.source} has no forces but the loss weights forces. "
                                  "Set data.forces_key to the file's forces array, or loss.forces_weight: 0.")
        if need_stress and s.stress is None:
            raise GeoffInputError(f"{label} structure {s.source} has no stress but loss.stress_weight > 0. "
                                  "Set data.stress_key, or loss.stress_weight: 0.")
        for name, v in (("energy", s.energy), ("forces", s.forces)):
            if v is not None and not np.all(np.isfinite(v)):
                raise GeoffInputError(f"{label} structure {s.source}: {name} contains NaN or inf.")


def check_units(samples: List[Sample], reference_energies: Dict[str, float], label: str) -> None:
    """Catch mixed units: after subtracting the per-element reference energies the
    binding energy of a bound structure is a few eV per atom at most. A value of
    tens of eV/atom means energies (or reference energies) in another unit."""
    for s in samples:
        if s.energy is None:
            continue
        ref = sum(reference_energies.get(chemical_symbols[int(z)], 0.0) for z in s.numbers)
        per_atom = (s.energy - ref) / len(s)
        if abs(per_atom) > 20.0:
            raise GeoffInputError(
                f"{label} structure {s.source}: energy minus reference energies is {per_atom:.1f} eV/atom, "
                "far beyond chemical binding energies: the energies and the reference energies are probably in "
                "different units. Set data.energy_unit for each file (geoff works in eV).")


def precompute_edges(samples: List[Sample], cutoff: float, progress: bool = False) -> None:
    """Compute each sample's neighbour list (edge_index [2,E], shifts [E,3]) once."""
    from tqdm import tqdm

    for s in tqdm(samples, desc="neighbour lists", disable=not progress, leave=False):
        g = arrays_to_graph(s.positions, s.numbers, None, s.cell, s.pbc, cutoff=cutoff, dtype=torch.float64)
        s.edges = (g[keys.EDGE_INDEX].numpy(), g[keys.EDGE_SHIFTS].numpy())


def collate(samples: Sequence[Sample], dtype: torch.dtype = torch.float32,
            device="cpu") -> Dict[str, Tensor]:
    """Concatenate samples (with precomputed edges) into one graph plus targets
    TARGET_ENERGY [B], TARGET_FORCES [N,3], TARGET_STRESS [B,3,3] (present when
    every sample has them)."""
    counts = np.array([len(s) for s in samples], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    graph = assemble_graph(np.concatenate([s.positions for s in samples]), np.concatenate([s.numbers for s in samples]),
                           counts, np.stack([s.cell for s in samples]), np.stack([s.pbc for s in samples]),
                           np.concatenate([s.edges[0] + o for s, o in zip(samples, offsets)], axis=1),
                           np.concatenate([s.edges[1] for s in samples], axis=0), dtype=dtype, device=device)
    t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
    if all(s.energy is not None for s in samples):
        graph[TARGET_ENERGY] = t(np.array([s.energy for s in samples]))
    if all(s.forces is not None for s in samples):
        graph[TARGET_FORCES] = t(np.concatenate([s.forces for s in samples]))
    if all(s.stress is not None for s in samples):
        graph[TARGET_STRESS] = t(np.stack([s.stress for s in samples]))
    return graph


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """Deterministic shuffle of n samples for ``epoch``: a function of (seed, epoch)
    only, so a resumed run sees exactly the batches an uninterrupted one does."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(n)


def batches(order: np.ndarray, batch_size: int) -> List[np.ndarray]:
    """Split an order into batches (the last one may be smaller)."""
    return [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
