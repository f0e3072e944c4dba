"""Potentials shipped with geoff, one folder each (installed as ``geoff.potentials``)."""
