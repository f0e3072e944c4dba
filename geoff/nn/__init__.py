"""Neural-network building blocks: radial bases, envelopes, MLPs, layers."""

from .egnn import EGNNLayer
from .mlp import mlp
from .radial import BesselBasis, PolynomialEnvelope
from .se3_attention import EquivariantLinear, NormNonlinearity, SE3AttentionLayer
from .se3_basis import SE3KernelBasis

__all__ = ["EGNNLayer", "mlp", "BesselBasis", "PolynomialEnvelope",
           "EquivariantLinear", "NormNonlinearity", "SE3AttentionLayer", "SE3KernelBasis"]
