"""Firmware profiles: what a firmware/machine model accepts and needs, loaded from TOML and validated."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Protocol = Literal["marlin", "grbl", "octoprint", "mqtt"]
MachineKind = Literal["printer", "laser"]


class _Strict(BaseModel):
    # Unknown keys are an error: a typo in a profile must not silently drop a limit.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Strict):
    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        return self


class Volume(_Strict):
    """Reachable work volume in machine coordinates (mm). `z` is None on a machine without Z."""

    x: Range
    y: Range
    z: Range | None = None


class Limits(_Strict):
    hotend_max_c: float | None = None
    bed_max_c: float | None = None
    laser_s_max: float | None = None
    feed_max_mm_min: float = Field(gt=0)


class Motion(_Strict):
    """Figures used to estimate job time from the moves (never from slicer comments)."""

    acceleration_mm_s2: float = Field(gt=0)
    max_feed_mm_s: dict[str, float] = Field(default_factory=dict)


class Flow(_Strict):
    """Serial flow-control sizes, as compiled into the firmware."""

    bufsize: int = Field(ge=1, description="Marlin BUFSIZE: commands the firmware queue holds")
    rx_buffer_bytes: int = Field(ge=32, description="firmware serial RX ring buffer")
    max_command_chars: int = Field(ge=16, description="Marlin MAX_CMD_SIZE-1 / GRBL LINE_BUFFER_SIZE-1")
    ok_timeout_s: float = Field(default=10.0, gt=0, description="no ok for the oldest line in flight")
    status_interval_s: float = Field(default=2.0, gt=0)
    # How lines are kept in flight: Marlin's ok window (bufsize lines within the RX buffer), GRBL's
    # character counting (bytes within the RX buffer), or one line per ok (GRBL's fallback).
    streaming: Literal["window", "char_count", "send_response"] = "window"


class Laser(_Strict):
    """What a laser's firmware must be set to before a job may run (GRBL `$32`, `$30`)."""

    mode_required: bool = True  # $32=1: the beam is off while the head stops (GRBL laser mode)
    air_assist: bool = False  # M7/M8 drive the air pump
    # GRBL 1.1 knows M7 (mist) only when built with ENABLE_M7 (config.h; `$I` then lists `M` in
    # `[OPT:…]`); a stock build answers M7 with error:20 and the job stops. Off unless known.
    enable_m7: bool = False


class Commands(_Strict):
    forbidden: list[str] = Field(default_factory=list)
    emergency: list[str] = Field(min_length=1)
    cancel: list[str] = Field(default_factory=list, description="sent after a cancel: heaters, fan off")
    pause: list[str] = Field(default_factory=list)
    resume: list[str] = Field(default_factory=list)


class Errors(_Strict):
    """Substrings of firmware lines that mean the machine stopped (job failed, machine error)."""

    fatal: list[str] = Field(default_factory=list)


class Profile(_Strict):
    id: str
    name: str
    protocol: Protocol
    kind: MachineKind
    baud: int = Field(gt=0)
    volume: Volume
    limits: Limits
    motion: Motion
    flow: Flow
    commands: Commands
    errors: Errors = Errors()
    laser: Laser | None = None

    @model_validator(mode="after")
    def _laser_fields(self) -> Profile:
        if self.kind == "laser" and (self.laser is None or self.limits.laser_s_max is None):
            raise ValueError("a laser profile needs a [laser] section and limits.laser_s_max ($30)")
        return self

    @property
    def forbidden(self) -> frozenset[str]:
        return frozenset(c.upper() for c in self.commands.forbidden)


class ProfileError(ValueError):
    """A profile file is missing or invalid; the message names the file and the field."""


def load_profile_file(path: Path) -> Profile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"{path.name}: {exc}") from exc
    try:
        profile = Profile.model_validate(data)
    except ValueError as exc:
        raise ProfileError(f"{path.name}: {exc}") from exc
    if profile.id != path.stem:
        raise ProfileError(f"{path.name}: id {profile.id!r} does not match the file name")
    return profile


def profile_dir() -> Path:
    return Path(str(resources.files("firmware_profiles")))


@cache
def all_profiles(directory: Path | None = None) -> dict[str, Profile]:
    """Every profile in `directory` (default: the bundled `firmware_profiles/`), by id."""
    directory = directory or profile_dir()
    return {p.stem: load_profile_file(p) for p in sorted(directory.glob("*.toml"))}


def get_profile(profile_id: str) -> Profile:
    try:
        return all_profiles()[profile_id]
    except KeyError:
        raise ProfileError(f"unknown profile {profile_id!r}; known: {', '.join(all_profiles())}") from None
