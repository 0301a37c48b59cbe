"""Endpoint keys: named, scoped, expiring, revocable, and stored only as a hash.

A key's secret is made in the process that asks for it (:func:`new_secret`), handed to
the caller once and never sent anywhere else: the registry stores its SHA-256 with its
name, scopes and dates (:class:`ApiKey`), and replicas receive only :class:`Grant`\\ s
(hash, name, scopes, expiry) inside the target Serve pushes to them. SHA-256 without a
salt or a slow hash is enough because a secret is 32 random bytes, not a password: nobody
can guess one from its hash, and a replica checks a request with one hash and a dict
lookup.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

from ..errors import InvalidSpecError

SCOPES = ("predict", "feedback", "metrics")  # predict(_proba, explain); feedback; metrics + docs
FIRST_KEY = "default"  # the key a deployment is made with; it has every scope


def new_secret() -> str:
    """A fresh key secret (43 URL-safe characters)."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """The hex SHA-256 stored and checked in place of ``secret``."""
    return hashlib.sha256(secret.strip().encode()).hexdigest()


def check_scopes(scopes: Any) -> tuple[str, ...]:
    """``scopes`` as a sorted tuple of known scopes; one-line error otherwise."""
    items = [scopes] if isinstance(scopes, str) else list(scopes or ())
    unknown = [s for s in items if s not in SCOPES]
    if unknown or not items:
        raise InvalidSpecError(f"Scopes are some of {list(SCOPES)}; got {items!r}.")
    return tuple(s for s in SCOPES if s in items)


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise InvalidSpecError(f"A key's name is 1 to 64 characters, got {name!r}.")
    return name.strip()


@dataclass(frozen=True)
class Grant:
    """What a replica needs of a key: its hash, name (for last-used), scopes, expiry."""

    sha256: str
    name: str
    scopes: tuple[str, ...]
    expires: float | None = None

    def to_config(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "name": self.name, "scopes": list(self.scopes),
                "expires": self.expires}  # fmt: skip

    @classmethod
    def from_config(cls, data: dict[str, Any]) -> Grant:
        return cls(str(data["sha256"]), str(data["name"]), tuple(data["scopes"]),
                   data.get("expires"))  # fmt: skip


@dataclass(frozen=True)
class ApiKey:
    """A key as the store keeps it: never the secret. Times are epoch seconds."""

    name: str
    scopes: tuple[str, ...]
    sha256: str
    created: float
    expires: float | None = None
    last_used: float | None = None

    @classmethod
    def make(cls, name: str, scopes: Any, expires_in: Any = None) -> tuple[ApiKey, str]:
        """A new key and its secret; ``expires_in``: a timedelta, seconds, or None."""
        seconds = getattr(expires_in, "total_seconds", lambda: expires_in)()
        if seconds is not None and (not isinstance(seconds, int | float) or seconds <= 0):
            raise InvalidSpecError(f"expires_in must be a positive duration, got {expires_in!r}.")
        secret, now = new_secret(), time.time()
        key = cls(check_name(name), check_scopes(scopes), digest(secret), now,
                  now + seconds if seconds is not None else None)  # fmt: skip
        return key, secret

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and (now or time.time()) >= self.expires

    def grant(self) -> Grant:
        return Grant(self.sha256, self.name, self.scopes, self.expires)

    def used(self, when: float) -> ApiKey:
        return replace(self, last_used=max(when, self.last_used or 0.0))

    def public(self) -> dict[str, Any]:
        """What ``dep.keys()`` shows: everything but the hash."""

        def day(t: float | None) -> str | None:
            return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else None

        return {"name": self.name, "scopes": list(self.scopes), "created": day(self.created),
                "expires": day(self.expires), "last_used": day(self.last_used),
                "expired": self.expired()}  # fmt: skip
