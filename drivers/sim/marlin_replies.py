"""Fixed texts the simulated Marlin prints: boot lines, the M115 report, the kill and error lines."""

from __future__ import annotations

import uuid

# language.h
STR_KILLED = "Error:Printer halted. kill() called!"
STR_BUSY = "echo:busy: processing"
STR_RESEND = "Resend: "
STR_UNKNOWN = 'echo:Unknown command: "{}"'
STR_THERMAL_RUNAWAY = "Error:Thermal Runaway, system stopped! Heater_ID: {}"

# M115.cpp cap_line() names, as a stock 2.1 Configuration with EMERGENCY_PARSER and
# AUTO_REPORT_TEMPERATURES would print them.
_CAPS: tuple[tuple[str, bool], ...] = (
    ("SERIAL_XON_XOFF", False),
    ("BINARY_FILE_TRANSFER", False),
    ("EEPROM", True),
    ("VOLUMETRIC", True),
    ("AUTOREPORT_POS", False),
    ("AUTOREPORT_TEMP", True),  # replaced by the `autoreport` flag
    ("PROGRESS", False),
    ("PRINT_JOB", True),
    ("AUTOLEVEL", False),
    ("RUNOUT", False),
    ("Z_PROBE", False),
    ("LEVELING_DATA", False),
    ("BUILD_PERCENT", False),
    ("SOFTWARE_POWER", False),
    ("TOGGLE_LIGHTS", False),
    ("CASE_LIGHT_BRIGHTNESS", False),
    ("EMERGENCY_PARSER", True),
    ("HOST_ACTION_COMMANDS", False),
    ("PROMPT_SUPPORT", False),
    ("SDCARD", False),
    ("REPEAT", False),
    ("SD_WRITE", False),
    ("AUTOREPORT_SD_STATUS", False),
    ("LONG_FILENAME", False),
    ("THERMAL_PROTECTION", True),
    ("MOTION_MODES", False),
    ("ARCS", True),
    ("BABYSTEPPING", False),
    ("CHAMBER_TEMPERATURE", False),
    ("COOLER_TEMPERATURE", False),
    ("MEATPACK", False),
)


def boot_lines(firmware: str) -> list[str]:
    """What MarlinCore.cpp setup() prints after a reset (stock settings, no EEPROM data)."""
    return [
        "start",
        f"echo:{firmware}",
        "echo: Last Updated: 2023-07-28 | Author: (fabzone simulator)",
        "echo:Compiled: Jul 28 2023",
        "echo: Free Memory: 2871  PlannerBufferBytes: 1408",
        "echo:Hardcoded Default Settings Loaded",
    ]


def m115_lines(firmware: str, machine: str, *, autoreport: bool, seed: int) -> list[str]:
    """M115.cpp: the report line, then one `Cap:NAME:0|1` per capability."""
    uid = uuid.UUID(int=uuid.uuid5(uuid.NAMESPACE_URL, f"fabzone-sim/{machine}/{seed}").int)
    lines = [
        f"FIRMWARE_NAME:{firmware} (Jul 28 2023 12:00:00) "
        "SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin PROTOCOL_VERSION:1.0 "
        f"MACHINE_TYPE:{machine} EXTRUDER_COUNT:1 UUID:{uid}"
    ]
    for name, enabled in _CAPS:
        if name == "AUTOREPORT_TEMP":
            enabled = autoreport
        lines.append(f"Cap:{name}:{int(enabled)}")
    return lines


def heater_states(t: float, tt: float, b: float, bt: float, p: int, bp: int) -> str:
    """temperature.cpp print_heater_states() for one hotend and a bed (leading space included)."""
    return f" T:{t:.2f} /{tt:.2f} B:{b:.2f} /{bt:.2f} @:{p} B@:{bp}"
