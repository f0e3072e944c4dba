"""Where training data came from: which configurations were labelled by which method and code.

``geoff label`` (and ``geoff learn``) write ``dft_method`` (e.g. "PBE/def2-SVP") and ``dft_code``
(e.g. "pyscf 2.14.0") into every label's ``info``; files from elsewhere may carry neither. The
provenance of a data file groups its frames by (method, code) and, for labels made by
``geoff learn``, by the iteration and MD temperature that produced the configurations. Trained
potentials keep it in their metadata (``data_provenance``) and model cards print it.
"""

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

UNKNOWN = "not recorded"
#: file suffixes read for per-frame provenance (other formats are recorded by name and hash only)
_READABLE = (".xyz", ".extxyz")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_provenance(path: Union[str, Path]) -> Dict[str, Any]:
    """{"file", "sha256", "frames", "groups": [{"method", "code", "frames", and where recorded
    "learn_iterations", "md_temperatures_K"}]} of one data file (frames and groups None for formats
    other than (extended) XYZ)."""
    path = Path(path)
    entry: Dict[str, Any] = {"file": str(path.resolve()), "sha256": _sha256(path), "frames": None, "groups": None}
    if path.suffix.lower() not in _READABLE:
        return entry
    from ase.io import read

    frames = read(str(path), index=":")
    groups: Dict[tuple, Dict[str, Any]] = {}
    for a in frames:
        key = (str(a.info.get("dft_method", UNKNOWN)), str(a.info.get("dft_code", UNKNOWN)))
        g = groups.setdefault(key, {"method": key[0], "code": key[1], "frames": 0, "_it": Counter(), "_t": Counter()})
        g["frames"] += 1
        if "learn_iteration" in a.info:
            g["_it"][int(a.info["learn_iteration"])] += 1
        if "md_temperature_K" in a.info:
            g["_t"][float(a.info["md_temperature_K"])] += 1
    out = []
    for g in groups.values():
        it, t = g.pop("_it"), g.pop("_t")
        if it:
            g["learn_iterations"] = {str(k): v for k, v in sorted(it.items())}
        if t:
            g["md_temperatures_K"] = {f"{k:g}": v for k, v in sorted(t.items())}
        out.append(g)
    entry["frames"], entry["groups"] = len(frames), out
    return entry


def data_provenance(paths: Union[str, Path, Sequence[Union[str, Path]], None]) -> List[Dict[str, Any]]:
    """:func:`file_provenance` of each existing file of ``paths`` (a path or a list; None: [])."""
    if paths is None:
        return []
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    return [file_provenance(p) for p in items if Path(p).is_file()]


def provenance_table(provenance: List[Dict[str, Any]]) -> str:
    """A Markdown table of :func:`data_provenance` (one row per file and level of theory)."""
    rows = ["| file | frames | method | code | configurations from |", "|---|---|---|---|---|"]
    for entry in provenance:
        name = Path(entry["file"]).name
        if not entry.get("groups"):
            rows.append(f"| {name} (sha256 {entry['sha256'][:12]}) | {entry.get('frames') or '?'} | {UNKNOWN} | "
                        f"{UNKNOWN} | |")
            continue
        for g in entry["groups"]:
            origin = []
            if g.get("learn_iterations"):
                origin.append("geoff learn iterations " + ", ".join(f"{k} ({v})" for k, v in g["learn_iterations"].items()))
            if g.get("md_temperatures_K"):
                origin.append("MD at " + ", ".join(f"{k} K ({v})" for k, v in g["md_temperatures_K"].items()))
            rows.append(f"| {name} (sha256 {entry['sha256'][:12]}) | {g['frames']} | {g['method']} | {g['code']} | "
                        f"{'; '.join(origin)} |")
    return "\n".join(rows)
