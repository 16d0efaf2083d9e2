"""Hub settings: the fleet file (`fabzone.toml`), `FABZONE_*` environment overrides, and defaults."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from drivers import DRIVERS
from drivers.profiles import all_profiles

MB = 1024 * 1024


class _Strict(BaseModel):
    # A typo in the fleet file (`prot = ...`) must be an error, not a silently ignored key.
    model_config = ConfigDict(extra="forbid")


class MachineConfig(_Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    name: str
    driver: str = "marlin"
    port: str | None = None  # serial device, pty or socket:// URL (serial drivers)
    url: str | None = None  # network drivers (OctoPrint, later)
    baud: int | None = None  # default: the profile's
    profile: str
    site: str | None = None

    @field_validator("driver")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if value not in DRIVERS:
            raise ValueError(f"unknown driver {value!r}; known: {', '.join(DRIVERS)}")
        return value

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        if value not in all_profiles():
            raise ValueError(f"unknown profile {value!r}; known: {', '.join(all_profiles())}")
        return value

    @property
    def connection(self) -> str:
        return self.port or self.url or ""


class HubConfig(_Strict):
    site: str = "fabzone"
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./fabzone-data")
    database_url: str | None = None  # default: SQLite in data_dir
    max_upload_mb: float = Field(default=100, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Job submissions per client address per window (0: no limit); technicians are exempt.
    submit_per_minute: int = Field(default=10, ge=0)
    submit_window_s: float = Field(default=60, gt=0)  # the window; shorter only in tests
    # The address makers' phones reach the hub at (the ticket QR code); default: the request's own.
    public_url: str | None = None
    # Events queued per WebSocket client before it counts as too slow and is dropped.
    ws_queue_size: int = Field(default=1000, ge=1)
    # A laser job assigned to a laser waits this long for a technician to arm it, then goes back to
    # the queue.
    arm_timeout_s: float = Field(default=300, gt=0)


class Settings(_Strict):
    hub: HubConfig = HubConfig()
    machines: list[MachineConfig] = Field(default_factory=list)

    @field_validator("machines")
    @classmethod
    def _unique_ids(cls, machines: list[MachineConfig]) -> list[MachineConfig]:
        seen: set[str] = set()
        for m in machines:
            if m.id in seen:
                raise ValueError(f"machine id {m.id!r} appears twice")
            seen.add(m.id)
        return machines

    @property
    def database_url(self) -> str:
        return self.hub.database_url or f"sqlite:///{(self.hub.data_dir / 'fabzone.db').resolve()}"

    @property
    def max_upload_bytes(self) -> int:
        return int(self.hub.max_upload_mb * MB)

    @property
    def files_dir(self) -> Path:
        return self.hub.data_dir / "files"


class ConfigError(ValueError):
    """The fleet file cannot be used; the message names the file and the field."""


def _env_overrides(data: dict) -> dict:
    hub = dict(data.get("hub", {}))
    env = os.environ
    if env.get("FABZONE_DATABASE_URL"):
        hub["database_url"] = env["FABZONE_DATABASE_URL"]
    if env.get("FABZONE_DATA_DIR"):
        hub["data_dir"] = env["FABZONE_DATA_DIR"]
    if env.get("FABZONE_MAX_UPLOAD_MB"):
        hub["max_upload_mb"] = float(env["FABZONE_MAX_UPLOAD_MB"])
    if env.get("FABZONE_SITE"):
        hub["site"] = env["FABZONE_SITE"]
    if env.get("FABZONE_WS_QUEUE_SIZE"):
        hub["ws_queue_size"] = int(env["FABZONE_WS_QUEUE_SIZE"])
    return {**data, "hub": hub}


def build_settings(data: dict, source: str = "settings") -> Settings:
    try:
        return Settings.model_validate(_env_overrides(data))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"{source}: {problems}") from None


def load_settings(path: Path) -> Settings:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return build_settings(data, str(path))
