"""Atomic file writes: write to a temporary file beside the target, then rename.

The temporary file of target ``NAME`` is ``.NAME.geoff-XXXXXXXX.tmp`` in the
target's folder. A process killed while writing leaves it behind;
:func:`remove_stale_temp_files` removes such leftovers (and nothing else).
"""

import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Union

#: marker between the target's name and the random part of a temporary file's name.
TEMP_MARKER = "geoff-"
_TEMP_NAME = re.compile(r"\.(?P<target>.+)\." + TEMP_MARKER + r"[A-Za-z0-9_]+\.tmp")


def temp_target(name: str) -> Union[str, None]:
    """The target file name if ``name`` is a temporary file of :func:`atomic_path`, else None."""
    m = _TEMP_NAME.fullmatch(name)
    return m.group("target") if m else None


@contextmanager
def atomic_path(path: Union[str, os.PathLike]) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces ``path``.

    The target is never half-written: readers see the old file or the new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{TEMP_MARKER}", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions open() would
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_stale_temp_files(folder: Union[str, os.PathLike]) -> List[Path]:
    """Delete the temporary files :func:`atomic_path` left in ``folder`` (not its sub-folders)
    when a process was killed mid-write; returns the paths removed.

    Only names of the form ``.NAME.geoff-XXXXXXXX.tmp`` are touched. Call it only
    when no other process writes into ``folder`` (e.g. when a run starts).
    """
    folder = Path(folder)
    removed: List[Path] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if temp_target(entry.name) is not None and entry.is_file() and not entry.is_symlink():
            try:
                entry.unlink()
            except FileNotFoundError:
                continue
            removed.append(entry)
    return removed
