"""Is an MD run still physical? The checks every MD driver makes once per logged chunk.

A learned potential pushed outside its training range (a time step too long, a
temperature too high) does not crash: it returns finite, meaningless numbers,
and the run heats up or flies apart. :class:`HealthMonitor` looks at each logged
frame and names the first sign of trouble:

* a value that is not finite (energy, positions, forces);
* a temperature far above the target: more than ``temperature_factor`` × the
  target (NVT) or × the starting temperature (NVE), raised for small systems so
  that the chance of an honest thermal fluctuation crossing it is below one in a
  million, and never below ``temperature_floor_k``;
* forces beyond ``max_force`` eV/Å on any atom;
* two atoms closer than ``min_distance`` Å (a collapse);
* a bond broken: an atom that started bonded (its nearest neighbour within
  ``bond_factor`` × the sum of covalent radii) whose nearest neighbour is now
  farther than ``max(separation, 2 × its starting distance)`` Å.

Cost: one nearest-neighbour search per logged frame (all pairs up to 64 atoms,
vesin's cell list above), small next to the steps in between.
"""

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from ..errors import GeoffError, GeoffInputError

#: one energy-log row: time ps, potential eV, kinetic eV, total eV, temperature K
Row = Tuple[float, float, float, float, float]

LIKELY_FIXES = ("Likely fixes: a smaller time step (0.5 fs suits molecules with hydrogen), a lower temperature, "
                "a relaxed starting structure, or a structure and temperature within the potential's training range.")


class MDFailure(GeoffError, RuntimeError):
    """An MD run that stopped being physical (or whose engine failed) at a known step.

    ``step``: the step at which it was found; ``time_ps``: that step's time; ``problem``:
    what went wrong. ``kept`` (set by the driver) says which files were kept.
    """

    exit_code = 3

    def __init__(self, step: int, time_ps: float, problem: str, phase: str = "MD"):
        self.step, self.time_ps, self.problem, self.phase = int(step), float(time_ps), problem, phase
        self.kept = ""
        super().__init__(problem)

    def __str__(self) -> str:
        text = f"{self.phase} failed at step {self.step} ({self.time_ps:.4f} ps): {self.problem} {LIKELY_FIXES}"
        return f"{text} {self.kept}".strip()


class MDInterrupted(GeoffError):
    """The user pressed Ctrl-C; the run stopped cleanly at ``step``."""

    exit_code = 130

    def __init__(self, step: int, time_ps: float, phase: str = "MD"):
        self.step, self.time_ps, self.phase = int(step), float(time_ps), phase
        self.kept = ""
        super().__init__("interrupted")

    def __str__(self) -> str:
        return f"{self.phase} interrupted at step {self.step} ({self.time_ps:.4f} ps). {self.kept}".strip()


@dataclass
class Snapshot:
    """One logged MD frame.

    step: steps done; time_ps: step × time step (ps); positions: [N, 3] Å;
    row: the energy-log row (see :data:`Row`), None when the engine could not give energies;
    forces: [N, 3] eV/Å or None.
    """

    step: int
    time_ps: float
    positions: np.ndarray
    row: Optional[Row] = None
    forces: Optional[np.ndarray] = None


def non_finite(snap: "Snapshot") -> Optional[str]:
    """The first non-finite quantity of a frame (energy/temperature row, positions, forces), or None."""
    if snap.row is not None and not np.all(np.isfinite(snap.row)):
        return "the energy or temperature is not finite (the integration diverged)."
    if not np.all(np.isfinite(snap.positions)):
        return "positions are not finite (the integration diverged)."
    if snap.forces is not None and not np.all(np.isfinite(snap.forces)):
        return "forces are not finite."
    return None


@dataclass
class HealthLimits:
    """Thresholds of :class:`HealthMonitor` (see the module docstring)."""

    temperature_factor: float = 3.0
    temperature_floor_k: float = 500.0
    false_alarm_probability: float = 1e-6
    max_force: float = 100.0        # eV/Å
    min_distance: float = 0.5       # Å
    bond_factor: float = 1.25
    separation: float = 3.0         # Å


#: the ensembles every MD driver runs: velocity Verlet (nve) and Langevin (nvt)
ENSEMBLES = ("nve", "nvt")


def check_ensemble(ensemble: str) -> None:
    """Raise GeoffInputError unless ``ensemble`` is one of :data:`ENSEMBLES`."""
    if ensemble not in ENSEMBLES:
        raise GeoffInputError(f"ensemble must be 'nve' or 'nvt', got {ensemble!r}.")


def check_md_parameters(steps: int, timestep_fs: float, temperature_k: float, log_every: int,
                        friction_per_fs: float = 0.0, equilibration_steps: int = 0) -> None:
    """Raise GeoffInputError naming the first MD parameter that cannot work."""
    if int(steps) != steps or steps < 1:
        raise GeoffInputError(f"steps must be a whole number ≥ 1, got {steps!r}.")
    if not np.isfinite(timestep_fs) or timestep_fs <= 0:
        raise GeoffInputError(f"the time step must be a finite number of fs > 0, got {timestep_fs!r} "
                              "(0.5 fs suits molecules with hydrogen).")
    if not np.isfinite(temperature_k) or temperature_k < 0:
        raise GeoffInputError(f"the temperature must be a finite number of K ≥ 0, got {temperature_k!r}.")
    if int(log_every) != log_every or log_every < 1:
        raise GeoffInputError(f"log_every must be a whole number of steps ≥ 1, got {log_every!r}.")
    if not np.isfinite(friction_per_fs) or friction_per_fs < 0:
        raise GeoffInputError(f"the friction must be a finite number of 1/fs ≥ 0, got {friction_per_fs!r}.")
    if int(equilibration_steps) != equilibration_steps or equilibration_steps < 0:
        raise GeoffInputError(f"equilibration steps must be a whole number ≥ 0, got {equilibration_steps!r}.")


def check_md_atoms(atoms) -> None:
    """MD needs at least two atoms: with the centre-of-mass motion removed, a lone atom never moves."""
    if len(atoms) < 2:
        raise GeoffInputError(
            f"MD needs at least 2 atoms, the structure has {len(atoms)}: with the centre-of-mass motion removed "
            "a single atom never moves. For a crystal, repeat the cell (ASE: atoms.repeat((3, 3, 3))).")


def check_md_input(atoms, potential=None) -> None:
    """The checks every MD driver makes before anything else: the shared structure check
    (atoms present, finite positions, a sensible cell, known elements, no atoms too close),
    then at least two atoms."""
    from ..graph import check_atoms

    check_atoms(atoms, potential=potential, label="structure")
    check_md_atoms(atoms)


def nearest_neighbours(positions: np.ndarray, cell, pbc, cutoff: float) -> Tuple[np.ndarray, np.ndarray]:
    """(distance [N] Å, index [N]) of each atom's nearest neighbour, periodic images included;
    inf and -1 where none is within ``cutoff`` Å."""
    n = len(positions)
    pbc = np.asarray(pbc, dtype=bool).reshape(3)
    if not pbc.any() and n <= 64:
        d2 = np.sum((positions[:, None, :] - positions[None, :, :]) ** 2, axis=-1)
        np.fill_diagonal(d2, np.inf)
        j = np.argmin(d2, axis=1)
        d = np.sqrt(d2[np.arange(n), j])
        far = d > cutoff
        return np.where(far, np.inf, d), np.where(far, -1, j)
    from vesin import NeighborList

    periodic = pbc.tolist() if pbc.any() else False
    box = np.asarray(cell, dtype=np.float64).reshape(3, 3) if pbc.any() else np.zeros((3, 3))
    i, j, d = NeighborList(cutoff=float(cutoff), full_list=True).compute(
        points=np.asarray(positions, dtype=np.float64), box=box, periodic=periodic, quantities="ijd")
    nearest, partner = np.full(n, np.inf), np.full(n, -1)
    order = np.lexsort((d, i))                    # by atom, then by distance: the first of each atom wins
    first = order[np.r_[True, i[order][1:] != i[order][:-1]]] if len(i) else order
    nearest[i[first]], partner[i[first]] = d[first], j[first]
    return nearest, partner


class HealthMonitor:
    """Checks logged MD frames; :meth:`check` returns what went wrong (a sentence) or None.

    Args:
        numbers: [N] atomic numbers. cell: [3, 3] Å. pbc: [3] bool.
        ensemble: "nve" or "nvt". temperature_k: the target (K).
        dof: degrees of freedom the driver's temperature is computed with.
        limits: :class:`HealthLimits`.
        enabled: False keeps only the non-finite checks.
    """

    def __init__(self, numbers: Sequence[int], cell, pbc, ensemble: str, temperature_k: float, dof: int,
                 limits: Optional[HealthLimits] = None, enabled: bool = True):
        from ase.data import covalent_radii

        self.numbers = np.asarray(numbers)
        self.cell = np.asarray(cell, dtype=float).reshape(3, 3)
        self.pbc = np.asarray(pbc, dtype=bool).reshape(3)
        self.ensemble = ensemble
        self.target_k = float(temperature_k)
        self.limits = limits or HealthLimits()
        self.enabled = enabled
        self.radii = covalent_radii[self.numbers]
        factor = self.limits.temperature_factor
        if dof > 0:
            from scipy.stats import chi2

            # the instantaneous temperature of an equilibrated system is T · χ²(dof) / dof
            factor = max(factor, float(chi2.isf(self.limits.false_alarm_probability, dof)) / dof)
        self.temperature_factor = factor
        self.temperature_limit_k = max(factor * self.target_k, self.limits.temperature_floor_k)
        self.watched: Optional[np.ndarray] = None      # atoms that started bonded
        self.separation_limit: Optional[np.ndarray] = None

    def start(self, snap: Snapshot) -> Optional[str]:
        """Take the first frame as the reference (bonded atoms; NVE: the starting temperature); check it."""
        if self.ensemble == "nve" and snap.row is not None and np.isfinite(snap.row[4]):
            reference = max(self.target_k, float(snap.row[4]))
            self.temperature_limit_k = max(self.temperature_factor * reference, self.limits.temperature_floor_k)
        if np.all(np.isfinite(snap.positions)):
            lim = self.limits
            cutoff = lim.bond_factor * 2.0 * float(self.radii.max())
            nearest, partner = nearest_neighbours(snap.positions, self.cell, self.pbc, cutoff)
            found = partner >= 0
            bonded = np.zeros(len(nearest), dtype=bool)
            bonded[found] = nearest[found] <= lim.bond_factor * (self.radii[found] + self.radii[partner[found]])
            self.watched = np.flatnonzero(bonded)
            self.separation_limit = np.maximum(lim.separation, 2.0 * nearest[bonded])
        return self.check(snap)

    def check(self, snap: Snapshot) -> Optional[str]:
        """What is wrong with this frame (one sentence), or None."""
        problem = non_finite(snap)
        if problem or not self.enabled:
            return problem
        lim = self.limits
        if snap.row is not None and snap.row[4] > self.temperature_limit_k:
            what = "target" if self.ensemble == "nvt" else "starting temperature"
            return (f"the temperature is {snap.row[4]:.0f} K, above the limit of {self.temperature_limit_k:.0f} K "
                    f"({self.temperature_factor:.3g} × the {what}, at least {lim.temperature_floor_k:.0f} K): "
                    "the run is heating up.")
        if snap.forces is not None:
            norms = np.linalg.norm(snap.forces, axis=1)
            k = int(np.argmax(norms))
            if norms[k] > lim.max_force:
                return (f"the force on atom {k} is {norms[k]:.1f} eV/Å, beyond the {lim.max_force:g} eV/Å "
                        "a sane structure feels.")
        cutoff = float(self.separation_limit.max()) if self.separation_limit is not None and \
            len(self.separation_limit) else lim.min_distance
        nearest, _ = nearest_neighbours(snap.positions, self.cell, self.pbc, cutoff)
        k = int(np.argmin(nearest))
        if nearest[k] < lim.min_distance:
            return (f"atom {k} is {nearest[k]:.3f} Å from its nearest neighbour, closer than {lim.min_distance:g} Å: "
                    "the structure is collapsing.")
        if self.watched is not None and len(self.watched):
            far = nearest[self.watched] > self.separation_limit
            if far.any():
                atom = int(self.watched[np.flatnonzero(far)[0]])
                dist = nearest[atom]
                where = f"{dist:.2f} Å away" if np.isfinite(dist) else \
                    f"farther than {self.separation_limit[np.flatnonzero(far)[0]]:.1f} Å away"
                return (f"a bond broke: atom {atom} started bonded and its nearest neighbour is now {where} "
                        f"({int(far.sum())} atom(s) separated).")
        return None
