"""Who may do what: technician tokens (stored as hashes), makers' job secrets, the submission rate limit."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session, select

from fabzone.db import open_session
from fabzone.models import Token, utcnow

# Writing last_used_at on every request would take SQLite's write lock for each click on the
# dashboard; a minute's precision is what "last used" needs.
LAST_USED_PRECISION = timedelta(seconds=60)


def digest(secret: str) -> str:
    """sha256 hex: what the database keeps of a token or a maker's secret. Tokens are 256-bit random,
    so a plain (unsalted) hash is enough: there is nothing to brute-force."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def secret_matches(secret: str | None, stored_hash: str | None) -> bool:
    if not secret or not stored_hash:
        return False
    return hmac.compare_digest(digest(secret), stored_hash)


class TokenError(ValueError):
    """A token command that cannot be done (name taken, no such token); the message says why."""


@dataclass(frozen=True)
class TokenInfo:
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _info(token: Token) -> TokenInfo:
    return TokenInfo(token.name, token.created_at, token.last_used_at, token.revoked_at)


def create_token(engine: Engine, name: str, token: str | None = None, *, replace: bool = False) -> str:
    """A new technician token named `name`; returns the token (the only time it is seen).

    `token` registers a given value (the demo's `--tech-token`); `replace` drops an existing token of
    that name first (a demo restarted with the same data dir)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise TokenError("a token name is 1 to 100 characters")
    value = token or new_secret()
    if len(value) < 16:
        raise TokenError("a token is at least 16 characters")
    with open_session(engine) as session:
        existing = session.exec(select(Token).where(Token.name == name)).first()
        if existing is not None:
            if not replace:
                raise TokenError(f"a token named {name!r} exists already (revoke it or choose another name)")
            session.delete(existing)
            session.flush()
        same = session.exec(select(Token).where(Token.token_hash == digest(value))).first()
        if same is not None:
            session.delete(same)  # the same secret under another name: one row per secret
            session.flush()
        session.add(Token(name=name, token_hash=digest(value)))
        session.commit()
    return value


def list_tokens(engine: Engine) -> list[TokenInfo]:
    with open_session(engine, readonly=True) as session:
        return [_info(t) for t in session.exec(select(Token).order_by(Token.name)).all()]


def revoke_token(engine: Engine, name: str) -> TokenInfo:
    with open_session(engine) as session:
        token = session.exec(select(Token).where(Token.name == name)).first()
        if token is None:
            raise TokenError(f"there is no token named {name!r}")
        if token.revoked_at is None:
            token.revoked_at = utcnow()
            session.add(token)
            session.commit()
        return _info(token)


def verify_token(engine: Engine, value: str) -> str | None:
    """The name of the technician whose live (not revoked) token this is, or None."""
    wanted = digest(value)
    with open_session(engine, readonly=True) as session:
        token = session.exec(select(Token).where(Token.token_hash == wanted)).first()
    if token is None or token.revoked_at is not None:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
        with Session(engine) as session:
            row = session.get(Token, token.id)
            if row is not None:
                row.last_used_at = now
                session.commit()
    return token.name


class RateLimiter:
    """A sliding window per client address: at most `limit` hits in any `window` seconds.

    In memory, per hub process: it protects a kiosk hub from a script flooding it with uploads, not a
    cluster from a distributed attack (a reverse proxy does that)."""

    def __init__(self, limit: int, window: float = 60.0, max_clients: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> float | None:
        """Record a hit for `key`; None if allowed, else the seconds until the next one would be."""
        if self.limit <= 0:
            return None  # 0 turns the limit off
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(hits[0] + self.window - now, 0.0)
            hits.append(now)
            if len(self._hits) > self.max_clients:
                self._forget_idle(now)
            return None

    def _forget_idle(self, now: float) -> None:
        # Bounded memory: addresses with no hit in the window hold nothing worth keeping.
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window]:
            del self._hits[key]

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))
