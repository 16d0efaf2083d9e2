"""The demo fleet: simulated Marlin printers and GRBL lasers on ptys, in the hub's own process."""

from __future__ import annotations

from typing import Any, Protocol

from drivers.profiles import get_profile

PRINTER_PROFILES = ["prusa-mk3s", "creality-ender3", "marlin-generic"]
LASER_PROFILES = ["grbl-laser-400", "k40-grbl"]


class Simulator(Protocol):
    def start(self) -> str: ...
    def stop(self) -> None: ...


def demo_fleet(printers: int, lasers: int, speed: float) -> tuple[list[Simulator], list[dict[str, Any]]]:
    """Start the simulators; return them (to stop at exit) and the fleet file's `machines` entries."""
    from drivers.sim.grbl import GrblSimulator
    from drivers.sim.marlin import MarlinSimulator

    sims: list[Simulator] = []
    machines: list[dict[str, Any]] = []
    plan = [("printer", i, PRINTER_PROFILES[i % len(PRINTER_PROFILES)]) for i in range(printers)]
    plan += [("laser", i, LASER_PROFILES[i % len(LASER_PROFILES)]) for i in range(lasers)]
    for kind, i, profile_id in plan:
        profile = get_profile(profile_id)
        sim: Simulator
        if kind == "printer":
            sim = MarlinSimulator(profile, speed=speed, seed=i)
        else:
            sim = GrblSimulator(profile, speed=speed, seed=i)
        port = sim.start()
        sims.append(sim)
        machines.append(
            {
                "id": f"{kind}-{i + 1}",
                "name": f"{profile.name} #{i + 1}",
                "driver": profile.protocol,
                "port": port,
                "profile": profile_id,
            }
        )
        print(f"simulated {profile_id} on {port}")
    return sims, machines
