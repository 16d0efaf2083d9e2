"""Simulators that speak each machine's real wire protocol over a pty, with fault injection."""
