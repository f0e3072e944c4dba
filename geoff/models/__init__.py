"""Energy models. Importing this package registers every model type."""

from .committee import CommitteePotential
from .compiled import CompiledPotential
from .egnn import EGNNPotential
from .potential import Potential
from .registry import MODEL_TYPES, build_model, register_model
from .se3_transformer import SE3TransformerPotential

__all__ = ["CommitteePotential", "CompiledPotential", "EGNNPotential", "Potential", "MODEL_TYPES", "build_model", "register_model", "SE3TransformerPotential"]
