"""geoff's version (keep equal to pyproject.toml's); a leaf module every layer may import."""

__version__ = "0.1.0"
