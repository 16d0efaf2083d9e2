"""Marlin serial driver: I/O-free flow control, reply parsing, and the pyserial driver."""
