"""The claim: priority then age, compatibility by candidate profile, never a machine with a dirty bed."""

from __future__ import annotations

import pytest
from persist_helpers import ENDER, MK3S, add_job, add_machines
from sqlalchemy import Engine

from fabzone import crud, models
from fabzone.scheduler import claim_all, claim_next
from fabzone.states import JobState, MachineState, TransitionError


def test_priority_then_age(db_engine: Engine) -> None:
    add_machines(db_engine, [("m1", MK3S)])
    old_low = add_job(db_engine, priority=0)
    high = add_job(db_engine, priority=5)
    new_low = add_job(db_engine, priority=0)
    high2 = add_job(db_engine, priority=5)
    positions = crud.queue_positions(db_engine)
    assert positions == {high.id: 1, high2.id: 2, old_low.id: 3, new_low.id: 4}
    order = []
    for _ in range(4):
        claim = claim_next(db_engine)
        assert claim is not None
        job, machine = claim
        assert (job.state, job.machine_id, machine.state, machine.current_job_id) == (
            JobState.STARTING,
            "m1",
            MachineState.STARTING,
            job.id,
        )
        assert claim_next(db_engine) is None  # the only machine is busy
        order.append(job.id)
        crud.transition_job(db_engine, job.id, JobState.RUNNING)
        crud.job_finished(db_engine, job.id, "completed", lines_acked=100)
        crud.clear_bed(db_engine, "m1")
    assert order == [high.id, high2.id, old_low.id, new_low.id]
    assert claim_next(db_engine) is None


def test_compatibility(db_engine: Engine) -> None:
    add_machines(db_engine, [("ender", ENDER)])
    mk3s_only = add_job(db_engine, [MK3S], priority=9)
    either = add_job(db_engine, [MK3S, ENDER])
    claim = claim_next(db_engine)
    assert claim is not None and claim[0].id == either.id and claim[1].id == "ender"
    assert claim_next(db_engine) is None
    # A prusa comes online: the mk3s-only job goes there, never to the ender.
    add_machines(db_engine, [("prusa", MK3S)])
    claim = claim_next(db_engine)
    assert claim is not None and (claim[0].id, claim[1].id) == (mk3s_only.id, "prusa")
    assert crud.job_candidates(db_engine, mk3s_only.id) == [MK3S]


def test_awaiting_clear_disabled_offline_get_nothing(db_engine: Engine) -> None:
    add_machines(db_engine, [("m1", MK3S)])
    first = add_job(db_engine)
    second = add_job(db_engine)
    job, _ = claim_next(db_engine)  # type: ignore[misc]
    assert job.id == first.id
    crud.transition_job(db_engine, job.id, JobState.RUNNING)
    crud.job_finished(db_engine, job.id, "completed", lines_acked=100)
    m = crud.get_machine(db_engine, "m1")
    assert m is not None and (m.state, m.bed_clear, m.current_job_id) == (
        MachineState.AWAITING_CLEAR,
        False,
        None,
    )
    assert claim_next(db_engine) is None
    # Reconnecting does not clear a bed.
    crud.machine_offline(db_engine, "m1", "usb unplugged")
    assert crud.machine_online(db_engine, "m1").state == MachineState.AWAITING_CLEAR
    assert claim_next(db_engine) is None
    crud.clear_bed(db_engine, "m1", result="good")
    assert crud.get_job(db_engine, first.id).result == "good"  # type: ignore[union-attr]
    crud.upsert_machines(db_engine, [{"id": "m1", "name": "M1", "profile_id": MK3S, "enabled": False}])
    assert claim_next(db_engine) is None
    crud.upsert_machines(db_engine, [{"id": "m1", "name": "M1", "profile_id": MK3S, "enabled": True}])
    crud.machine_offline(db_engine, "m1")
    assert claim_next(db_engine) is None
    crud.machine_online(db_engine, "m1")
    claim = claim_next(db_engine, machine_id="m1")
    assert claim is not None and claim[0].id == second.id


def test_failed_and_error_keep_bed_dirty(db_engine: Engine) -> None:
    add_machines(db_engine, [("m1", MK3S)])
    job = add_job(db_engine)
    add_job(db_engine)
    claim_next(db_engine)
    crud.transition_job(db_engine, job.id, JobState.RUNNING)
    failed = crud.job_finished(
        db_engine,
        job.id,
        "failed",
        lines_acked=7,
        reason="Error:Thermal Runaway, system stopped! Heater_ID: 0",
        machine_state=MachineState.ERROR,
    )
    assert (failed.error_code, failed.lines_acked) == ("job.failed", 7)
    m = crud.get_machine(db_engine, "m1")
    assert m is not None and (m.state, m.bed_clear) == (MachineState.ERROR, False)
    assert m.state_reason is not None and "Thermal Runaway" in m.state_reason
    assert claim_next(db_engine) is None
    with pytest.raises(TransitionError):
        crud.clear_bed(db_engine, "m1")  # reset the error first
    crud.set_machine_state(db_engine, "m1", MachineState.AWAITING_CLEAR)
    crud.clear_bed(db_engine, "m1")
    assert len(claim_all(db_engine)) == 1


def test_claim_filters_and_upsert(db_engine: Engine) -> None:
    add_machines(db_engine, [("a", MK3S), ("b", MK3S)])
    add_job(db_engine)
    add_job(db_engine)
    add_job(db_engine)
    claim = claim_next(db_engine, machine_id="b")
    assert claim is not None and claim[1].id == "b"
    claims = claim_all(db_engine)
    assert [m.id for _, m in claims] == ["a"]
    # The fleet file changes: names/profiles update, state and jobs stay, missing machines are disabled.
    summary = crud.upsert_machines(
        db_engine, [{"id": "a", "name": "Alpha", "profile_id": MK3S, "connection": "/dev/ttyACM0"}]
    )
    assert (summary.updated, summary.disabled, summary.added) == (["a"], ["b"], [])
    a = crud.get_machine(db_engine, "a")
    assert a is not None and (a.name, a.connection, a.state) == (
        "Alpha",
        "/dev/ttyACM0",
        MachineState.STARTING,
    )
    assert [m.id for m in crud.list_machines(db_engine, enabled_only=True)] == ["a"]


def test_tickets_unique_and_lookup(db_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    first = add_job(db_engine)
    assert len(first.ticket) == 6 and set(first.ticket) <= set(models.TICKET_ALPHABET)
    codes = iter([first.ticket, first.ticket, "ZZZZZ9"])
    monkeypatch.setattr("fabzone.crud.jobs.new_ticket", lambda: next(codes))
    second = add_job(db_engine, file_name="测试-立方体.gcode")
    assert second.ticket == "ZZZZZ9"
    assert crud.get_job(db_engine, "zzz-zz9").id == second.id  # type: ignore[union-attr]
    assert crud.get_job(db_engine, second.id).file_name == "测试-立方体.gcode"  # type: ignore[union-attr]
    assert crud.get_job(db_engine, "nothing") is None
    assert [j.id for j in crud.list_jobs(db_engine)] == [second.id, first.id]
    assert crud.list_jobs(db_engine, [JobState.RUNNING]) == []
    assert len(crud.job_events(db_engine, second.id)) == 1
