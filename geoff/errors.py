"""Errors geoff raises for things the user can fix; each message names the fix."""


class GeoffError(Exception):
    """Base class of geoff's own errors."""


class GeoffInputError(GeoffError, ValueError):
    """A structure or dataset geoff cannot use as given."""


class GeoffFileError(GeoffError, ValueError):
    """A potential or checkpoint file that is corrupt, unsafe or incompatible."""
