"""Tests of the simulators, over real ptys opened with pyserial."""
