"""GRBL 1.1 dialect facts for the scan and the check: accepted words, execution order, line cleaning."""

from __future__ import annotations

import re

_PAREN = re.compile(rb"\([^)]*\)?")
# A command longer than this also has its cleaned length recorded (GRBL counts no spaces and no
# comments). A GRBL profile with a line limit below it is checked on the raw length (stricter).
LONG_COMMAND = 48

# GRBL's execution order within one line (gcode.c STEP 3); motion comes last, after G92 & co.
RANK = {
    "G94": 0,
    "M3": 1,
    "M4": 1,
    "M5": 1,
    "M7": 2,
    "M8": 2,
    "M9": 2,
    "G4": 3,
    "G17": 4,
    "G18": 4,
    "G19": 4,
    "G20": 5,
    "G21": 5,
    "G40": 6,
    "G49": 7,
    "G54": 8,
    "G61": 9,
    "G90": 10,
    "G91": 10,
    "G91.1": 10,
    "G10": 11,
    "G28": 11,
    "G30": 11,
    "G92": 11,
    "G92.1": 11,
}
MOTION = frozenset({"G0", "G1", "G2", "G3"})
CUT = frozenset({"G1", "G2", "G3"})  # laser mode fires only in these (G0 keeps the beam off)
# Non-modal commands that take the line's axis words for themselves (gcode.c AXIS_COMMAND_NON_MODAL).
AXIS_COMMANDS = frozenset({"G10", "G28", "G30", "G92"})
# Words whose S is laser power (the pseudo words "S"/"F" are lines that open with S or F).
POWER_WORDS = frozenset({"G0", "G1", "G2", "G3", "M3", "M4", "M5", "S", "F"})
# Modal words after which the line's axis words still move the head in the modal motion mode.
MODAL_MOVE_WORDS = frozenset((set(RANK) - AXIS_COMMANDS - {"G4"}) | {"G53"})

# What a laser job on GRBL 1.1 may contain (gcode.c). Anything else stops the job with error:20, or
# depends on stored offsets the hub cannot check (G10, G28/G30, G55-G59), or needs a Z (G18/G19),
# or would wait for a person (M0/M1): check.py refuses it. M7 is not here: stock GRBL 1.1 is built
# without ENABLE_M7 (config.h), so check.py accepts it only on a profile with `laser.enable_m7`.
# M2/M30 end the program. S/F stand for lines that open with them.
GRBL_WORDS = frozenset(
    {"G0", "G1", "G2", "G3", "G4", "G17", "G20", "G21", "G40", "G49", "G53", "G54", "G61", "G80"}
    | {"G90", "G91", "G91.1", "G92", "G92.1", "G94", "M2", "M30", "M3", "M4", "M5", "M8", "M9", "S", "F"}
)
# 3D-printer commands (heaters, fans, extruder, print settings, bed levelling). On a laser they get
# their own reason, one that says "this is a printer command", rather than "unsupported".
PRINTER_WORDS = frozenset(
    {"M82", "M83", "M104", "M109", "M140", "M190", "M141", "M191", "M106", "M107", "M600", "M900"}
    | {"M117", "M73", "M201", "M203", "M204", "M205", "M220", "M221", "M84", "M18", "G29"}
)


def strip_parens(ucmd: bytes) -> bytes:
    """GRBL drops `( … )` comments (protocol.c); an unclosed one runs to the end of the line."""
    return _PAREN.sub(b"", ucmd).strip()


def clean_length(cmd: bytes) -> int:
    """How many characters GRBL keeps of a command: no spaces or control characters, no `( )`
    comment (protocol.c protocol_main_loop); `;` comments are cut before this."""
    return sum(1 for c in strip_parens(cmd) if c > 32)
