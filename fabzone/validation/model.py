"""Result types of validation: Reason (stable code + line + params), Box, Analysis, ValidationResult."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from fabzone.i18n import message as _message

# Per code, at most this many reasons with a line number; the rest is one `validation.more` reason
# with the count, so a 3-million-line bad file still gives an answer a person can read.
MAX_PER_CODE = 20
MORE = "validation.more"

# Every code validation can emit; each has a message in every catalog (tests/validation checks it).
CODES = frozenset(
    {
        "gcode.empty",
        "gcode.no_commands",
        "gcode.binary",
        "gcode.not_utf8",
        "gcode.too_large",
        "gcode.line_endless",
        "gcode.not_gcode",
        "gcode.bad_checksum",
        "gcode.truncated",
        "gcode.wrong_kind",
        "gcode.command_too_long",
        "gcode.forbidden_command",
        "gcode.hotend_too_hot",
        "gcode.bed_too_hot",
        "gcode.out_of_volume",
        "gcode.out_of_area",
        "gcode.laser_line_too_long",
        "gcode.laser_power_too_high",
        "gcode.laser_unsupported",
        "gcode.laser_no_m7",
        "gcode.controller_command",
        "gcode.printer_command",
        "gcode.no_z_axis",
        "gcode.paren_comment",
        MORE,
    }
)


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    line: int | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def message(self, lang: str | None = "en") -> str:
        params = dict(self.params)
        if self.line is not None:
            params.setdefault("line", self.line)
        return _message(self.code, lang, params)

    def to_dict(self, lang: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "line": self.line, "params": dict(self.params)}
        if lang is not None:
            out["message"] = self.message(lang)
        return out


def more(code: str, count: int) -> Reason:
    return Reason(MORE, None, {"code": code, "count": count})


class ReasonLog:
    """Reasons of one kind collected while scanning, bounded per code."""

    __slots__ = ("_counts", "_reasons")

    def __init__(self) -> None:
        self._reasons: list[Reason] = []
        self._counts: dict[str, int] = {}

    def add(self, code: str, line: int | None = None, **params: Any) -> None:
        n = self._counts.get(code, 0) + 1
        self._counts[code] = n
        if n <= MAX_PER_CODE:
            self._reasons.append(Reason(code, line, params))

    def has(self, code: str) -> bool:
        return code in self._counts

    def reasons(self) -> list[Reason]:
        out = list(self._reasons)
        out.extend(more(c, n - MAX_PER_CODE) for c, n in self._counts.items() if n > MAX_PER_CODE)
        return out


@dataclass(frozen=True, slots=True)
class Box:
    """Axis-aligned box in machine coordinates (mm); an axis never reached is None."""

    min_x: float | None = None
    min_y: float | None = None
    min_z: float | None = None
    max_x: float | None = None
    max_y: float | None = None
    max_z: float | None = None

    def to_dict(self) -> dict[str, float | None]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the hub stores with an accepted job (JSON via to_dict)."""

    kind: str
    lines: int
    file_lines: int
    file_bytes: int
    bbox: Box | None
    extrude_bbox: Box | None
    max_hotend_c: float | None
    max_bed_c: float | None
    estimated_s: float
    filament_mm: float
    sha256: str
    burn_bbox: Box | None = None  # moves with the laser on (M3/M4) and S > 0
    max_s: float | None = None  # highest laser power S

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ValidationResult:
    ok: bool
    analysis: Analysis | None
    reasons: list[Reason]

    def to_dict(self, lang: str | None = None) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "analysis": self.analysis.to_dict() if self.analysis else None,
            "reasons": [r.to_dict(lang) for r in self.reasons],
        }
