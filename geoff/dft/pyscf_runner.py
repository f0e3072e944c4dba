"""One DFT (or Hartree–Fock) energy + analytic gradient of one molecule through PySCF.

PySCF works in Hartree and Bohr; everything here returns ASE's units:
energy in eV (E_Ha × ``ase.units.Hartree``), forces in eV/Å
(−∂E/∂x in Ha/Bohr × ``ase.units.Hartree / ase.units.Bohr``).

Closed shells (``spin`` = 0) use restricted Kohn–Sham (RKS, or RHF for "HF"); ``spin`` > 0
(= 2S = N_alpha − N_beta) uses unrestricted (UKS / UHF). Only molecules (open boundaries):
periodic cells need PySCF's ``pbc`` module, which geoff does not drive.
"""

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from ase.data import chemical_symbols
from ase.units import Bohr, Hartree

from ..errors import GeoffInputError

#: dispersion corrections PySCF applies through the ``pyscf-dispersion`` package (``mf.disp``).
DISPERSIONS = ("d3bj", "d3zero", "d3bjm", "d3zerom", "d3op", "d4")
#: method-name suffixes that name a dispersion correction, e.g. "PBE-D3BJ" → ("PBE", "d3bj").
_DISP_SUFFIXES = {"-d3bj": "d3bj", "-d3(bj)": "d3bj", "-d3zero": "d3zero", "-d3": "d3zero", "-d4": "d4"}

HARTREE_TO_EV = Hartree
HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM = Hartree / Bohr


def _pyscf():
    try:
        import pyscf  # noqa: F401
        from pyscf import dft, gto, lib, scf  # noqa: F401
    except ImportError as exc:
        raise GeoffInputError(
            "geoff label needs PySCF, which is not installed: pip install 'geoff[dft]' (or pip install pyscf)."
        ) from exc
    return pyscf


@dataclass
class DFTSettings:
    """What a label is computed with.

    Args:
        method: "HF" or an exchange–correlation functional PySCF's libxc knows ("PBE", "B3LYP", ...),
            optionally with a dispersion suffix ("PBE-D3BJ").
        basis: a basis set name PySCF knows ("def2-SVP", "sto-3g", "6-31G*", ...).
        charge: total charge (elementary charges).
        spin: 2S = N_alpha − N_beta (0: closed shell, restricted; > 0: unrestricted).
        dispersion: None or one of ``DISPERSIONS`` (needs the ``pyscf-dispersion`` package).
        grid_level: PySCF's integration grid level (0–9) for DFT.
        conv_tol: SCF energy convergence threshold, Hartree.
        conv_tol_grad: SCF orbital-gradient threshold (None: PySCF's default, √conv_tol).
        max_cycle: SCF iterations before a configuration counts as not converged.
    """

    method: str
    basis: str
    charge: int = 0
    spin: int = 0
    dispersion: Optional[str] = None
    grid_level: int = 3
    conv_tol: float = 1e-9
    conv_tol_grad: Optional[float] = None
    max_cycle: int = 100

    @property
    def is_hf(self) -> bool:
        return self.method.strip().upper() == "HF"

    def label(self) -> str:
        """The level of theory as written into ``info["dft_method"]``, e.g. "PBE/def2-SVP" or "PBE-D3BJ/def2-SVP"."""
        disp = f"-{self.dispersion.upper()}" if self.dispersion else ""
        return f"{self.method}{disp}/{self.basis}"

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def parse_method(spec: str, dispersion: Optional[str] = None) -> DFTSettings:
    """"METHOD/BASIS" (e.g. "PBE/def2-SVP", "HF/sto-3g", "PBE-D3BJ/def2-SVP") → settings with defaults.

    Only the form is checked here; :func:`check_settings` asks PySCF whether it knows the names.
    """
    if not isinstance(spec, str) or spec.count("/") < 1 or not all(p.strip() for p in spec.split("/", 1)):
        raise GeoffInputError(f"--dft {spec!r}: give the level of theory as METHOD/BASIS, e.g. PBE/def2-SVP, "
                              "B3LYP/6-31G*, HF/sto-3g.")
    method, basis = (p.strip() for p in spec.split("/", 1))
    low = method.lower()
    for suffix, disp in _DISP_SUFFIXES.items():
        if low.endswith(suffix):
            if dispersion and dispersion != disp:
                raise GeoffInputError(f"--dft {spec!r} names dispersion {disp!r} but --dispersion is {dispersion!r}; "
                                      "give one of them.")
            method, dispersion = method[: -len(suffix)], disp
            break
    return DFTSettings(method=method, basis=basis, dispersion=dispersion)


def check_settings(settings: DFTSettings, elements: Sequence[str]) -> None:
    """Ask PySCF, before any SCF runs, whether it knows the method and the basis for every element;
    check the numeric settings. Raises GeoffInputError naming the problem and the fix."""
    _pyscf()
    import warnings

    from pyscf import gto
    from pyscf.dft import libxc

    s = settings
    if not s.is_hf:
        try:
            libxc.parse_xc(s.method)
        except Exception as exc:  # KeyError / ValueError with libxc's wording
            raise GeoffInputError(
                f"unknown method {s.method!r}: PySCF's libxc does not know this functional ({_first_line(exc)}). "
                "Give HF or a functional name such as PBE, PBE0, B3LYP, TPSS, r2SCAN, wB97X-V."
            ) from None
    if s.dispersion is not None:
        if s.dispersion not in DISPERSIONS:
            raise GeoffInputError(f"unknown dispersion correction {s.dispersion!r}; choose one of {list(DISPERSIONS)}.")
        try:
            import pyscf.dispersion  # noqa: F401
        except ImportError:
            raise GeoffInputError("the dispersion correction needs the pyscf-dispersion package: "
                                  "pip install pyscf-dispersion (or drop --dispersion).") from None
    if int(s.spin) != s.spin or s.spin < 0:
        raise GeoffInputError(f"--spin must be 2S = N_alpha − N_beta ≥ 0 (0 singlet, 1 doublet, 2 triplet), got {s.spin}.")
    if int(s.charge) != s.charge:
        raise GeoffInputError(f"--charge must be an integer, got {s.charge}.")
    if not (0 <= int(s.grid_level) <= 9):
        raise GeoffInputError(f"--grid-level must be between 0 and 9 (PySCF's grid levels), got {s.grid_level}.")
    if not (s.conv_tol > 0 and math.isfinite(s.conv_tol)):
        raise GeoffInputError(f"--conv-tol must be a positive number (Hartree), got {s.conv_tol}.")
    if s.conv_tol_grad is not None and not (s.conv_tol_grad > 0 and math.isfinite(s.conv_tol_grad)):
        raise GeoffInputError(f"--conv-tol-grad must be a positive number, got {s.conv_tol_grad}.")
    if int(s.max_cycle) < 1:
        raise GeoffInputError(f"--max-cycle must be at least 1, got {s.max_cycle}.")
    missing: List[str] = []
    for el in sorted(set(elements)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "install basis-set-exchange" advice
                shells = gto.basis.load(s.basis, el)
        except Exception as exc:
            if "not found for" in str(exc):
                missing.append(el)
                continue
            raise GeoffInputError(
                f"unknown basis set {s.basis!r}: PySCF does not know it ({_first_line(exc)}). Give a basis PySCF "
                "ships, e.g. sto-3g, 6-31G*, def2-SVP, def2-TZVP, cc-pVDZ."
            ) from None
        if not shells:
            missing.append(el)
    if missing:
        raise GeoffInputError(f"the basis set {s.basis!r} has no functions for element(s) {missing}. Choose a basis "
                              "that covers every element of the input (the def2 family covers H–Rn).")


def check_electrons(numbers: Sequence[int], settings: DFTSettings, label: str = "structure") -> None:
    """The electron count (ΣZ − charge) must be ≥ spin and have the parity of spin (GeoffInputError)."""
    nelec = int(np.sum(numbers)) - int(settings.charge)
    if nelec < 0 or nelec < settings.spin:
        raise GeoffInputError(f"{label}: {nelec} electrons (charge {settings.charge}) cannot have spin 2S = "
                              f"{settings.spin}. Check --charge and --spin.")
    if (nelec - int(settings.spin)) % 2:
        hint = "--spin 1 (a doublet) or change --charge by one" if settings.spin == 0 else \
            f"--spin {settings.spin - 1} or {settings.spin + 1}"
        raise GeoffInputError(f"{label}: {nelec} electrons (ΣZ = {int(np.sum(numbers))}, charge {settings.charge}) "
                              f"is an {'odd' if nelec % 2 else 'even'} count, which spin 2S = {settings.spin} does not "
                              f"allow. Give {hint}.")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().strip("'\"")
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class DFTResult:
    """One configuration's outcome. On success ``energy`` (eV) and ``forces`` [N, 3] (eV/Å) are set;
    on failure ``error`` says why (nothing else is to be trusted)."""

    energy: Optional[float] = None
    forces: Optional[np.ndarray] = None
    converged: bool = False
    scf_cycles: Optional[int] = None
    wall_s: float = 0.0
    error: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None


def build_mean_field(numbers: Sequence[int], positions: np.ndarray, settings: DFTSettings):
    """The PySCF mean-field object for one molecule (positions [N, 3] Å); nothing is computed yet."""
    _pyscf()
    from pyscf import dft, gto, scf

    s = settings
    mol = gto.M(atom=[(chemical_symbols[int(z)], [float(x) for x in p]) for z, p in zip(numbers, positions)],
                basis=s.basis, charge=int(s.charge), spin=int(s.spin), unit="Angstrom", verbose=0)
    if s.is_hf:
        mf = scf.RHF(mol) if s.spin == 0 else scf.UHF(mol)
    else:
        mf = dft.RKS(mol) if s.spin == 0 else dft.UKS(mol)
        mf.xc = s.method
        mf.grids.level = int(s.grid_level)
    if s.dispersion:
        mf.disp = s.dispersion
    mf.conv_tol = float(s.conv_tol)
    if s.conv_tol_grad is not None:
        mf.conv_tol_grad = float(s.conv_tol_grad)
    mf.max_cycle = int(s.max_cycle)
    return mf


def compute(numbers: Sequence[int], positions: np.ndarray, settings: DFTSettings,
            threads: Optional[int] = None) -> DFTResult:
    """Energy (eV) and forces [N, 3] (eV/Å) of one molecule; never raises for a failed calculation:
    an SCF that does not converge within ``settings.max_cycle``, a PySCF error, or non-finite
    results give a :class:`DFTResult` with ``error`` set. ``threads``: PySCF's OpenMP threads."""
    _pyscf()
    from pyscf import lib

    if threads is not None:
        lib.num_threads(int(threads))
    start = time.perf_counter()
    cycles = {"n": 0}
    try:
        mf = build_mean_field(numbers, positions, settings)

        def count(envs):
            cycles["n"] = int(envs.get("cycle", cycles["n"] - 1)) + 1

        mf.callback = count
        e_ha = float(mf.kernel())
        if not mf.converged:
            return DFTResult(converged=False, scf_cycles=cycles["n"], wall_s=time.perf_counter() - start,
                             error=f"SCF did not converge in {settings.max_cycle} cycles (conv_tol "
                                   f"{settings.conv_tol:g} Ha; last energy {e_ha:.8f} Ha)")
        grad = np.asarray(mf.nuc_grad_method().kernel(), dtype=np.float64)
    except Exception as exc:  # PySCF raises plain RuntimeError/ValueError/LinAlgError for numerical trouble
        return DFTResult(wall_s=time.perf_counter() - start, scf_cycles=cycles["n"] or None,
                         error=f"PySCF failed: {type(exc).__name__}: {_first_line(exc)}")
    energy = e_ha * HARTREE_TO_EV
    forces = -grad * HARTREE_PER_BOHR_TO_EV_PER_ANGSTROM
    wall = time.perf_counter() - start
    if not (math.isfinite(energy) and np.all(np.isfinite(forces))):
        return DFTResult(converged=True, scf_cycles=cycles["n"], wall_s=wall,
                         error="PySCF returned a non-finite energy or gradient")
    extra: Dict[str, Any] = {}
    if settings.spin > 0:
        extra["s2"] = float(mf.spin_square()[0])
    return DFTResult(energy=energy, forces=forces, converged=True, scf_cycles=cycles["n"], wall_s=wall, extra=extra)
