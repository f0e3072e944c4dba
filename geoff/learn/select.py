"""Which explored frames to label: the uncertain ones, spread over the trajectories."""

from typing import List, Sequence, Tuple

import numpy as np


def select_uncertain(spreads: Sequence[np.ndarray], steps: Sequence[np.ndarray], threshold: float,
                     upper_bound: float, limit: int, min_spacing: int) -> List[Tuple[int, int]]:
    """(trajectory, frame) pairs to label, most uncertain first.

    Args:
        spreads: per trajectory, [F] max atomic force std of each frame (eV/Å).
        steps: per trajectory, [F] MD step of each frame.
        threshold, upper_bound: a frame is a candidate when threshold < spread ≤ upper_bound (eV/Å).
        limit: at most this many frames.
        min_spacing: frames of one trajectory chosen at least this many steps apart (a burst of
            uncertainty along a trajectory gives one label, not ten near-copies).
    """
    cands = [(float(s), t, f) for t, sp in enumerate(spreads) for f, s in enumerate(np.asarray(sp, dtype=float))
             if threshold < s <= upper_bound]
    cands.sort(key=lambda c: (-c[0], c[1], c[2]))
    chosen: List[Tuple[int, int]] = []
    taken: dict = {}
    for _, t, f in cands:
        if len(chosen) >= limit:
            break
        step = int(steps[t][f])
        if any(abs(step - other) < min_spacing for other in taken.get(t, [])):
            continue
        chosen.append((t, f))
        taken.setdefault(t, []).append(step)
    return chosen


def select_spread(counts: Sequence[int], limit: int) -> List[Tuple[int, int]]:
    """``limit`` (trajectory, frame) pairs spaced evenly over all frames of all trajectories taken
    in order (for labels chosen without a committee: the first labels, the test frames)."""
    flat = [(t, f) for t, n in enumerate(counts) for f in range(int(n))]
    if limit >= len(flat):
        return flat
    picks = np.unique(np.round(np.linspace(0, len(flat) - 1, int(limit))).astype(int))
    return [flat[k] for k in picks]
