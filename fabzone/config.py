"""Hub settings: the fleet file (`fabzone.toml`), `FABZONE_*` environment overrides, and defaults."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
    url: str | None = None  # network drivers: OctoPrint's base URL
    # OctoPrint: the NAME of the environment variable holding the application key (never the key).
    # `port` is then the printer's serial port on the OctoPrint host (default: OctoPrint's own).
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    baud: int | None = None  # default: the profile's
    profile: str
    site: str | None = None
    # MQTT: the machine's name in its topics fabzone/v1/<site>/<device>/ (default: its id); the
    # broker is `url` (mqtt://…) or else `[hub] mqtt_url`.
    device: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]+$")

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

    @model_validator(mode="after")
    def _octoprint_url(self) -> MachineConfig:
        # An OctoPrint machine's address is its `url`; `port` is the printer's serial port on the
        # OctoPrint host, never an address to fall back to.
        if self.driver == "octoprint":
            if not self.url:
                raise ValueError(
                    f"machine {self.id!r}: an OctoPrint machine needs url = 'http://…' (OctoPrint's "
                    "address); port is the printer's serial port on the OctoPrint host"
                )
            if not self.url.startswith(("http://", "https://")):
                raise ValueError(
                    f"machine {self.id!r}: url must be OctoPrint's http:// or https:// address, not {self.url!r}"
                )
        return self

    @property
    def connection(self) -> str:
        return self.url or self.port or ""

    def driver_options(self) -> dict[str, object]:
        """Keyword arguments for a network driver, read when it connects (a key set later is used)."""
        if self.driver != "octoprint":
            return {}
        name = self.api_key_env or ""
        return {
            "api_key": os.environ.get(name, "") if name else "",
            "api_key_source": name or "(api_key_env missing in the fleet file)",
            "serial_port": self.port,
            "baudrate": self.baud,
        }


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
    # MQTT (docs/mqtt.md): the broker of MQTT machines that name none, and of the hub's own topics.
    mqtt_url: str | None = None  # mqtt://[user@]host:port[?version=3.1.1]
    mqtt_publish: bool = False  # publish every machine's state and job events under fabzone/v1/<site>/hub/
    mqtt_discovery: bool = False  # and Home Assistant MQTT discovery configurations
    mqtt_discovery_prefix: str = "homeassistant"
    # The pages' folder (`web/` of the source tree by default; an installed wheel does not carry it).
    web_dir: Path | None = None


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

    @model_validator(mode="after")
    def _mqtt_connections(self) -> Settings:
        # An MQTT machine's connection is the broker URL with its topic path: mqtt://host:port/<site>/<device>.
        for m in self.machines:
            if m.driver != "mqtt":
                continue
            base = m.url or self.hub.mqtt_url
            if not base or not base.startswith("mqtt://"):
                raise ValueError(
                    f"machine {m.id!r}: an MQTT machine needs url = 'mqtt://…' or [hub] mqtt_url"
                )
            from drivers.mqtt.contract import BrokerUrl

            broker = BrokerUrl.parse(base)
            if broker.machine is None:
                m.url = broker.with_machine(m.site or self.hub.site, m.device or m.id)
        return self

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
    if env.get("FABZONE_MQTT_URL"):
        hub["mqtt_url"] = env["FABZONE_MQTT_URL"]
    if env.get("FABZONE_MQTT_PUBLISH"):
        hub["mqtt_publish"] = env["FABZONE_MQTT_PUBLISH"].lower() in ("1", "true", "yes")
    if env.get("FABZONE_WEB_DIR"):
        hub["web_dir"] = env["FABZONE_WEB_DIR"]
    if env.get("FABZONE_PUBLIC_URL"):
        hub["public_url"] = env["FABZONE_PUBLIC_URL"]
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
