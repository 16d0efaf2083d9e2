"""Messages translate the words they carry: a maker reading Chinese never sees "printer" in English."""

from __future__ import annotations

from fabzone.i18n import message


def test_kind_words_are_translated() -> None:
    params = {"kind": "printer", "machine_kind": "laser"}
    assert "3D打印机" in message("gcode.wrong_kind", "zh", params) and "printer" not in message(
        "gcode.wrong_kind", "zh", params
    )
    assert "stampante 3D" in message("gcode.wrong_kind", "it", params)
    assert "laser cutter" in message("gcode.wrong_kind", "en", params)


def test_unknown_words_pass_through() -> None:
    assert "drone" in message("job.no_machine_of_kind", "it", {"kind": "drone"})
