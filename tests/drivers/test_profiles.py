"""Firmware profiles: every bundled profile loads; the issue's figures hold; mistakes are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.profiles import ProfileError, all_profiles, load_profile_file, profile_dir

MARLIN_FORBIDDEN = {"M500", "M502", "M997", "M303", "M928", "M30"}


def test_every_bundled_profile_loads() -> None:
    files = sorted(p.stem for p in profile_dir().glob("*.toml"))
    profiles = all_profiles()
    assert sorted(profiles) == files
    assert {"marlin-generic", "prusa-mk3s", "creality-ender3", "grbl-laser-400", "k40-grbl"} <= set(profiles)
    for profile in profiles.values():
        assert profile.commands.emergency
        if profile.protocol == "marlin":
            assert profile.forbidden >= MARLIN_FORBIDDEN, profile.id
            assert (profile.flow.bufsize, profile.flow.rx_buffer_bytes, profile.flow.max_command_chars) == (
                4,
                128,
                96,
            )


def test_the_machines_the_issue_names() -> None:
    mk3s, ender = all_profiles()["prusa-mk3s"], all_profiles()["creality-ender3"]
    assert (mk3s.volume.x.min, mk3s.volume.x.max, mk3s.volume.y.min, mk3s.volume.y.max) == (0, 250, -4, 210)
    assert (mk3s.volume.z.max, mk3s.limits.hotend_max_c, mk3s.limits.bed_max_c) == (210, 300, 120)
    assert (ender.volume.x.max, ender.volume.y.max, ender.volume.z.max) == (220, 220, 250)
    assert (ender.limits.hotend_max_c, ender.limits.bed_max_c) == (260, 100)
    laser = all_profiles()["grbl-laser-400"]
    assert laser.volume.z is None and laser.limits.laser_s_max == 1000 and laser.flow.max_command_chars == 80


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda t: t.replace("baud = 250000", "baud = 250000\nbaudrate = 1"), "baudrate"),
        (lambda t: t.replace("bufsize = 4", "bufsize = 0"), "bufsize"),
        (lambda t: t.replace("x = { min = 0, max = 200 }", "x = { min = 200, max = 0 }"), "min 200"),
        (lambda t: t.replace('emergency = ["M112"]', "emergency = []"), "emergency"),
        (lambda t: t.replace("[flow]", "[flow]\nwindow = 9"), "window"),
    ],
)
def test_a_mistake_in_a_profile_is_refused_with_its_field(tmp_path: Path, edit, field: str) -> None:  # type: ignore[no-untyped-def]
    text = (profile_dir() / "marlin-generic.toml").read_text()
    path = tmp_path / "marlin-generic.toml"
    path.write_text(edit(text))
    with pytest.raises(ProfileError) as err:
        load_profile_file(path)
    assert field in str(err.value) and "marlin-generic.toml" in str(err.value)


def test_file_name_and_id_must_agree(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text((profile_dir() / "marlin-generic.toml").read_text())
    with pytest.raises(ProfileError, match="does not match"):
        load_profile_file(path)
