"""GRBL 1.1 serial driver: I/O-free character counting, reply parsing, code tables and the pyserial driver."""

from drivers.grbl.driver import GrblDriver

__all__ = ["GrblDriver"]
