"""ASE adapter: the calculator and an MD driver."""

from .calculator import GeoffCalculator, check_min_distance
from .committee import committee_uncertainty

__all__ = ["GeoffCalculator", "check_min_distance", "committee_uncertainty"]
