"""Whether a GRBL job may start, I/O-free: work offsets (`$#`, `$G`, WCO) and the settings/build refusal."""

from __future__ import annotations

from dataclasses import dataclass, replace

from drivers.base import DriverState
from drivers.grbl.handshake import GrblFacts
from drivers.grbl.replies import Bracket, Reply
from drivers.grbl.settings import check_build, check_settings
from drivers.profiles import Profile

SYSTEMS = ("G54", "G55", "G56", "G57", "G58", "G59")
# GRBL prints offsets with 3 decimals (report.c, N_DECIMAL_COORDVALUE_MM): smaller is zero.
OFFSET_EPS = 0.0005
Axes = tuple[float, ...]


@dataclass(frozen=True)
class Offsets:
    """The controller's work offsets: `$#` (report.c report_ngc_parameters) and the active system (`$G`)."""

    systems: dict[str, Axes]  # G54..G59, stored in EEPROM
    g92: Axes
    tlo: float = 0.0  # tool length offset (G43.1), on Z only
    active: str = "G54"

    def wco(self) -> Axes | None:
        """What status reports call WCO (report.c): the active system + G92, + the tool length offset on Z."""
        base = self.systems.get(self.active)
        tlo = (0.0, 0.0, self.tlo)
        return None if base is None else tuple(map(sum, zip(base, self.g92, tlo, strict=False)))

    def after_reset(self) -> Offsets:
        """gc_init() on every reset (gcode.c): G54 reloaded from EEPROM, G92 and the tool offset zeroed."""
        return replace(self, g92=tuple(0.0 for _ in self.g92), tlo=0.0, active="G54")

    def named(self) -> list[str]:
        """The non-zero offsets, e.g. `["G54 X10", "G92 X-5 Y2"]`."""
        names = dict.fromkeys(("G54", self.active))
        out = [f"{n} {_axes(v)}" for n in names if (v := self.systems.get(n)) is not None and _nonzero(v)]
        if _nonzero(self.g92):
            out.append(f"G92 {_axes(self.g92)}")
        if abs(self.tlo) > OFFSET_EPS:
            out.append(f"tool length offset Z{self.tlo:g}")
        return out


def parse_offsets(ngc: list[Reply], modes: list[Reply]) -> Offsets | None:
    """`[G54:0.000,0.000,0.000]` … `[G92:…]`, `[TLO:0.000]` from `$#`; `[GC:G0 G54 …]` from `$G`."""
    values: dict[str, Axes] = {}
    for r in ngc:
        if isinstance(r, Bracket):
            try:
                values[r.key] = tuple(float(v) for v in r.value.split(":")[0].split(","))
            except ValueError:
                continue
    if "G54" not in values or "G92" not in values:
        return None
    active = "G54"
    for r in modes:
        if isinstance(r, Bracket) and r.key == "GC":
            active = next((w for w in r.value.split() if w in SYSTEMS), active)
    systems = {k: v for k, v in values.items() if k in SYSTEMS}
    return Offsets(systems, values["G92"], values.get("TLO", (0.0,))[0], active)


def _nonzero(values: Axes | None) -> bool:
    return values is not None and any(abs(v) > OFFSET_EPS for v in values)


def _axes(values: Axes) -> str:
    return " ".join(f"{a}{round(v, 3):g}" for a, v in zip("XYZ", values, strict=False) if abs(v) > OFFSET_EPS)


def offset_refusal(offsets: Offsets | None, wco: Axes | None) -> str | None:
    """None unless a work offset is known to be set: `$#`'s, else (its answer on the way) WCO's."""
    named = offsets.named() if offsets is not None else []
    if not named and wco is not None and _nonzero(wco):
        named.append(f"WCO {_axes(wco)}")  # not what `$#` said: its answer is on the way
    if not named:
        return None
    return (
        f"the work offset is not zero ({', '.join(named)}): the job would be cut shifted by it, but it "
        "was checked in machine coordinates; clear it at the machine (G10 L2 P1 X0 Y0 Z0 for G54, "
        "G92.1 or a reset for G92)"
    )


def find_refusal(profile: Profile, facts: GrblFacts, offsets: Offsets | None, wco: Axes | None) -> str | None:
    """Why no job may start (settings, then build, then work offset), or None."""
    settings = check_settings(profile, facts.settings)
    return settings or check_build(profile, facts.options) or offset_refusal(offsets, wco)


def refusal_status(
    old: str | None, new: str | None, status: tuple[DriverState, str | None], alarm: bool, locked: str
) -> tuple[DriverState, str | None] | None:
    """While no job runs, the (state, message) a refusal change shows: ERROR with it, or lifted (IDLE,
    or `locked` while the machine is in Alarm); None to leave the status alone."""
    state, message = status
    if new == old:
        return None
    if new and state is DriverState.IDLE:
        return DriverState.ERROR, new
    if old is not None and state is DriverState.ERROR and message == old:
        if new:
            return DriverState.ERROR, new
        return (DriverState.ERROR, locked) if alarm else (DriverState.IDLE, None)
    return None


class OffsetTracker:
    """What the driver knows of the work offsets and when to ask `$#` again (all with its lock held)."""

    def __init__(self, offsets: Offsets | None = None) -> None:
        self.offsets = offsets  # None: `$#` was not answered
        self.asked = False  # a `$#` of ours is on its way
        self.read_for: Axes | None = None  # the WCO that `$#` was last read for

    def connected(self, wco: Axes | None) -> Axes | None:
        """After the handshake: the WCO to show (the report's, else what `$#` says)."""
        if wco is None and self.offsets is not None:
            wco = self.offsets.wco()  # that report had no WCO field
        self.read_for = wco if self.offsets is not None else None  # None: ask again
        return wco

    def should_ask(self, wco: Axes | None, machine_state: str | None) -> bool:
        """True (and counted as asked) if a `$#` is due now: WCO no longer matches the last answer (a G92
        in the last job, an offset set at the machine), in Idle or Alarm only (system.c), once per value."""
        if wco is None or wco == self.read_for:
            return False
        expected = self.offsets.wco() if self.offsets is not None else None
        if expected is not None and not _nonzero(tuple(a - b for a, b in zip(expected, wco, strict=False))):
            return False
        if machine_state not in ("Idle", "Alarm"):
            return False
        self.read_for = wco
        self.asked = True
        return True

    def answered(self, replies: list[Reply] | None) -> None:
        """`$#` answered (None: refused)."""
        self.asked = False
        parsed = parse_offsets(replies, []) if replies is not None else None
        if parsed is not None:
            # Validation refuses G55-G59, so the active system only changes through a reset (to G54).
            self.offsets = replace(parsed, active=self.offsets.active if self.offsets else "G54")

    def reset(self) -> Axes | None:
        """GRBL reset (gc_init: G54 from EEPROM, G92 zeroed); a `$#` in flight went with the RX buffer.
        Returns the WCO that holds now."""
        self.asked = False
        if self.offsets is not None:
            self.offsets = self.offsets.after_reset()
        self.read_for = self.offsets.wco() if self.offsets is not None else None
        return self.read_for
