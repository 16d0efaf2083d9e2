"""Fixtures for validation tests: profiles by id, sample paths, and a helper that writes G-code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.profiles import Profile, all_profiles
from fabzone.validation import ValidationResult, check, scan_file

DATA = Path(__file__).resolve().parent.parent / "data" / "gcode"
PRUSA = DATA / "prusa_mk3s_cube.gcode"
CURA = DATA / "cura_ender3_cube.gcode"

# A harmless frame: heaters on, homed, ... and off at the end, so only the lines under test fail.
HEAD = "M104 S200\nM140 S60\nG28\nG90\nM82\n"
TAIL = "M104 S0\nM140 S0\nM84\n"


@pytest.fixture(scope="session")
def profiles() -> dict[str, Profile]:
    return all_profiles()


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(10_000))

    def _write(content: str | bytes, name: str | None = None) -> Path:
        path = tmp_path / (name or f"job{next(counter)}.gcode")
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    return _write


@pytest.fixture
def run(write: Callable[..., Path], profiles: dict[str, Profile]) -> Callable[..., ValidationResult]:
    """Write `body` inside HEAD/TAIL (or raw with frame=False) and check it against one profile."""

    def _run(body: str | bytes, profile: str = "creality-ender3", frame: bool = True) -> ValidationResult:
        if frame:
            assert isinstance(body, str)
            body = HEAD + body + TAIL
        path = write(body)
        return check(scan_file(path, profiles=[profiles[profile]]), profiles[profile])

    return _run


def line_of(path: Path, text: str) -> int:
    """1-based number of the first line of `path` that contains `text`."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def codes(result: ValidationResult) -> list[tuple[str, int | None]]:
    return [(r.code, r.line) for r in result.reasons]
