"""Shared base of the edge-case fixture plugins (not a plugin itself)."""

from matgrad_numpy import NumpyBackend


class EdgeBackend(NumpyBackend):
    """A working backend (NumPy's operations) that ``auto`` never picks."""

    priority = -1
