"""Facts + a machine profile -> ValidationResult: cheap, run once per candidate profile."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fabzone.validation.estimate import REFERENCE, MotionConfig
from fabzone.validation.grbl import GRBL_WORDS, LONG_COMMAND, PRINTER_WORDS
from fabzone.validation.model import MAX_PER_CODE, Analysis, Reason, ValidationResult, more

if TYPE_CHECKING:
    from drivers.profiles import Profile
    from fabzone.validation.scan import Facts, Stat

# A move past a limit by less than a micron is rounding in the slicer's output, not a crash.
TOLERANCE_MM = 0.001
# The driver sends `N<n> <command>*<checksum>` and Marlin's MAX_CMD_SIZE counts every byte of that
# line, N and checksum included (queue.cpp get_serial_commands), so the envelope counts too.
_CHECKSUM_CHARS = len("*255")


# The driver numbers lines from its connection on, not from the job's start (a reset of the numbering
# between jobs would need an empty window), so N grows across jobs: room for 8 digits is 100 million
# lines on one connection, weeks of printing. The driver checks the real line before it sends it.
_NUMBER_DIGITS = 8


def numbering_overhead(commands: int) -> int:
    """Bytes the driver adds to a command: `N<n> ` and `*<checksum>` (n of up to 8 digits, or the
    job's own line count if larger)."""
    return len(f"N{max(commands, 10**_NUMBER_DIGITS - 1)} ") + _CHECKSUM_CHARS


def _first_over(
    stats: dict[float, Stat] | dict[int, Stat], limit: float
) -> tuple[list[tuple[int, float]], int]:
    """(first MAX_PER_CODE (line, value) with value > limit in file order, total count)."""
    hits: list[tuple[int, float]] = []
    total = 0
    for value, (count, lines) in stats.items():
        if value > limit:
            total += count
            hits.extend((ln, value) for ln in lines)
    hits.sort()
    return hits[:MAX_PER_CODE], total


def _emit(
    reasons: list[Reason], code: str, hits: list[tuple[int, float]], total: int, **params: object
) -> None:
    for ln, value in hits:
        reasons.append(Reason(code, ln, {"value": value, **params}))
    if total > len(hits):
        reasons.append(more(code, total - len(hits)))


def check(facts: Facts, profile: Profile) -> ValidationResult:
    """Every reason `profile` has to refuse the file (file-level ones included); the analysis when
    the file could be read as G-code at all (also when this profile refuses it)."""
    reasons = list(facts.file_reasons)
    if not facts.readable:
        return ValidationResult(ok=False, analysis=None, reasons=reasons)

    analysis = _analysis(facts, profile)
    if profile.kind != facts.kind:
        # One reason, not the list of everything this machine cannot do with the other kind's
        # file: the maker has to hear "wrong machine", and the rest would only follow from it.
        reasons.append(Reason("gcode.wrong_kind", None, {"kind": facts.kind, "machine_kind": profile.kind}))
        return ValidationResult(ok=False, analysis=analysis, reasons=reasons)

    code, limit, lengths = "gcode.command_too_long", 0, facts.lengths
    if profile.protocol == "grbl":
        # GRBL counts the line without spaces and comments, and the driver adds nothing (no N, no
        # checksum). protocol.c sets LINE_FLAG_OVERFLOW (error:11) on a character that arrives when
        # `char_counter >= LINE_BUFFER_SIZE-1`: the profile holds LINE_BUFFER_SIZE, 79 fit.
        code, limit = "gcode.laser_line_too_long", profile.flow.max_command_chars - 1
        if limit >= LONG_COMMAND:  # else the raw length: stricter, and every length is known
            lengths = facts.clean_lengths
    else:
        limit = profile.flow.max_command_chars - numbering_overhead(facts.lines)
        # Marlin reads on through ( ): what they hold would run unchecked (lines.py).
        _lines(reasons, "gcode.paren_comment", facts.paren_lines)
    hits, total = _first_over(lengths, limit)
    for ln, length in hits:
        reasons.append(Reason(code, ln, {"length": int(length), "limit": limit}))
    if total > len(hits):
        reasons.append(more(code, total - len(hits)))

    count, system = facts.system
    reasons.extend(Reason("gcode.controller_command", ln, {"command": text}) for ln, text in system)
    if count > len(system):
        reasons.append(more("gcode.controller_command", count - len(system)))

    forbidden = profile.forbidden
    for word, (count, lines) in sorted(facts.words.items(), key=lambda kv: kv[1][1][0]):
        if word in forbidden:
            reasons.extend(Reason("gcode.forbidden_command", ln, {"command": word}) for ln in lines)
            if count > len(lines):
                reasons.append(more("gcode.forbidden_command", count - len(lines)))

    for code, stats, max_c in (
        ("gcode.hotend_too_hot", facts.hotend_targets, profile.limits.hotend_max_c),
        ("gcode.bed_too_hot", facts.bed_targets, profile.limits.bed_max_c),
    ):
        if max_c is not None:
            hits, total = _first_over(stats, max_c)
            _emit(reasons, code, hits, total, limit=max_c)

    if profile.kind == "laser":
        _laser(reasons, facts, profile)

    volume = profile.volume
    out = "gcode.out_of_area" if profile.kind == "laser" else "gcode.out_of_volume"
    for axis, track in facts.axes.items():
        rng = getattr(volume, axis)
        if rng is None or not track.reached:
            continue
        for side, first, extreme, extreme_line in (
            ("max", track.first_above(rng.max + TOLERANCE_MM), track.hi, track.hi_line),
            ("min", track.first_below(rng.min - TOLERANCE_MM), track.lo, track.lo_line),
        ):
            if first is None:
                continue
            line, value = first
            params = {
                "axis": axis.upper(),
                "value": round(value, 3),
                "min": rng.min,
                "max": rng.max,
                "side": side,
                "extreme": round(extreme, 3),
                "extreme_line": extreme_line,
            }
            reasons.append(Reason(out, line, params))
    return ValidationResult(ok=not reasons, analysis=analysis, reasons=reasons)


def _lines(reasons: list[Reason], code: str, stat: Stat, **params: object) -> None:
    count, lines = stat
    reasons.extend(Reason(code, ln, dict(params)) for ln in lines)
    if count > len(lines):
        reasons.append(more(code, count - len(lines)))


def _laser(reasons: list[Reason], facts: Facts, profile: Profile) -> None:
    """What a laser refuses beyond the printer checks: printer commands, what GRBL does not run,
    any Z on a machine without one, and power above `$30`."""
    grbl = profile.protocol == "grbl"
    m7 = profile.laser is not None and profile.laser.enable_m7
    for word, stat in sorted(facts.words.items(), key=lambda kv: kv[1][1][0]):
        if word in PRINTER_WORDS or word[0] == "T":
            _lines(reasons, "gcode.printer_command", stat, command=word)
        elif not grbl or word in GRBL_WORDS or word in profile.forbidden:
            continue
        elif word == "M7":
            # Whether M7 runs is a build option of this machine's firmware (ENABLE_M7), not of
            # GRBL: its own reason, which points at M8 (air assist on every build).
            if not m7:
                _lines(reasons, "gcode.laser_no_m7", stat, command=word)
        else:
            _lines(reasons, "gcode.laser_unsupported", stat, command=word)
    _lines(reasons, "gcode.printer_command", facts.e_words, command="E")
    if profile.volume.z is None:
        _lines(reasons, "gcode.no_z_axis", facts.z_words)
    power, s_max = facts.power, profile.limits.laser_s_max
    if s_max is not None and power.reached:
        first = power.first_above(s_max)
        if first is not None:
            line, value = first
            params = {"value": value, "limit": s_max, "extreme": power.hi, "extreme_line": power.hi_line}
            reasons.append(Reason("gcode.laser_power_too_high", line, params))


def _analysis(facts: Facts, profile: Profile) -> Analysis:
    estimate = facts.estimates.get(MotionConfig.of(profile), facts.estimates.get(REFERENCE, 0.0))
    return Analysis(
        kind=facts.kind,
        lines=facts.lines,
        file_lines=facts.file_lines,
        file_bytes=facts.file_bytes,
        bbox=facts.bbox,
        extrude_bbox=facts.extrude_bbox,
        max_hotend_c=facts.max_hotend_c,
        max_bed_c=facts.max_bed_c,
        estimated_s=round(estimate, 1),
        filament_mm=facts.filament_mm,
        sha256=facts.sha256,
        burn_bbox=facts.burn_bbox,
        max_s=facts.power.hi if facts.power.reached else None,
    )
