"""GRBL's `$` settings (settings.c, defaults.h) derived from a firmware profile, and their `$$` text."""

from __future__ import annotations

from drivers.profiles import Profile

# report.h status codes used by the simulator (the numbers GRBL 1.1h prints after `error:`).
OK = 0
EXPECTED_COMMAND_LETTER = 1
BAD_NUMBER_FORMAT = 2
INVALID_STATEMENT = 3
NEGATIVE_VALUE = 4
SETTING_DISABLED = 5
IDLE_ERROR = 8
SYSTEM_GC_LOCK = 9
SOFT_LIMIT_ERROR = 10
OVERFLOW = 11
CHECK_DOOR = 13
LINE_LENGTH_EXCEEDED = 14
TRAVEL_EXCEEDED = 15
INVALID_JOG_COMMAND = 16
UNSUPPORTED_COMMAND = 20
MODAL_GROUP_VIOLATION = 21
UNDEFINED_FEED_RATE = 22
COMMAND_VALUE_NOT_INTEGER = 23
AXIS_COMMAND_CONFLICT = 24
WORD_REPEATED = 25
NO_AXIS_WORDS = 26
INVALID_LINE_NUMBER = 27
VALUE_WORD_MISSING = 28
INVALID_TARGET = 33
ARC_RADIUS_ERROR = 34
NO_OFFSETS_IN_PLANE = 35
UNUSED_WORDS = 36

# report.h alarm codes.
ALARM_HARD_LIMIT = 1
ALARM_SOFT_LIMIT = 2
ALARM_ABORT_CYCLE = 3

# Integer settings print without decimals; the rest with N_DECIMAL_SETTINGVALUE (3), except $30/$31
# which use N_DECIMAL_RPMVALUE (0) (report.c report_grbl_settings).
_INTEGER = frozenset((0, 1, 2, 3, 4, 5, 6, 10, 13, 20, 21, 22, 23, 26, 32))
_RPM = frozenset((30, 31))
# The order report_grbl_settings() prints them in: globals, then per-axis groups of three.
ORDER = (
    *(0, 1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 20, 21, 22, 23, 24, 25, 26, 27, 30, 31, 32),
    *(100, 101, 102, 110, 111, 112, 120, 121, 122, 130, 131, 132),
)


def defaults(profile: Profile) -> dict[int, float]:
    """defaults.h (DEFAULTS_GENERIC), with what the profile says about this machine on top."""
    vol = profile.volume
    feed = profile.limits.feed_max_mm_min
    rates = profile.motion.max_feed_mm_s
    accel = profile.motion.acceleration_mm_s2
    laser = profile.laser
    s_max = profile.limits.laser_s_max if profile.limits.laser_s_max is not None else 1000.0
    return {
        0: 10,  # step pulse µs
        1: 25,  # step idle delay ms
        2: 0,
        3: 0,
        4: 0,
        5: 0,
        6: 0,
        10: 1,  # status report mask: MPos (bit 1 adds Bf:)
        11: 0.010,  # junction deviation mm
        12: 0.002,  # arc tolerance mm
        13: 0,  # report inches
        20: 0,  # soft limits
        21: 0,  # hard limits
        22: 0,  # homing cycle (when 1 the machine boots locked in Alarm)
        23: 0,
        24: 25.0,
        25: 500.0,
        26: 250,
        27: 1.0,
        30: s_max,  # spindle max = full laser power
        31: 0,
        32: 1 if (laser is not None and laser.mode_required) else 0,
        100: 250.0,
        101: 250.0,
        102: 250.0,
        110: rates.get("X", feed / 60.0) * 60.0,
        111: rates.get("Y", feed / 60.0) * 60.0,
        112: rates.get("Z", 10.0) * 60.0 if vol.z is not None else 500.0,
        120: accel,
        121: accel,
        122: accel if vol.z is not None else 10.0,
        130: vol.x.max,
        131: vol.y.max,
        132: vol.z.max if vol.z is not None else 0.0,
    }


def format_setting(n: int, value: float) -> str:
    if n in _INTEGER or n in _RPM:
        return f"${n}={round(value)}"
    return f"${n}={value:.3f}"


def dump(settings: dict[int, float]) -> list[str]:
    """`$$`: every setting, in GRBL's order."""
    return [format_setting(n, settings[n]) for n in ORDER if n in settings]


def check_write(settings: dict[int, float], n: int, value: float) -> int:
    """settings_store_global_setting(): the status code a `$n=value` write gets (OK when stored)."""
    if value < 0:
        return NEGATIVE_VALUE
    if n not in settings:
        return INVALID_STATEMENT
    if n == 20 and int(value) and not int(settings[22]):
        return SOFT_LIMIT_ERROR  # soft limits need homing enabled
    return OK
