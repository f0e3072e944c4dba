"""Unit conversions, each derived once from CODATA via ASE's constants.

Inside geoff everything is in ASE's units: Å, eV, eV/Å, eV/Å³, amu, and
ASE time units (time steps are given in fs). Only the engine adapters convert, using the factors here.
"""

from ase import units as _ase_units

#: 1 eV in kJ/mol.
EV_TO_KJ_PER_MOL = 1.0 / (_ase_units.kJ / _ase_units.mol)
#: 1 nm in Å.
NM_TO_ANGSTROM = 10.0
#: 1 eV/Å in kJ/mol/nm.
EV_PER_ANGSTROM_TO_KJ_PER_MOL_PER_NM = EV_TO_KJ_PER_MOL * NM_TO_ANGSTROM
#: fs in 1 ps (MD logs report times in ps, time steps are given in fs).
FS_PER_PS = 1000.0
