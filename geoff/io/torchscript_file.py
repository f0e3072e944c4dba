"""TorchScript files that carry geoff's description of themselves (``geoff.json``), written atomically."""

import json
import os
from pathlib import Path
from typing import Any, Dict, Union

import torch

from .atomic import atomic_path


def save_torchscript(module: torch.jit.ScriptModule, path: Union[str, os.PathLike], info: Dict[str, Any]) -> Path:
    """Write ``module`` to ``path`` with ``info`` (JSON-able) stored beside it as ``geoff.json``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.jit.save(module, str(tmp), _extra_files={"geoff.json": json.dumps(info)})
    return path


def read_torchscript_info(path: Union[str, os.PathLike]) -> Dict[str, Any]:
    """The ``geoff.json`` description stored in a file written by :func:`save_torchscript`."""
    extra = {"geoff.json": ""}
    torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra["geoff.json"])
