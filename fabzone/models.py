"""SQLModel tables: machines, jobs, the profiles each job was validated for, and every job transition."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Index, String, Text, TypeDecorator
from sqlmodel import Field, SQLModel

from fabzone.states import JobState, MachineState

# No I, L, O, 0, 1: a ticket is read aloud, copied from a phone, typed at a kiosk.
TICKET_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
TICKET_LENGTH = 6


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def new_ticket() -> str:
    return "".join(secrets.choice(TICKET_ALPHABET) for _ in range(TICKET_LENGTH))


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out. SQLite has no time zones and hands back naive values; we store UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: fabzone stores timezone-aware UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _StateType(TypeDecorator[Any]):
    """A StrEnum kept in a plain VARCHAR (not a PostgreSQL ENUM: a new state needs no DDL)."""

    impl = String(32)
    cache_ok = True
    enum: type[StrEnum]

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else self.enum(value)


class JobStateType(_StateType):
    enum = JobState
    cache_ok = True


class MachineStateType(_StateType):
    enum = MachineState
    cache_ok = True


class Machine(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)  # from the fleet file
    name: str = Field(max_length=200)
    site: str = Field(default="", max_length=100)
    profile_id: str = Field(index=True, max_length=64)
    protocol: str = Field(default="marlin", max_length=32)
    connection: str = Field(default="", max_length=500)  # serial port, socket://, http URL, MQTT topic
    # Driver options from the fleet file (baud, API key name, …): opaque to the database layer.
    settings: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    state: MachineState = Field(default=MachineState.OFFLINE, sa_type=MachineStateType)
    state_reason: str | None = Field(default=None, sa_type=Text)  # e.g. the firmware's own error words
    # No foreign key: job.machine_id already points here, and a cycle would complicate create/drop.
    current_job_id: str | None = Field(default=None, index=True, max_length=36)
    # The job whose part (or half part) is on the bed; clear_bed records the result on it.
    last_job_id: str | None = Field(default=None, max_length=36)
    bed_clear: bool = True
    enabled: bool = True
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Job(SQLModel, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    ticket: str = Field(default_factory=new_ticket, max_length=16, unique=True, index=True)
    display_name: str = Field(default="", max_length=200)
    maker_name: str = Field(default="", max_length=200)
    language: str = Field(default="en", max_length=8)
    file_name: str = Field(default="", max_length=500)  # display only, never part of a path
    sha256: str = Field(max_length=64)
    file_size: int = 0
    kind: str = Field(default="printer", max_length=16)
    requested_profile: str | None = Field(default=None, max_length=64)
    analysis: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    state: JobState = Field(default=JobState.QUEUED, sa_type=JobStateType, index=True)
    machine_id: str | None = Field(default=None, foreign_key="machine.id", index=True, max_length=64)
    priority: int = 0  # higher first
    lines_total: int = 0
    lines_acked: int = 0
    progress: float = 0.0
    error_code: str | None = Field(default=None, max_length=64)
    error: str | None = Field(default=None, sa_type=Text)
    result: str | None = Field(default=None, max_length=8)  # "good" / "bad", from the technician
    # sha256 of the secret the maker got at submission (lets them cancel their own job); never shown.
    maker_secret_hash: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    queued_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    # The claim's ORDER BY on queued jobs: priority desc, then age.
    __table_args__ = (Index("ix_job_queue_order", "state", "priority", "queued_at"),)


class JobCandidate(SQLModel, table=True):
    """A profile the job's file passed validation for; the scheduler joins machines on this."""

    job_id: str = Field(foreign_key="job.id", primary_key=True, max_length=36, ondelete="CASCADE")
    profile_id: str = Field(primary_key=True, index=True, max_length=64)


class JobEvent(SQLModel, table=True):
    """One row per job transition, written in the transaction that made it (the job's history)."""

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="job.id", index=True, max_length=36, ondelete="CASCADE")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    from_state: JobState | None = Field(default=None, sa_type=JobStateType)
    to_state: JobState = Field(sa_type=JobStateType)
    machine_id: str | None = Field(default=None, index=True, max_length=64)  # history: no foreign key
    detail: dict[str, Any] | None = Field(default=None, sa_type=JSON)


class Token(SQLModel, table=True):
    """A technician's API token. Only its sha256 is stored: the token itself is shown once, at creation."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True, index=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
