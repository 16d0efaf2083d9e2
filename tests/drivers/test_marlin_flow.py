"""Unit tests of the I/O-free Marlin flow control: window, history, resend policy, ok timeout."""

from __future__ import annotations

import pytest

from drivers.gcode import numbered_line
from drivers.marlin.flow import FlowControl, History, ResendOutcome, SendWindow
from drivers.marlin.replies import LineErrorCause

pytestmark = pytest.mark.timeout(10)

LN = LineErrorCause.LINE_NUMBER
CS = LineErrorCause.CHECKSUM


def flow(max_lines: int = 4, max_bytes: int = 120, **kw: object) -> FlowControl:
    return FlowControl(max_lines=max_lines, max_bytes=max_bytes, ok_timeout_s=5.0, **kw)  # type: ignore[arg-type]


def fill(f: FlowControl, count: int, now: float = 0.0, cmd: str = "G1 X1") -> list[bytes]:
    out = []
    for i in range(count):
        line = f.send(cmd, i + 1, now)
        assert line is not None
        out.append(line)
    return out


def test_window_limited_by_lines() -> None:
    f = flow(max_lines=4, max_bytes=1000)
    fill(f, 4)
    assert f.send("G1 X1", 5, 0.0) is None
    assert f.next_number == 5  # a refused command does not consume a number
    assert f.on_ok(0.1) is not None
    assert f.send("G1 X1", 5, 0.2) == numbered_line(5, "G1 X1")


def test_window_limited_by_bytes() -> None:
    cmd = "G1 X100.123 Y100.456 E1.23456"  # 30 bytes: with N and checksum ~41
    size = len(numbered_line(1, cmd))
    f = flow(max_lines=4, max_bytes=3 * size + size // 2)
    fill(f, 3, cmd=cmd)
    assert len(f.window) == 3
    assert f.send(cmd, 4, 0.0) is None  # a fourth would overflow the RX buffer
    assert f.window.bytes <= f.window.max_bytes


def test_one_line_always_fits_an_empty_window() -> None:
    w = SendWindow(4, 10)
    assert w.fits(50)


def test_oks_ack_in_order() -> None:
    f = flow()
    fill(f, 3)
    assert [f.on_ok(1.0).number for _ in range(3)] == [1, 2, 3]  # type: ignore[union-attr]
    assert f.on_ok(1.0) is None and f.extra_oks == 1
    assert f.idle


def test_history_is_bounded() -> None:
    h = History(5)
    for n in range(1, 21):
        h.record(n, b"x%d" % n, n)
    assert len(h) == 5
    assert h.get(15) is None
    assert h.get(16) == (b"x16", 16)
    assert h.get(20) == (b"x20", 20)
    assert h.get(21) is None


def test_history_restarts_with_numbering() -> None:
    h = History(5)
    h.record(7, b"a", 1)
    h.record(1, b"b", 2)
    assert h.get(7) is None and h.get(1) == (b"b", 2)


def test_resend_out_of_history_is_impossible() -> None:
    f = flow(max_lines=1, max_bytes=1000, history_lines=2)
    for n in range(1, 6):
        assert f.send("G1", n, 0.0)
        f.on_ok(0.0)
    outcome, _ = f.on_resend(1, CS, 0.1)
    assert outcome is ResendOutcome.IMPOSSIBLE


def test_resend_rewinds_once_and_ignores_stale_duplicates() -> None:
    f = flow(max_lines=4, max_bytes=1000)
    lines = fill(f, 4)  # N1..N4 in flight
    # N2 arrived damaged: Marlin flushed N3 (in its RX buffer) and N4 was still on the wire.
    outcome, _ = f.on_resend(2, CS, 1.0)
    assert outcome is ResendOutcome.REWOUND
    assert [s.number for s in f.window] == [1]  # N1 is in Marlin's queue: its ok will come
    assert f.on_ok(1.0) is None  # Marlin 2.1's ok after Resend: acks nothing
    resent = [f.next_resend(1.0), f.next_resend(1.0), f.next_resend(1.0)]
    assert resent == lines[1:]
    assert f.next_resend(1.0) is None and not f.resend_pending
    # The stale N4 (and at most one more) now arrive: each asks for 2 again. Ignored.
    for _ in range(2):
        outcome, _ = f.on_resend(2, LN, 1.1)
        assert outcome is ResendOutcome.STALE
        assert f.on_ok(1.1) is None
    assert not f.resend_pending
    # A third request for 2 is more than stale lines can explain: rewind again.
    outcome, _ = f.on_resend(2, LN, 1.2)
    assert outcome is ResendOutcome.REWOUND
    assert f.resend_pending
    assert f.rewinds == 2 and f.stale_ignored == 2


def test_checksum_error_after_rewind_always_rewinds() -> None:
    f = flow()
    fill(f, 4)
    f.on_resend(2, CS, 1.0)
    f.on_ok(1.0)
    while f.next_resend(1.0):
        pass
    # The fresh N2 itself arrived damaged: that is not a stale line.
    outcome, _ = f.on_resend(2, CS, 1.1)
    assert outcome is ResendOutcome.REWOUND


def test_ok_for_a_fresh_line_ends_the_stale_budget() -> None:
    f = flow()
    fill(f, 4)
    f.on_resend(1, CS, 1.0)  # everything dropped, budget 3
    f.on_ok(1.0)  # swallowed
    while f.next_resend(1.0):
        pass
    assert f.on_ok(1.1).number == 1  # type: ignore[union-attr]  # the fresh N1 was taken
    outcome, _ = f.on_resend(2, LN, 1.2)  # so this one is real
    assert outcome is ResendOutcome.REWOUND


def test_old_style_resend_without_ok_is_learnt() -> None:
    f = flow()
    fill(f, 4)
    f.on_resend(3, CS, 1.0)
    f.on_other_line()  # e.g. the next `Error:` line: a 2.1 firmware would have sent `ok` first
    assert f.resend_sends_ok is False
    # The next ok is a real one (for N1), not the resend's.
    assert f.on_ok(1.1).number == 1  # type: ignore[union-attr]
    f.on_resend(3, LN, 1.2)
    assert f.on_ok(1.3).number == 2  # type: ignore[union-attr]


def test_old_style_resend_does_not_need_an_ok_to_continue() -> None:
    f = flow(resend_sends_ok=False)
    lines = fill(f, 4)
    f.on_resend(1, CS, 1.0)
    # No ok comes, yet the whole window is sent again at once: the rewind freed it.
    assert [f.next_resend(1.0) for _ in range(4)] == lines
    assert [f.on_ok(1.1).number for _ in range(4)] == [1, 2, 3, 4]  # type: ignore[union-attr]


def test_resend_ok_style_learnt_when_unambiguous() -> None:
    f = flow()
    fill(f, 2)
    f.on_resend(1, CS, 1.0)
    f.on_ok(1.0)
    assert f.resend_sends_ok is True


def test_timeout_is_on_the_oldest_line_and_busy_extends_it() -> None:
    f = flow()
    fill(f, 2, now=0.0)
    assert f.deadline() == 5.0
    assert f.check_timeout(4.9) is None
    f.on_busy(3.0)  # echo:busy: the firmware is working on it
    assert f.deadline() == 8.0
    assert f.check_timeout(7.0) is None
    probe = f.check_timeout(8.0)
    assert probe == numbered_line(1, "G1 X1")  # the oldest line, written again
    assert f.timeouts == 1


def test_timeout_probe_answered_by_ok_when_the_line_was_lost() -> None:
    f = flow()
    fill(f, 1)
    assert f.check_timeout(6.0) is not None
    assert f.on_ok(6.1).number == 1  # type: ignore[union-attr]
    assert f.idle


def test_timeout_probe_answered_by_resend_when_the_ok_was_lost() -> None:
    f = flow()
    fill(f, 3)
    f.on_ok(0.5)  # the ok of N1... and the ok of N2 was lost: N3's ok acks N2
    f.on_ok(0.6)
    assert [s.number for s in f.window] == [3]
    assert f.check_timeout(6.0) == numbered_line(3, "G1 X1")
    # Marlin already has N3: "Line Number is not Last Line Number+1, Last Line: 3" + Resend: 4.
    outcome, done = f.on_resend(4, LN, 6.1)
    assert outcome is ResendOutcome.PROBE_SYNC
    assert [s.number for s in done] == [3]
    assert f.on_ok(6.1) is None  # the resend's ok
    assert f.idle


def test_reset_restarts_numbering() -> None:
    f = flow()
    fill(f, 3)
    f.reset()
    assert f.idle and f.next_number == 1
    assert f.send("M155 S2", 0, 0.0) == numbered_line(1, "M155 S2")


def test_ignored_stale_request_becomes_a_rewind_without_progress() -> None:
    # The stale line's error also flushed the fresh copies that had already arrived: nothing more
    # comes, so after the grace period the ignored request is honoured after all.
    f = flow(resend_grace_s=0.1)
    fill(f, 3)
    f.on_resend(1, CS, 1.0)
    f.on_ok(1.0)
    while f.next_resend(1.0):
        pass
    assert f.on_resend(1, LN, 1.01)[0] is ResendOutcome.STALE
    f.on_ok(1.01)
    assert f.deadline() == pytest.approx(1.11)
    assert not f.check_stale(1.05)
    assert f.check_stale(1.12)
    assert f.resend_pending and f.rewinds == 2


def test_progress_after_a_stale_request_cancels_the_grace_rewind() -> None:
    f = flow(resend_grace_s=0.1)
    fill(f, 3)
    f.on_resend(1, CS, 1.0)
    f.on_ok(1.0)
    while f.next_resend(1.0):
        pass
    f.on_resend(1, LN, 1.01)
    f.on_ok(1.01)
    assert f.on_ok(1.02).number == 1  # type: ignore[union-attr]  # the fresh N1 was taken
    assert not f.check_stale(1.5)


def test_foreign_ok_acks_nothing() -> None:
    f = flow()
    fill(f, 2)
    f.expect_foreign_ok()  # a damaged line ran as an unknown command
    assert f.on_ok(1.0) is None
    assert f.on_ok(1.0).number == 1  # type: ignore[union-attr]
    assert f.resend_sends_ok is None  # taught nothing about the Resend style
