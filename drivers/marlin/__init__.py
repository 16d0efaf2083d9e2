"""Marlin serial driver: I/O-free flow control, reply parsing, and the pyserial driver."""

from drivers.marlin.driver import MarlinDriver

__all__ = ["MarlinDriver"]
