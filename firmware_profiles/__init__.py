"""Firmware profile data: one TOML file per firmware/machine model (see drivers/profiles.py)."""
