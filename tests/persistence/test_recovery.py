"""recover_after_crash: streaming jobs interrupted, starting jobs requeued, machines in their real state."""

from __future__ import annotations

from persist_helpers import ENDER, MK3S, add_job, add_machines
from sqlalchemy import Engine

from fabzone import crud
from fabzone.scheduler import claim_next
from fabzone.states import JobState, MachineState


def _scene(engine: Engine) -> dict[str, str]:
    """The database as a SIGKILL could leave it: one job of each on-machine state plus queued ones."""
    add_machines(engine, [("run", MK3S), ("pause", MK3S), ("start", MK3S), ("ghost", ENDER), ("idle", ENDER)])
    ids = {}
    for name in ("run", "pause", "start"):
        job = add_job(engine, [MK3S], priority=1)
        claim = claim_next(engine, machine_id=name)
        assert claim is not None and claim[0].id == job.id
        ids[name] = job.id
    crud.transition_job(engine, ids["run"], JobState.RUNNING)
    crud.update_progress(engine, ids["run"], 42)
    crud.transition_job(engine, ids["pause"], JobState.RUNNING)
    crud.update_progress(engine, ids["pause"], 17)
    crud.transition_job(engine, ids["pause"], JobState.PAUSED)
    ids["queued1"] = add_job(engine, [MK3S]).id
    ids["queued2"] = add_job(engine, [ENDER], priority=3).id
    # A machine left "running" without a job (its job row was already finished, say).
    crud.set_machine_state(engine, "ghost", MachineState.STARTING)
    crud.set_machine_state(engine, "ghost", MachineState.RUNNING)
    return ids


def test_recover_after_crash(db_engine: Engine) -> None:
    ids = _scene(db_engine)
    queued_before = {j.id: j.queued_at for j in crud.list_queue(db_engine)}
    summary = crud.recover_after_crash(db_engine)
    assert sorted(summary.interrupted) == sorted([ids["run"], ids["pause"]])
    assert summary.requeued == [ids["start"]]
    assert sorted(summary.machines_awaiting_clear) == ["pause", "run"]
    assert summary.machines_idle == ["start"]
    assert summary.machines_offline == ["ghost"]

    run = crud.get_job(db_engine, ids["run"])
    assert run is not None and (run.state, run.lines_acked, run.machine_id) == (
        JobState.INTERRUPTED,
        42,
        "run",
    )
    last = crud.job_events(db_engine, ids["run"])[-1]
    assert (last.from_state, last.to_state, last.detail["lines_acked"]) == (  # type: ignore[index]
        JobState.RUNNING,
        JobState.INTERRUPTED,
        42,
    )
    paused_last = crud.job_events(db_engine, ids["pause"])[-1]
    assert paused_last.from_state == JobState.PAUSED and paused_last.detail["lines_acked"] == 17  # type: ignore[index]
    for name in ("run", "pause"):
        m = crud.get_machine(db_engine, name)
        assert m is not None
        assert (m.state, m.bed_clear, m.current_job_id, m.last_job_id) == (
            MachineState.AWAITING_CLEAR,
            False,
            None,
            ids[name],
        )
    start = crud.get_machine(db_engine, "start")
    assert start is not None and (start.state, start.bed_clear, start.current_job_id) == (
        MachineState.IDLE,
        True,
        None,
    )
    # No queued job lost or duplicated; the requeued one kept its place.
    queue = crud.list_queue(db_engine)
    assert sorted(j.id for j in queue) == sorted([ids["queued1"], ids["queued2"], ids["start"]])
    for job in queue:
        if job.id in queued_before:
            assert job.queued_at == queued_before[job.id]
    # Idempotent.
    again = crud.recover_after_crash(db_engine)
    assert not again.changed
    # Machines with a half part take nothing until cleared; the clear ones work.
    claims = []
    while (claim := claim_next(db_engine)) is not None:
        claims.append((claim[0].id, claim[1].id))
    assert sorted(m for _, m in claims) == ["idle", "start"]
    crud.clear_bed(db_engine, "run", result="bad")
    assert crud.get_job(db_engine, ids["run"]).result == "bad"  # type: ignore[union-attr]
    assert crud.requeue_interrupted(db_engine, ids["run"]).state == JobState.QUEUED


def test_recover_scoped_to_machines(db_engine: Engine) -> None:
    ids = _scene(db_engine)
    summary = crud.recover_after_crash(db_engine, machine_ids=["run"])
    assert (summary.interrupted, summary.requeued, summary.machines_offline) == ([ids["run"]], [], [])
    assert crud.get_job(db_engine, ids["pause"]).state == JobState.PAUSED  # type: ignore[union-attr]


def test_recover_machine_already_offline_or_in_error(db_engine: Engine) -> None:
    add_machines(db_engine, [("a", MK3S), ("b", MK3S)])
    job_a = add_job(db_engine)
    job_b = add_job(db_engine)
    for mid in ("a", "b"):
        job, _ = claim_next(db_engine, machine_id=mid)  # type: ignore[misc]
        crud.transition_job(db_engine, job.id, JobState.RUNNING)
    # The hub saw the link drop (a) and a firmware error (b), then died before ending the jobs.
    crud.machine_offline(db_engine, "a", "link lost")
    crud.set_machine_state(db_engine, "b", MachineState.ERROR, reason="Error:Printer halted. kill() called!")
    crud.recover_after_crash(db_engine)
    a, b = crud.get_machine(db_engine, "a"), crud.get_machine(db_engine, "b")
    assert a is not None and (a.state, a.bed_clear) == (MachineState.AWAITING_CLEAR, False)
    assert b is not None and (b.state, b.bed_clear) == (MachineState.ERROR, False)
    assert b.state_reason == "Error:Printer halted. kill() called!"
    for job_id in (job_a.id, job_b.id):
        assert crud.get_job(db_engine, job_id).state == JobState.INTERRUPTED  # type: ignore[union-attr]
