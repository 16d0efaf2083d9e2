"""GRBL 1.1 `error:N` and `ALARM:N` codes with messages a technician at a laser understands."""

from __future__ import annotations

# The numbers are GRBL's status codes (grbl/report.h, STATUS_*) and alarm codes (EXEC_ALARM_*);
# the wording is ours, written for the person standing at the machine, not for a firmware developer.
ERROR_CODES: dict[int, str] = {
    1: "Expected a command letter: a G-code word is a letter followed by a number",
    2: "Bad number format: a word's value is missing or not a number",
    3: "Invalid '$' statement: GRBL does not know this system command",
    4: "Negative value where only a positive one is allowed",
    5: "Homing is disabled in the settings ($22), so '$H' cannot run",
    6: "Step pulse time must be at least 3 microseconds ($0)",
    7: "EEPROM read failed: GRBL restored its default settings — check every setting ($$)",
    8: "The machine is busy: '$' commands need it idle (wait for the job or cancel it)",
    9: "G-code is locked: the machine is in alarm or jogging — unlock it first",
    10: "Soft limits need homing enabled ($20 needs $22=1)",
    11: "Line too long: more than 79 characters after spaces and comments are removed",
    12: "Step rate too high: a setting would exceed 30 kHz",
    13: "Safety door open: close the lid before continuing",
    14: "Startup or build-info line too long for the EEPROM",
    15: "Jog target beyond the machine's travel",
    16: "Invalid jog command",
    17: "Laser mode needs a PWM spindle output: this GRBL build cannot set $32=1",
    20: "Unsupported G-code command",
    21: "Two commands of the same modal group on one line",
    22: "Feed rate missing: set F before the first G1/G2/G3 move",
    23: "A command value must be an integer",
    24: "Two commands on one line both need axis words",
    25: "A G-code word is repeated on one line",
    26: "Axis words missing for a command that needs them",
    27: "Invalid line number (N)",
    28: "A command is missing a required value word",
    29: "Work coordinate systems G59.1-G59.3 are not supported",
    30: "G53 is only allowed with G0 and G1",
    31: "Axis words on a line where no command uses them",
    32: "An arc (G2/G3) needs at least one axis word in the selected plane",
    33: "Invalid motion target",
    34: "Arc radius error: the arc cannot be drawn with this radius",
    35: "An arc (G2/G3) needs at least one offset word in the selected plane",
    36: "Unused value words on the line",
    37: "G43.1 tool length offset is not on the configured tool axis",
}

ALARM_CODES: dict[int, str] = {
    1: "Hard limit triggered: the head hit a limit switch; position is lost — re-home",
    2: "Soft limit: a move would leave the work area; position is kept — check the file, then unlock",
    3: "Reset while moving: position may be lost — re-home if the next job needs accuracy",
    4: "Probe failed: the probe was not in the expected state before the probing cycle",
    5: "Probe failed: the probe did not touch within the programmed travel",
    6: "Homing failed: the homing cycle was reset",
    7: "Homing failed: the safety door opened during homing",
    8: "Homing failed: could not pull off the limit switch — check the wiring or the pull-off ($27)",
    9: "Homing failed: no limit switch found within the search distance — check the switches",
    10: "Homing failed: the second switch of a dual-motor axis was not found",
}

# ALARM:1 and ALARM:2 are "critical events": GRBL blocks everything but status reports until it is
# soft-reset (protocol.c, protocol_exec_rt_system: `[MSG:Reset to continue]`), so `$X` alone is
# not enough to unlock them.
CRITICAL_ALARMS = frozenset({1, 2})


def error_message(code: int) -> str:
    """`error:N` as a sentence, with the code for the manual."""
    text = ERROR_CODES.get(code, "Unknown error")
    return f"error:{code} — {text}"


def alarm_message(code: int) -> str:
    """`ALARM:N` as a sentence, with the code for the manual."""
    text = ALARM_CODES.get(code, "Unknown alarm")
    return f"ALARM:{code} — {text}"
