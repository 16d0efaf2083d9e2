"""GRBL reply parsing, code tables, job line cleaning and the settings check."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.grbl.codes import ALARM_CODES, ERROR_CODES, alarm_message, error_message
from drivers.grbl.lines import UnsafeLine, clean, iter_job, writes_eeprom
from drivers.grbl.replies import (
    Alarm,
    Banner,
    Bracket,
    LineError,
    Message,
    Ok,
    Other,
    Setting,
    StatusReport,
    parse_line,
    parse_status,
)
from drivers.grbl.settings import check_settings
from drivers.grbl.view import MachineView
from drivers.profiles import get_profile


def test_simple_lines() -> None:
    assert parse_line("ok") == Ok()
    assert parse_line("error:20") == LineError(20)
    assert parse_line("ALARM:1") == Alarm(1)
    assert parse_line("Grbl 1.1h ['$' for help]") == Banner("1.1h")
    assert parse_line("[MSG:'$H'|'$X' to unlock]") == Message("'$H'|'$X' to unlock")
    assert parse_line("[MSG:Check Door]") == Message("Check Door")
    assert parse_line("[OPT:V,15,128]") == Bracket("OPT", "V,15,128")
    assert parse_line("[GC:G0 G54 G17 G21 G90 G94 M5 M9 T0 F0 S0]").key == "GC"  # type: ignore[union-attr]
    assert parse_line(">G54:ok") == Other(">G54:ok")  # a startup line's result is not an `ok`
    assert parse_line("error:x") == Other("error:x")


def test_settings_dump_lines() -> None:
    assert parse_line("$32=1") == Setting(32, 1.0)
    assert parse_line("$30=1000.000") == Setting(30, 1000.0)
    assert parse_line("$130=400.000") == Setting(130, 400.0)
    assert parse_line("$N0=G54") == Other("$N0=G54")


def test_status_report_every_field() -> None:
    r = parse_status(
        "<Run|MPos:10.500,20.250,0.000|Bf:12,97|Ln:99|FS:1500,750|WCO:1.000,2.000,0.000"
        "|Ov:110,100,90|Pn:XD|A:SM>"
    )
    assert r == StatusReport(
        state="Run",
        mpos=(10.5, 20.25, 0.0),
        wco=(1.0, 2.0, 0.0),
        feed=1500.0,
        speed=750.0,
        planner_free=12,
        rx_free=97,
        line_number=99,
        overrides=(110, 100, 90),
        pins="XD",
        accessories="SM",
    )


def test_status_substates_wpos_and_feed_only() -> None:
    r = parse_status("<Hold:0|WPos:1.000,2.000,3.000|F:500>")
    assert r is not None and (r.state, r.sub_state, r.wpos, r.feed, r.speed) == (
        "Hold",
        0,
        (1.0, 2.0, 3.0),
        500.0,
        None,
    )
    door = parse_line("<Door:1|MPos:0.000,0.000,0.000|FS:0,0>")
    assert isinstance(door, StatusReport) and door.state == "Door" and door.sub_state == 1
    assert parse_status("<Idle|MPos:0.000,0.000,0.000|FS:0,0|Pn:>").pins == ""  # type: ignore[union-attr]


def test_garbled_status_is_not_a_report() -> None:
    assert isinstance(parse_line("<Run|MPos:1.0,x,0|FS:0,0>"), Other)
    assert isinstance(parse_line("<|MPos:1,2,3>"), Other)


def test_view_derives_work_position_from_cached_wco() -> None:
    view = MachineView(laser_s_max=1000)
    for text in (
        "<Run|MPos:11.000,22.000,0.000|FS:1200,250|WCO:1.000,2.000,0.000|Ov:100,100,100|A:M>",
        "<Run|MPos:21.000,32.000,0.000|FS:1200,500>",
    ):
        report = parse_status(text)
        assert report is not None
        view.update(report)
    extra = view.extra()
    assert extra["machine_position"] == {"x": 21.0, "y": 32.0, "z": 0.0}
    assert extra["work_position"] == {"x": 20.0, "y": 30.0, "z": 0.0}
    assert extra["laser_power"] == 500.0 and extra["laser_power_pct"] == 50.0
    assert extra["feed_mm_min"] == 1200.0 and extra["air_assist"] is True
    assert extra["machine_state"] == "Run" and extra["door_open"] is False


def test_code_tables_cover_grbl_1_1() -> None:
    assert set(range(1, 18)) - {*ERROR_CODES} == set()
    assert set(range(20, 38)) - {*ERROR_CODES} == set()
    assert set(range(1, 11)) == set(ALARM_CODES)
    assert "limit switch" in alarm_message(1) and "re-home" in alarm_message(1)
    assert error_message(22).startswith("error:22") and "feed" in error_message(22).lower()
    assert "Unknown" in error_message(99)


@pytest.mark.parametrize(
    ("raw", "wire"),
    [
        ("g1 x10.5 y2 s500 ; engrave", "G1X10.5Y2S500"),
        ("G1 X1 (move) Y2\r\n", "G1X1Y2"),
        ("(只是注释) G0 X0", "G0X0"),
        ("; commento: taglio!\n", ""),
        ("\ufeffM4 S0", "M4S0"),
        ("G1\tX1", "G1X1"),
    ],
)
def test_clean(raw: str, wire: str) -> None:
    assert clean(raw) == wire


@pytest.mark.parametrize("raw", ["G1 X1 S1000 ¡", "G1 X1!", "G0 X1 ~", "G1 X?", "G1 X1 ° "])
def test_clean_refuses_realtime_bytes(raw: str) -> None:
    with pytest.raises(UnsafeLine):
        clean(raw)


def test_eeprom_writers() -> None:
    assert writes_eeprom("G10L2P1X0Y0")
    assert writes_eeprom("G10L20P1X0")
    assert writes_eeprom("G28.1")
    assert writes_eeprom("G30.1")
    assert not writes_eeprom("G1X10S500")
    assert not writes_eeprom("G10X1")  # not a real line, but no L2/L20


def test_iter_job(tmp_path: Path) -> None:
    path = tmp_path / "j.gcode"
    path.write_text("; header\nG21\n%\nG1 X1 S10 F600\n\nG10 L2 P1 X0\n", encoding="utf-8")
    lines = list(iter_job(path, 80))
    assert [(x.number, x.text, x.eeprom) for x in lines] == [
        (2, "G21", False),
        (4, "G1X1S10F600", False),
        (6, "G10L2P1X0", True),
    ]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("G1 X1\n$32=0\n", "line 2: '.' commands"),
        ("G1 X1\nG1 " + "X1" * 50 + "\n", "at most 79"),
        ("G1 X1 ~\n", "line 1"),
    ],
)
def test_iter_job_refusals(tmp_path: Path, body: str, words: str) -> None:
    path = tmp_path / "j.gcode"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(UnsafeLine, match=words):
        list(iter_job(path, 80))


def test_settings_check() -> None:
    profile = get_profile("grbl-laser-400")
    assert check_settings(profile, {32: 1, 30: 1000}) is None
    off = check_settings(profile, {32: 0, 30: 1000})
    assert off is not None and "$32=0" in off and "set $32=1" in off
    wrong = check_settings(profile, {32: 1, 30: 255})
    assert wrong is not None and "$30=255" in wrong and "S1000" in wrong
    assert check_settings(profile, {30: 1000}) is not None
