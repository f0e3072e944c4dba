"""Model registry: ``model_type`` string → Potential subclass."""

from typing import Dict, Type

MODEL_TYPES: Dict[str, type] = {}


def register_model(cls: Type) -> Type:
    """Class decorator: make ``cls`` loadable from files by its ``model_type``."""
    if not cls.model_type:
        raise TypeError(f"{cls.__name__} needs a model_type")
    MODEL_TYPES[cls.model_type] = cls
    return cls


def build_model(model_type: str, config: Dict[str, object]):
    """Construct a fresh model of ``model_type`` from its config."""
    if model_type not in MODEL_TYPES:
        from ..errors import GeoffFileError

        raise GeoffFileError(
            f"unknown model type {model_type!r}; this geoff knows {sorted(MODEL_TYPES)}. "
            "The file may come from a newer geoff: upgrade geoff."
        )
    return MODEL_TYPES[model_type](**config)
