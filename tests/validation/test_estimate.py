"""Time estimate from the moves: trapezoids with the profile's acceleration and feed clamps."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.profiles import Profile
from fabzone.validation import check, scan_file
from fabzone.validation.estimate import ALLOWANCE_S, REFERENCE, MotionConfig, segment_time

SQUARE = "G92 X0 Y0 Z0.2\nG1 X100 Y0 F6000\nG1 X100 Y100\nG1 X0 Y100\nG1 X0 Y0\n"


def estimate(path: Path, profile: Profile) -> float:
    """Unrounded seconds (the Analysis shows them to 0.1 s)."""
    facts = scan_file(path, profiles=[profile])
    result = check(facts, profile)
    assert result.analysis is not None
    seconds = facts.estimates[MotionConfig.of(profile)]
    assert result.analysis.estimated_s == round(seconds, 1)
    return seconds


@pytest.mark.parametrize("profile_id", ["marlin-generic", "prusa-mk3s", "creality-ender3"])
def test_square_matches_hand_computed(
    profile_id: str, profiles: dict[str, Profile], write: Callable[..., Path]
) -> None:
    profile = profiles[profile_id]
    a = profile.motion.acceleration_mm_s2
    v = 100.0  # F6000, below every profile's limits
    # By hand: four 100 mm sides, each accelerating from rest to 100 mm/s and back to rest:
    # t = d/v + v/a per side. Real corners keep a little speed (jerk), so the estimate is a bit lower.
    by_hand = 4 * (100 / v + v / a)
    got = estimate(write(SQUARE), profile)
    assert got == pytest.approx(by_hand, rel=0.03)
    assert got <= by_hand + 0.05


def test_acceleration_and_clamps_per_profile(
    profiles: dict[str, Profile], write: Callable[..., Path]
) -> None:
    path = write(SQUARE)
    slow, fast = estimate(path, profiles["creality-ender3"]), estimate(path, profiles["marlin-generic"])
    assert slow > fast
    # Z at F6000 is clamped to the axis' max feed: 10 mm at 5 mm/s on marlin-generic is ~2 s.
    z = write("G92 X0 Y0 Z0\nG1 Z10 F6000\n")
    assert estimate(z, profiles["marlin-generic"]) == pytest.approx(10 / 5 + 5 / 3000, rel=0.01)
    assert estimate(z, profiles["prusa-mk3s"]) == pytest.approx(10 / 12 + 12 / 1250, rel=0.01)


def test_short_move_never_reaches_cruise(profiles: dict[str, Profile], write: Callable[..., Path]) -> None:
    got = estimate(write("G92 X0 Y0 Z0\nG1 X1 F6000\n"), profiles["marlin-generic"])
    assert got == pytest.approx(2 * math.sqrt(1 / 3000), rel=0.01)


def test_dwell_and_heating_allowance(profiles: dict[str, Profile], write: Callable[..., Path]) -> None:
    p = profiles["marlin-generic"]
    base = estimate(write(SQUARE), p)
    assert estimate(write(SQUARE + "G4 P500\nG4 S2\n"), p) == pytest.approx(base + 2.5)
    heated = estimate(write("M190 S60\nM109 S215\n" + SQUARE + "M104 S0\nM140 S0\n"), p)
    assert heated == pytest.approx(base + ALLOWANCE_S["M109"] + ALLOWANCE_S["M190"])


def test_profile_not_scanned_gets_the_reference(
    profiles: dict[str, Profile], write: Callable[..., Path]
) -> None:
    path = write(SQUARE)
    facts = scan_file(path)  # no profiles: only the reference lane
    assert set(facts.estimates) == {REFERENCE}
    ender = check(facts, profiles["creality-ender3"]).analysis
    assert ender is not None and ender.estimated_s == round(facts.estimates[REFERENCE], 1)
    assert MotionConfig.of(profiles["marlin-generic"]) == REFERENCE


def test_segment_time_formula() -> None:
    # Cruise reached: 10 mm, 0 -> 100 -> 0 at 1000 mm/s²: ramps of 5 mm each, no cruise left.
    assert segment_time(10, 0, 100, 0, 1000) == pytest.approx(0.2)
    # Too short: a triangle.
    assert segment_time(1, 0, 100, 0, 1000) == pytest.approx(2 * math.sqrt(1 / 1000))
    # Entering and leaving at cruise: d / v.
    assert segment_time(10, 100, 100, 100, 1000) == pytest.approx(0.1)
