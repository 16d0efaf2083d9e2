"""GRBL settings (`$$`) the hub depends on: laser mode ($32) and full-power S ($30) against the profile."""

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
