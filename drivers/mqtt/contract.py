"""The MQTT contract of docs/mqtt.md in code: topics, broker URLs, payload helpers, paho client setup."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

VERSION = 1
ROOT = "fabzone/v1"
QOS = 1
# The life of a command the hub does not wait for (estop); a waited-for one expires when the hub's
# wait for its answer ends (docs/mqtt.md, Commands 2).
COMMAND_TTL_S = 30.0
TOPICS = ("availability", "status", "events", "cmd", "cmd/result")


def is_number(value: Any) -> bool:
    """A JSON number (`ts`, `expires_at`, ...): an int or a float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_status_snapshot(data: dict[str, Any]) -> bool:
    """A status is always the complete snapshot (docs/mqtt.md) with the schema's required keys; anything
    less (a device's "partial update", a truncated payload) would leave the hub guessing."""
    boot = data.get("boot")
    return (
        is_number(data.get("ts"))
        and isinstance(boot, int)
        and not isinstance(boot, bool)
        and data.get("kind") in ("printer", "laser")
        and isinstance(data.get("state"), str)
    )


def prefix(site: str, machine: str) -> str:
    return f"{ROOT}/{site}/{machine}"


@dataclass(frozen=True)
class BrokerUrl:
    """`mqtt://[user[:password]@]host[:port][/<site>/<machine>][?version=3.1.1]`."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    mqtt5: bool = True
    site: str | None = None
    machine: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        parts = urlsplit(url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise ValueError(f"not an mqtt:// URL: {url!r}")
        path = [p for p in parts.path.split("/") if p]
        if path and len(path) != 2:
            raise ValueError(f"the path of {url!r} must be /<site>/<machine>")
        version = parse_qs(parts.query).get("version", ["5"])[0]
        return cls(
            host=parts.hostname,
            port=parts.port or 1883,
            username=parts.username,
            password=parts.password,
            # amqtt speaks 3.1.1 only and never answers an MQTT 5 CONNECT (notes/mqtt.md).
            mqtt5=version not in ("3", "3.1.1", "311"),
            site=path[0] if path else None,
            machine=path[1] if path else None,
        )

    @property
    def topic_prefix(self) -> str:
        if not self.site or not self.machine:
            raise ValueError("the broker URL names no /<site>/<machine>")
        return prefix(self.site, self.machine)

    def with_machine(self, site: str, machine: str) -> str:
        auth = ""
        if self.username:
            auth = self.username + (f":{self.password}" if self.password else "") + "@"
        query = "" if self.mqtt5 else "?version=3.1.1"
        return f"mqtt://{auth}{self.host}:{self.port}/{site}/{machine}{query}"


def make_client(url: BrokerUrl, client_id: str, *, persistent: bool) -> mqtt.Client:
    """A paho 2.x client (callback API version 2). `persistent`: the hub's session survives its
    reconnects (MQTT 5 Clean Start 0 + Session Expiry, 3.1.1 CleanSession 0); devices use clean ones."""
    protocol = mqtt.MQTTv5 if url.mqtt5 else mqtt.MQTTv311
    kwargs: dict[str, Any] = {}
    if not url.mqtt5:
        kwargs["clean_session"] = not persistent
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, **kwargs)
    if url.username:
        client.username_pw_set(url.username, url.password)
    # paho's loop thread reconnects by itself, waiting 1 s doubling up to 2 s between attempts: a
    # restarted broker is found again within ~2 s (status back within 5 s, issue 6).
    client.reconnect_delay_set(min_delay=1, max_delay=2)
    return client


def connect_async(client: mqtt.Client, url: BrokerUrl, *, persistent: bool, keepalive: int = 10) -> None:
    if url.mqtt5:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        if persistent:
            props.SessionExpiryInterval = 3600  # MQTT 5 §3.1.2.11.2: keep the hub's queue an hour
        client.connect_async(
            url.host, url.port, keepalive=keepalive, clean_start=not persistent, properties=props
        )
    else:
        client.connect_async(url.host, url.port, keepalive=keepalive)


def dumps(payload: dict[str, Any]) -> str:
    return json.dumps({"v": VERSION, "ts": round(time.time(), 3), **payload}, separators=(",", ":"))


def loads(raw: bytes | bytearray) -> dict[str, Any] | None:
    """A version-1 JSON object, or None (unknown versions and garbage are ignored, not fatal)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or data.get("v") != VERSION:
        return None
    return data
