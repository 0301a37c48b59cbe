"""Which keys a replica accepts, for which routes, and when each was last used.

The replica holds only key hashes (:class:`~jupyter_deploy.control.keys.Grant`), pushed
with the target Serve hands to ``reconfigure()``: a revoke or a new key replaces the table
in one assignment, in place, and the next request is checked against the new one. A
request costs one SHA-256 and one dict lookup, however many keys there are; looking a key
up by its hash reveals nothing a timing attack could use (the hash of an unknown secret).

Last use is kept in a dict here and sent to the registry in one batch every
:data:`REPORT_S` seconds (:meth:`Keyring.drain`), never with a request.
"""

from __future__ import annotations

import hashlib
import time

from ..control.keys import SCOPES, Grant

REPORT_S = 5.0
OPEN_ROUTES = ("/livez", "/readyz", "/healthz")  # answer without a key, and say nothing else
SCOPE_OF = {"/predict": "predict", "/predict_proba": "predict", "/explain": "predict",
            "/feedback": "feedback"}  # fmt: skip  # every other route: "metrics" (and docs)


def scope_of(path: str) -> str:
    return SCOPE_OF.get(path, "metrics")


class Keyring:
    """The grants of one replica; ``auth`` False accepts every request."""

    def __init__(self, auth: bool, exported: str | None = None) -> None:
        # An exported replica's key comes from a secret at start (replica/secret.py) and
        # is kept whatever the target says: an export's target carries no keys.
        self._fixed = {exported: Grant(exported, "exported", SCOPES)} if exported else {}
        self.auth = auth or bool(exported)
        self._grants: dict[str, Grant] = dict(self._fixed)
        self.used: dict[str, float] = {}

    def update(self, grants: tuple[Grant, ...]) -> None:
        """Accept exactly ``grants`` from now on (one assignment: requests see old or new)."""
        self._grants = {**{g.sha256: g for g in grants}, **self._fixed}

    def check(self, header: str | None, scope: str) -> tuple[int, str] | None:
        """None when the request may go on; else the HTTP status and the one-line reason."""
        if not self.auth:
            return None
        if not header or header[:7].lower() != "bearer ":
            return 401, "missing bearer key: send 'Authorization: Bearer <key>'"
        grant = self._grants.get(hashlib.sha256(header[7:].strip().encode()).hexdigest())
        now = time.time()
        if grant is None:
            return 401, "invalid bearer key: it is unknown or was revoked"
        if grant.expires is not None and now >= grant.expires:
            return 401, f"the key '{grant.name}' has expired; make a new one"
        self.used[grant.name] = now
        if scope not in grant.scopes:
            return 403, f"the key '{grant.name}' may not call this route (scope '{scope}' needed)"
        return None

    def drain(self) -> dict[str, float]:
        """Last use of each key since the last call (empty when none was used)."""
        if not self.used:
            return {}
        used, self.used = self.used, {}
        return used
