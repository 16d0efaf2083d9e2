"""Signed, expiring URLs for job files (MQTT devices download their job from the hub; docs/mqtt.md)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

KEY_FILE = "file-signing.key"
DEFAULT_TTL_S = 3600.0


def load_or_create_key(data_dir: Path) -> bytes:
    """The hub's secret, made once and kept in its data directory (mode 0600), so URLs signed before a
    restart still work after it and several hubs sharing a data directory agree."""
    path = data_dir / KEY_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex())
    return key


def signature(key: bytes, sha256: str, exp: int) -> str:
    return hmac.new(key, f"{sha256}:{exp}".encode(), hashlib.sha256).hexdigest()


def signed_query(key: bytes, sha256: str, ttl_s: float = DEFAULT_TTL_S, now: float | None = None) -> str:
    exp = int((now if now is not None else time.time()) + ttl_s)
    return f"exp={exp}&sig={signature(key, sha256, exp)}"


def verify(key: bytes, sha256: str, exp: int, sig: str, now: float | None = None) -> bool:
    """True for an unexpired URL signed with our key (constant-time compare: no timing oracle)."""
    if exp < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(signature(key, sha256, exp), sig)
