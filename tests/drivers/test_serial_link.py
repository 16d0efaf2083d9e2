"""One machine, one host: a second driver on the same port is refused instead of sharing the link."""

from __future__ import annotations

import pytest

from drivers.base import ConnectionFailed
from drivers.marlin import MarlinDriver
from drivers.profiles import get_profile
from drivers.sim.marlin import MarlinSimulator


def test_second_driver_on_the_same_port_is_refused() -> None:
    profile = get_profile("marlin-generic")
    with MarlinSimulator(profile, motion=False) as sim:
        port = sim.port
        assert port is not None
        first = MarlinDriver(profile, port)
        first.connect(timeout=10)
        try:
            second = MarlinDriver(profile, port)
            with pytest.raises(ConnectionFailed, match="exclusively lock"):
                second.connect(timeout=5)
            second.close()
        finally:
            first.close()
        # Once released, the port can be taken again.
        third = MarlinDriver(profile, port)
        third.connect(timeout=10)
        third.close()
