"""What the hub depends on in a GRBL controller: laser mode ($32), full-power S ($30) and the build's M7,
each against the profile."""

from __future__ import annotations

from drivers.profiles import Profile

LASER_MODE = 32  # $32: laser mode (grbl/settings.h BIT_LASER_MODE via $32)
SPINDLE_MAX = 30  # $30: S value for full power ("spindle max rpm")


def check_settings(profile: Profile, settings: dict[int, float]) -> str | None:
    """None if jobs are safe to run with these settings, else the reason for the technician."""
    laser = profile.laser
    if laser is not None and laser.mode_required:
        mode = settings.get(LASER_MODE)
        if mode is None:
            return "the controller did not report $32 (laser mode): is this a laser build of GRBL 1.1?"
        if int(mode) != 1:
            return f"laser mode is off ($32={mode:g}): the beam would stay on at corners and stops; set $32=1"
    s_max = profile.limits.laser_s_max
    if s_max is not None:
        actual = settings.get(SPINDLE_MAX)
        if actual is None:
            return "the controller did not report $30 (S value for full laser power)"
        if abs(actual - s_max) > 1e-6 * max(1.0, abs(s_max)):
            return (
                f"full laser power is S{actual:g} on the controller ($30={actual:g}) but S{s_max:g} in the "
                f"profile {profile.id}: every S in a job would burn at the wrong power; set $30={s_max:g}"
            )
    return None


def check_build(profile: Profile, options: str | None) -> str | None:
    """None unless the profile promises M7 (`laser.enable_m7`, so validation lets it through) and `$I`
    says this build has none (no `M` in `[OPT:…]`, report.c): every such job would stop at error:20."""
    laser = profile.laser
    if laser is None or not laser.enable_m7 or options is None or "M" in options:
        return None
    return (
        f"the profile {profile.id} says this controller runs M7 (mist air assist), but its build has none "
        f"([OPT:{options}…] from $I): a job using M7 would stop with error:20; set enable_m7 = false in "
        "the profile (M8 works on every build)"
    )
