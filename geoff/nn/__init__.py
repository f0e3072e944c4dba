"""Neural-network building blocks: radial bases, envelopes, MLPs, layers."""

from .egnn import EGNNLayer
from .mlp import mlp
from .radial import BesselBasis, PolynomialEnvelope

__all__ = ["EGNNLayer", "mlp", "BesselBasis", "PolynomialEnvelope"]
