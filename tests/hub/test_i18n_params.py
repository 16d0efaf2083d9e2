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


def test_state_words_are_translated() -> None:
    # A technician's 409 in Italian reads "stato: in coda", not "stato: queued"; a machine's state is a machine's.
    assert (
        message("job.not_running", "it", {"state": "queued"}) == "Il lavoro non è in corso (stato: in coda)."
    )
    zh = message("job.invalid_transition", "zh", {"current": "completed", "target": "running"})
    assert "已完成" in zh and "制作中" in zh and "completed" not in zh
    assert "awaiting" not in message(
        "machine.invalid_transition", "it", {"current": "awaiting_clear", "target": "idle"}
    )
