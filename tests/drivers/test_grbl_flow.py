"""Character counting (drivers/grbl/flow.py): never over the RX budget, the budget used fully, send-response."""

from __future__ import annotations

import random

import pytest

from drivers.grbl.flow import CharCounter


def test_never_over_budget_and_budget_used_fully() -> None:
    rng = random.Random(4)
    flow = CharCounter(128)
    pending = [rng.randint(2, 80) for _ in range(5000)]
    sent = 0
    while pending or len(flow):
        # Fill as the driver does: take lines while they fit, in order.
        while pending and flow.fits(pending[0]):
            flow.take(pending.pop(0), tag=sent + 1)
            sent += 1
            assert flow.bytes <= 128
        if pending:
            # Used fully: the next line is refused only because it would overflow.
            assert flow.bytes + pending[0] > 128
        if rng.random() < 0.7 or not pending:
            flow.answer()
    assert flow.high_water <= 128
    assert flow.answered == 5000


def test_exact_fill_is_allowed() -> None:
    flow = CharCounter(128)
    for i in range(8):
        assert flow.fits(16)
        flow.take(16, i)
    assert flow.bytes == 128 and flow.free == 0
    assert not flow.fits(2)
    assert flow.high_water == 128


def test_answers_release_the_oldest_line_in_order() -> None:
    flow = CharCounter(128)
    flow.take(10, 1)
    flow.take(20, 2)
    flow.take(30, 3)
    done = flow.answer()  # `ok` or `error:N` alike: GRBL read the line out of its buffer
    assert done is not None and done.tag == 1 and flow.bytes == 50
    done = flow.answer()
    assert done is not None and done.tag == 2 and flow.bytes == 30
    assert flow.oldest is not None and flow.oldest.tag == 3


def test_error_answers_release_their_bytes() -> None:
    flow = CharCounter(40)
    flow.take(30, 1)
    assert not flow.fits(20)
    flow.answer()  # error:20 for line 1
    assert flow.fits(20) and flow.bytes == 0


def test_answer_with_nothing_in_flight_is_ignored() -> None:
    flow = CharCounter(128)
    assert flow.answer() is None
    assert flow.bytes == 0 and flow.answered == 0


def test_send_response_keeps_one_line_in_flight() -> None:
    flow = CharCounter(128, "send_response")
    assert flow.fits(10)
    flow.take(10, 1)
    assert not flow.fits(2)
    with pytest.raises(ValueError):
        flow.take(2, 2)
    flow.answer()
    assert flow.fits(10)


def test_exclusive_line_goes_alone_and_blocks_the_next() -> None:
    flow = CharCounter(128)
    flow.take(10, 1)
    assert not flow.fits(12, exclusive=True)  # waits for every earlier answer
    flow.answer()
    assert flow.fits(12, exclusive=True)
    flow.take(12, 2, exclusive=True)
    assert not flow.fits(2)  # nothing follows an EEPROM write until its answer
    flow.answer()
    assert flow.fits(2)


def test_line_longer_than_the_budget_never_fits() -> None:
    flow = CharCounter(32)
    assert not flow.fits(33)


def test_reset_drops_everything_in_flight() -> None:
    flow = CharCounter(128)
    flow.take(50, 1)
    flow.take(50, 2)
    lost = flow.reset()
    assert [x.tag for x in lost] == [1, 2]
    assert flow.bytes == 0 and len(flow) == 0
    assert flow.answer() is None  # a late `ok` from before the reset


def test_budget_must_hold_a_line() -> None:
    with pytest.raises(ValueError):
        CharCounter(1)
