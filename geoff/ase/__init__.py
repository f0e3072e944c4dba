"""ASE adapter: the calculator and an MD driver."""

from .calculator import GeoffCalculator, check_min_distance

__all__ = ["GeoffCalculator", "check_min_distance"]
