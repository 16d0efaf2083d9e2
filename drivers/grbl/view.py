"""What the hub shows of a GRBL machine: position, feed, laser power, buffers, from cached status reports."""

from __future__ import annotations

from drivers.grbl.replies import StatusReport

AXES = "xyzabc"


class MachineView:
    """Merges status reports: GRBL sends `WCO:` only every 10-30 reports and `Ov:`/`A:` every 10-20
    (report.c), so they are cached; WPos = MPos - WCO (and back), whichever the `$10` mask chose."""

    def __init__(self, laser_s_max: float | None) -> None:
        self.laser_s_max = laser_s_max
        self.report: StatusReport | None = None
        self.wco: tuple[float, ...] | None = None
        self.overrides: tuple[int, int, int] | None = None
        self.accessories: str = ""

    def update(self, report: StatusReport) -> None:
        if report.wco is not None:
            self.wco = report.wco
        if report.overrides is not None:
            self.overrides = report.overrides
            # `A:` is left out when every accessory is off, but only in reports that carry `Ov:`.
            self.accessories = report.accessories or ""
        elif report.accessories is not None:
            self.accessories = report.accessories
        self.report = report

    @property
    def door_open(self) -> bool:
        r = self.report
        return r is not None and r.state == "Door" and r.sub_state != 0

    def positions(self) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
        """(machine, work) positions, either derived from the other through the cached WCO."""
        r = self.report
        if r is None:
            return None, None
        mpos, wpos, wco = r.mpos, r.wpos, self.wco
        if mpos is not None and wpos is None and wco is not None:
            wpos = tuple(m - o for m, o in zip(mpos, wco, strict=False))
        elif wpos is not None and mpos is None and wco is not None:
            mpos = tuple(w + o for w, o in zip(wpos, wco, strict=False))
        return mpos, wpos

    def extra(self) -> dict[str, object]:
        """The snapshot for `DriverStatus.extra` (JSON-friendly)."""
        r = self.report
        if r is None:
            return {}
        mpos, wpos = self.positions()
        power = r.speed
        out: dict[str, object] = {
            "machine_state": r.state if r.sub_state is None else f"{r.state}:{r.sub_state}",
            "machine_position": _axes(mpos),
            "work_position": _axes(wpos),
            "feed_mm_min": r.feed,
            "laser_power": power,
            "laser_power_pct": (
                round(100.0 * power / self.laser_s_max, 1) if power is not None and self.laser_s_max else None
            ),
            "door_open": self.door_open,
        }
        if r.planner_free is not None:
            out["planner_blocks_free"] = r.planner_free
            out["rx_bytes_free"] = r.rx_free
        if self.overrides is not None:
            feed, rapid, spindle = self.overrides
            out["overrides_pct"] = {"feed": feed, "rapid": rapid, "laser": spindle}
        out["air_assist"] = "F" in self.accessories or "M" in self.accessories
        if r.pins:
            out["pins"] = r.pins
        return out


def _axes(values: tuple[float, ...] | None) -> dict[str, float] | None:
    if values is None:
        return None
    return {AXES[i]: round(v, 3) for i, v in enumerate(values[: len(AXES)])}
