"""Label structures with DFT: energies and forces appended one by one to an extended XYZ file.

:func:`label_structures` is what ``geoff label`` runs (and what an active-learning loop calls).

The output file is append-only. Each label is one extended-XYZ frame written with a single
``write`` to a file opened for appending, then ``fsync``-ed, so a kill (or a crash) loses at most
the labels still being computed. A torn last frame (power loss, disk full) is detected when the
run restarts: it is cut off and reported, and the configuration is labelled again. Rewriting the
whole file through a temporary file and a rename after each label would also be atomic, but its
cost grows with the file and it would change the file under a reader (``tail -f``); appending a
complete frame per ``write`` keeps every earlier label byte-for-byte untouched.

Each frame is identified by its index in the input file and a hash of its atomic numbers and
positions (``info["label_key"]``); a restart skips every key already in the output (or in the
failures file, unless ``retry_failed``), so nothing is labelled twice, and a changed input is
detected instead of being mixed with old labels. Frames appear in the order their labels finish
(``info["source_index"]`` gives the input index).

A configuration whose SCF does not converge (or that PySCF cannot compute) is never written as a
label: it goes to the failures file (extended XYZ, the structure with ``info["failure_reason"]``).
"""

import contextlib
import fcntl
import hashlib
import io
import math
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple, Union

import numpy as np

from ..errors import GeoffInputError
from ..threads import exit_with_parent, spawn_pool
from .pyscf_runner import DFTResult, DFTSettings, check_electrons, check_settings, compute

#: atoms closer than this (Å) are refused before any DFT runs
MIN_DISTANCE = 0.5
#: info keys of the input that are not carried into a label (they describe other labels)
_DROPPED_INFO = {"energy", "free_energy", "forces", "stress", "virial", "dipole", "charges", "magmom",
                 "label_key", "source_index", "source_file", "failure_reason"}


def frame_key(index: int, numbers: np.ndarray, positions: np.ndarray) -> str:
    """"INDEX:HASH": the frame's index in the input and a SHA-256 (16 hex digits) of its atomic numbers
    (int64) and positions (float64, Å) as read from the input."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(numbers, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(positions, dtype=np.float64).tobytes())
    return f"{int(index)}:{h.hexdigest()[:16]}"


def default_failures_path(output: Union[str, os.PathLike]) -> Path:
    """labels.xyz → labels.failures.xyz (beside the output)."""
    output = Path(output)
    return output.with_name(f"{output.stem}.failures{output.suffix or '.xyz'}")


# ---------------------------------------------------------------------------- the append-only file
def _complete_prefix(data: bytes) -> Tuple[int, int]:
    """(bytes, frames) of the longest prefix of ``data`` made of complete extended-XYZ frames:
    a count line, a comment line, then that many atom lines, each ending in a newline."""
    pos, frames, n = 0, 0, len(data)
    while pos < n:
        end = data.find(b"\n", pos)
        if end < 0:
            break
        head = data[pos:end].strip()
        if not head:  # blank line between frames (ASE tolerates trailing blank lines)
            pos = end + 1
            continue
        try:
            natoms = int(head)
        except ValueError:
            break
        cursor = end + 1
        ok = True
        for _ in range(natoms + 1):
            nxt = data.find(b"\n", cursor)
            if nxt < 0:
                ok = False
                break
            cursor = nxt + 1
        if not ok:
            break
        pos, frames = cursor, frames + 1
    return pos, frames


def repair_tail(path: Path) -> int:
    """Cut a torn last frame (an interrupted write) off an append-only extended XYZ file; returns the
    number of bytes removed (0 when the file ends with a complete frame or does not exist)."""
    if not path.exists():
        return 0
    data = path.read_bytes()
    keep, _ = _complete_prefix(data)
    if keep == len(data):
        return 0
    tail = data[keep:]
    if keep == 0 and data.strip() and not data.lstrip()[:1].isdigit():
        raise GeoffInputError(f"{path} is not an extended XYZ file written by geoff label (it does not start "
                              "with an atom count). Give a new output file name.")
    with open(path, "r+b") as fh:
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
    return len(tail)


class AppendOnlyXYZ:
    """Appends one extended-XYZ frame per :meth:`append` call with a single ``write`` + ``fsync``."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        if created:  # make the new directory entry durable too
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def append(self, atoms) -> None:
        from ase.io import write

        buf = io.StringIO()
        write(buf, atoms, format="extxyz")
        data = buf.getvalue().encode()
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _read_labelled(path: Path) -> List:
    from ase.io import read

    if not path.exists() or path.stat().st_size == 0:
        return []
    try:
        return read(path, index=":", format="extxyz")
    except Exception as exc:
        raise GeoffInputError(f"cannot read the existing output {path} to resume from it ({exc}). Give a new output "
                              "file name, or move this one away.") from None


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """An advisory lock beside ``path`` so that two runs never append to the same file."""
    lock = path.with_name(f".{path.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GeoffInputError(f"another geoff label is writing to {path}; wait for it to finish, or give "
                                  "another output file.") from None
        yield
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- workers
def _worker_init(parent: int, threads: int) -> None:
    from pyscf import lib

    lib.num_threads(int(threads))
    exit_with_parent(parent)  # the labelling process was killed: stop this worker's DFT too


def _work(job: Tuple[int, np.ndarray, np.ndarray, DFTSettings, Optional[int]]) -> Tuple[int, DFTResult]:
    index, numbers, positions, settings, threads = job
    return index, compute(numbers, positions, settings, threads=threads)


@contextlib.contextmanager
def _thread_env(threads: int) -> Iterator[None]:
    """OpenMP / BLAS thread counts for worker processes started inside the block."""
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    old = {k: os.environ.get(k) for k in names}
    os.environ.update({k: str(threads) for k in names})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ---------------------------------------------------------------------------- the driver
@dataclass
class LabelSummary:
    """What :func:`label_structures` did. Times in seconds."""

    output: Path
    failures: Path
    total: int = 0                      # frames selected from the input
    skipped: int = 0                    # already labelled (or failed) in an earlier run
    labelled: int = 0                   # labelled in this run
    failed: int = 0                     # failed in this run
    repaired_bytes: int = 0             # torn tail cut off the output at the start
    label_times: List[float] = field(default_factory=list)   # wall time of each label of this run
    wall_s: float = 0.0
    workers: int = 1
    threads: int = 1

    @property
    def mean_s(self) -> float:
        return float(np.mean(self.label_times)) if self.label_times else math.nan

    @property
    def max_s(self) -> float:
        return float(np.max(self.label_times)) if self.label_times else math.nan

    def format(self) -> str:
        lines = [f"labelled {self.labelled}, failed {self.failed}, skipped {self.skipped} (done before) of "
                 f"{self.total} frames in {self.wall_s:.1f} s with {self.workers} worker(s) × {self.threads} thread(s)"]
        if self.label_times:
            lines.append(f"time per label    mean {self.mean_s:.2f} s, max {self.max_s:.2f} s")
        if self.repaired_bytes:
            lines.append(f"cut a torn last frame ({self.repaired_bytes} bytes) off the output; it was labelled again")
        lines.append(f"labels            {self.output}")
        if self.failed or self.failures.exists():
            lines.append(f"failures          {self.failures}")
        return "\n".join(lines)


def default_parallelism(n_jobs: int, workers: Optional[int], threads: Optional[int]) -> Tuple[int, int]:
    """(worker processes, PySCF threads each). Default: threads from OMP_NUM_THREADS if set, else one
    (or cores / workers when only ``workers`` is given); workers: cores / threads, no more than jobs.
    Measured on ethanol PBE/def2-SVP on this project's 2-core machine with other jobs running: two one-thread workers 8.6 s per label, one worker with two threads 17.5 s per label
    (PySCF's OpenMP gained nothing over one thread: 16.5 s)."""
    cores = os.cpu_count() or 1
    env = os.environ.get("OMP_NUM_THREADS", "")
    if threads is None and env.isdigit() and int(env) > 0:
        threads = int(env)
    if threads is None:
        threads = 1 if workers is None else max(1, cores // max(1, workers))
    if workers is None:
        workers = max(1, min(max(1, cores // threads), n_jobs))
    if workers < 1 or threads < 1:
        raise GeoffInputError(f"--workers and --threads must be at least 1, got {workers} and {threads}.")
    return int(workers), int(threads)


def _select(n: int, index) -> List[int]:
    from ase.io.formats import string2index

    sel = string2index(index) if isinstance(index, str) else index
    if isinstance(sel, int):
        if not -n <= sel < n:
            raise GeoffInputError(f"--index {index!r}: the input has {n} frames (0..{n - 1}).")
        return [sel % n]
    return list(range(n))[sel]


def read_structures(path: Union[str, os.PathLike], index=":") -> Tuple[List[int], List]:
    """(input indices, ase.Atoms) of the selected frames of any file ase.io reads."""
    from ase.io import read

    path = Path(path)
    if not path.is_file():
        raise GeoffInputError(f"no input file {str(path)!r}. Give a structure file ase.io reads (e.g. extended XYZ).")
    try:
        frames = read(path, index=":")
    except Exception as exc:
        raise GeoffInputError(f"cannot read structures from {path}: {exc}. Give a file ase.io reads "
                              "(extended XYZ, ASE trajectory, ...).") from None
    if not frames:
        raise GeoffInputError(f"{path} holds no structures.")
    indices = _select(len(frames), index)
    return indices, [frames[k] for k in indices]


def check_structures(indices: Sequence[int], frames: Sequence, settings: DFTSettings, source: str = "input") -> None:
    """Everything that can be checked before DFT runs (GeoffInputError, naming the frame and the fix):
    the method and basis (PySCF), periodic cells, NaN positions, atoms closer than ``MIN_DISTANCE``,
    electron counts that the spin does not allow."""
    from ..graph import check_atoms

    elements = sorted({s for a in frames for s in a.get_chemical_symbols()})
    for k, atoms in zip(indices, frames):
        label = f"{source} frame {k}"
        if np.asarray(atoms.pbc).any():
            raise GeoffInputError(f"{label} is periodic (pbc={np.asarray(atoms.pbc).tolist()}); geoff label computes "
                                  "molecules only. Set pbc to False for a molecule in vacuum (atoms.pbc = False), or "
                                  "label periodic structures with a plane-wave code.")
        if any(s == "X" for s in atoms.get_chemical_symbols()):
            raise GeoffInputError(f"{label} contains dummy atoms 'X'; remove them.")
        check_atoms(atoms, None, min_distance=MIN_DISTANCE, label=label)
        check_electrons(atoms.numbers, settings, label)
    check_settings(settings, elements)


def _pyscf_version() -> str:
    import pyscf

    return f"pyscf {pyscf.__version__}"


def _labelled_atoms(atoms, key: str, index: int, source: str, settings: DFTSettings, result: DFTResult, code: str):
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    out = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    out.info.update({k: (v.item() if isinstance(v, np.generic) else v) for k, v in atoms.info.items()
                     if k not in _DROPPED_INFO and not k.startswith("dft_")
                     and isinstance(v, (str, int, float, bool, np.integer, np.floating, np.bool_))})
    out.info.update({
        "dft_method": settings.label(), "dft_code": code, "dft_charge": int(settings.charge),
        "dft_spin": int(settings.spin), "dft_conv_tol": float(settings.conv_tol), "dft_wall_s": round(result.wall_s, 3),
        "source_file": source, "source_index": int(index), "label_key": key,
    })
    if not settings.is_hf:
        out.info["dft_grid_level"] = int(settings.grid_level)
    if result.scf_cycles is not None:
        out.info["dft_scf_cycles"] = int(result.scf_cycles)
    for name, value in result.extra.items():
        out.info[f"dft_{name}"] = value
    if result.ok:
        out.calc = SinglePointCalculator(out, energy=float(result.energy), forces=np.asarray(result.forces))
    else:
        out.info["failure_reason"] = result.error
    return out


def label_structures(input_path: Union[str, os.PathLike], output_path: Union[str, os.PathLike],
                     settings: DFTSettings, *, index=":", workers: Optional[int] = None,
                     threads: Optional[int] = None, failures_path: Optional[Union[str, os.PathLike]] = None,
                     retry_failed: bool = False, progress: bool = True,
                     log: Optional[Callable[[str], None]] = None) -> LabelSummary:
    """Label the structures of ``input_path`` with ``settings`` and append them to ``output_path``.

    Everything is checked before any DFT runs (:func:`check_structures`; GeoffInputError). Frames
    already in the output (same input index and the same numbers/positions hash) are skipped, as are
    those in the failures file unless ``retry_failed``. Labels are extended XYZ: energy (eV) and forces
    [N, 3] (eV/Å) as ``geoff train`` reads them, plus ``dft_method``, ``dft_code``, ``dft_charge``,
    ``dft_spin``, ``dft_scf_cycles``, ``dft_wall_s``, ``source_file``, ``source_index``, ``label_key`` in
    ``info``. ``workers`` processes with ``threads`` PySCF threads each (default: see
    :func:`default_parallelism`). ``log``: receives one line per label (default: none).
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    output = Path(output_path)
    failures = Path(failures_path) if failures_path is not None else default_failures_path(output)
    if output.resolve() == Path(input_path).resolve() or failures.resolve() == output.resolve():
        raise GeoffInputError(f"the output {output} must differ from the input and from the failures file.")
    source = str(Path(input_path).resolve())
    indices, frames = read_structures(input_path, index)
    check_structures(indices, frames, settings, source=str(input_path))
    keys = [frame_key(k, a.numbers, a.positions) for k, a in zip(indices, frames)]
    code = _pyscf_version()
    summary = LabelSummary(output=output, failures=failures, total=len(frames))

    with _exclusive(output):
        summary.repaired_bytes = repair_tail(output)
        repair_tail(failures)
        done = _existing_keys(output, settings, keys, indices, "output")
        failed_before = _existing_keys(failures, settings, keys, indices, "failures file", check_method=False)
        if retry_failed and failed_before:
            _drop_frames(failures, failed_before)
            failed_before = set()
        todo = [n for n, key in enumerate(keys) if key not in done and key not in failed_before]
        summary.skipped = len(frames) - len(todo)
        workers, threads = default_parallelism(len(todo), workers, threads)
        summary.workers, summary.threads = workers, threads
        if not todo:
            summary.wall_s = time.perf_counter() - start
            return summary
        labels, fails = None, None  # files are opened (created) at their first frame
        bar = tqdm(total=len(todo), desc="geoff label", unit="label", disable=not progress, file=sys.stderr)

        def record(n: int, result: DFTResult) -> None:
            nonlocal labels, fails
            atoms = _labelled_atoms(frames[n], keys[n], indices[n], source, settings, result, code)
            if result.ok:
                if labels is None:
                    labels = AppendOnlyXYZ(output)
                labels.append(atoms)
                summary.labelled += 1
                summary.label_times.append(result.wall_s)
                line = (f"frame {indices[n]}: E = {result.energy:.6f} eV, max |F| = "
                        f"{float(np.linalg.norm(result.forces, axis=1).max()):.3f} eV/Å, "
                        f"{result.scf_cycles} SCF cycles, {result.wall_s:.2f} s")
            else:
                if fails is None:
                    fails = AppendOnlyXYZ(failures)
                fails.append(atoms)
                summary.failed += 1
                line = f"frame {indices[n]}: FAILED ({result.error}) after {result.wall_s:.2f} s"
            bar.update(1)
            if log is not None:
                bar.write(line) if progress else log(line)

        try:
            if workers == 1:
                for n in todo:
                    record(n, compute(frames[n].numbers, frames[n].positions, settings, threads=threads))
            else:
                _run_pool(todo, frames, settings, workers, threads, record)
        finally:
            bar.close()
            if labels is not None:
                labels.close()
            if fails is not None:
                fails.close()
    summary.wall_s = time.perf_counter() - start
    return summary


def _run_pool(todo: List[int], frames, settings: DFTSettings, workers: int, threads: int,
              record: Callable[[int, DFTResult], None]) -> None:
    with _thread_env(threads):
        pool = spawn_pool(workers, _worker_init, (os.getpid(), threads))
        try:
            pending = {pool.submit(_work, (n, np.asarray(frames[n].numbers), np.asarray(frames[n].positions),
                                           settings, threads)) for n in todo}
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    try:
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                n, result = fut.result()
                record(n, result)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in list(getattr(pool, "_processes", {}).values()):  # stop the DFT in flight (Ctrl-C)
            with contextlib.suppress(Exception):
                proc.terminate()
        raise
    pool.shutdown(wait=True)


def _existing_keys(path: Path, settings: DFTSettings, keys: List[str], indices: List[int], what: str,
                   check_method: bool = True) -> Set[str]:
    """label_key of every frame in ``path``; a frame for an input index whose hash differs (the input
    changed) or a different level of theory is refused."""
    frames = _read_labelled(path)
    by_index = {k: key for k, key in zip(indices, keys)}
    found: Set[str] = set()
    for n, atoms in enumerate(frames):
        key = atoms.info.get("label_key")
        if not isinstance(key, str) or ":" not in key:
            raise GeoffInputError(f"the {what} {path} holds frame {n} without a label_key: it was not written by geoff "
                                  "label. Give a new output file name.")
        method = atoms.info.get("dft_method")
        if check_method and method != settings.label():
            raise GeoffInputError(f"the {what} {path} holds labels at {method}, not {settings.label()}; one file holds "
                                  "one level of theory. Give a new output file name.")
        index = int(key.split(":", 1)[0])
        if index in by_index and by_index[index] != key:
            raise GeoffInputError(
                f"the {what} {path} holds a label of input frame {index} with other atoms or positions than the input "
                "has now (the input changed since). Label into a new output file, or restore the input.")
        found.add(key)
    return found


def _drop_frames(path: Path, keys: Set[str]) -> None:
    """Rewrite ``path`` (atomically) without the frames whose label_key is in ``keys``."""
    from ase.io import write

    from ..io.atomic import atomic_path

    kept = [a for a in _read_labelled(path) if a.info.get("label_key") not in keys]
    with atomic_path(path) as tmp:
        write(tmp, kept, format="extxyz")
