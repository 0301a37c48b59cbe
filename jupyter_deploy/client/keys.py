"""A deployment's keys, from the driver: make, list, revoke; and this process's secrets.

A key's secret is made here, returned once, and kept only in this process's memory
(:data:`_SECRETS`, what ``dep.token`` reads): the registry gets its hash. Each change is
recorded first (a revoked key stays revoked whatever happens next), then pushed to the
running replicas in place as a new target, and waited for: when :func:`revoke` returns,
every replica refuses the key.
"""

from __future__ import annotations

from typing import Any, Protocol

from .. import _ray
from ..control.keys import FIRST_KEY, SCOPES, ApiKey, digest
from ..control.records import DeploymentRecord
from ..errors import InvalidSpecError
from ..rollout import change, serving
from ..settings import Settings
from . import actions

_SECRETS: dict[str, str] = {}  # deployment -> the key this process made and may use


def secret_of(name: str) -> str | None:
    """The key this process holds for deployment ``name`` (None: another process's)."""
    return _SECRETS.get(name)


def first_key(name: str) -> DeploymentRecord | None:
    """Give a new deployment its first key (every scope) and keep the secret here.

    None when the deployment already has keys (this process then holds none, unless it
    made one before)."""
    key, secret = ApiKey.make(FIRST_KEY, SCOPES)
    rec = _ray.call(actions.registry().add_key, name, key, True)
    if rec is not None:
        _SECRETS[name] = secret
    return rec


def _push(rec: DeploymentRecord) -> None:
    """Serve the store's live target (with its new keys) on every running replica: the
    change of traffic's own path (:func:`~jupyter_deploy.rollout.change.push`), in place."""
    if rec.live is None or not serving.running_replicas(rec.name):
        return  # nothing serves: the next rollout or restore takes the keys with it
    settings = Settings.from_env()
    base_url = actions.url_of(rec.name, settings).rsplit("/", 1)[0]
    change.push(rec, base_url, rec.live, rec.traffic, float(settings.deploy_timeout))


def create(name: str, key_name: str, scopes: Any = SCOPES, expires_in: Any = None) -> str:
    """Make key ``key_name`` of ``name``; return its secret (shown nowhere else)."""
    rec, _ = actions.record(name)
    if not rec.version(rec.live or rec.newest.version).spec.get("auth", True):
        raise InvalidSpecError(f"'{name}' was deployed with auth off: it takes no keys.")
    key, secret = ApiKey.make(key_name, scopes, expires_in)
    new = _ray.call(actions.registry().add_key, name, key)
    if new is None:
        raise InvalidSpecError(f"'{name}' already has a key named '{key.name}'; revoke it first.")
    _push(new)
    _SECRETS.setdefault(name, secret)
    return secret


def revoke(name: str, key_name: str) -> None:
    """Revoke key ``key_name``: when this returns, no replica of ``name`` accepts it."""
    rec, _ = actions.record(name)
    new = _ray.call(actions.registry().revoke_key, name, key_name)
    if new is None:
        known = [k.name for k in rec.keys]
        raise InvalidSpecError(f"'{name}' has no key named '{key_name}'; keys: {known}.")
    _push(new)
    if name in _SECRETS and not any(k.sha256 == digest(_SECRETS[name]) for k in new.keys):
        del _SECRETS[name]  # dep.token no longer works: say so (None), not with a 401


def listing(name: str) -> list[dict[str, Any]]:
    rec, _ = actions.record(name)
    return [k.public() for k in rec.keys]


class Named(Protocol):
    @property
    def name(self) -> str: ...


class Keys:
    """A deployment's keys; mixed into ``Deployment``."""

    def create_key(self: Named, name: str, scopes: Any = SCOPES, expires_in: Any = None) -> str:
        """Make a key and return its secret, once: only its hash is stored anywhere.

        ``scopes``: some of ``"predict"`` (predict, predict_proba), ``"feedback"`` and
        ``"metrics"`` (metrics and docs); ``expires_in``: a ``timedelta`` (None: never).
        Every replica accepts it when this returns.
        """
        return create(self.name, name, scopes, expires_in)

    def keys(self: Named) -> list[dict[str, Any]]:
        """Each key's name, scopes, created, expires and last used (never the secret)."""
        return listing(self.name)

    def revoke_key(self: Named, name: str) -> None:
        """Revoke key ``name``: every replica refuses it when this returns."""
        revoke(self.name, name)
