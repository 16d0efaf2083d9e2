"""Opening a machine's serial link: the same for every serial protocol, exclusive so two hosts never share one."""

from __future__ import annotations

import serial


def open_serial(connection: str, baud: int) -> serial.SerialBase:
    """`connection` is a device, a pty or any pyserial URL (`socket://host:port`).

    Exclusive (an advisory flock, which every pyserial host honours): a second driver — a stale hub
    still reconnecting, a slicer's "connect" button, another test — gets an error instead of silently
    stealing half the replies. On a pty, a path the kernel hands out again to a new simulator is the
    same trap.
    """
    return serial.serial_for_url(connection, baudrate=baud, timeout=0.1, write_timeout=2, exclusive=True)
