"""``jupyter-deploy`` commands about a deployment's versions and who may call them: keys,
the traffic split, shadows, promotion and the comparison of live versions."""

from __future__ import annotations

import argparse
from typing import Any

from .control.keys import SCOPES


def _keys(args: argparse.Namespace) -> Any:
    import datetime as dt

    from .client import api, keys
    from .errors import InvalidSpecError

    dep = api.get(args.name, address=args.address)
    if args.action == "list":
        return dep.keys()
    if not args.key:
        raise InvalidSpecError(f"`keys {args.name} {args.action}` needs the key's name.")
    if args.action == "revoke":
        dep.revoke_key(args.key)
        return f"Revoked key '{args.key}' of '{args.name}': every replica refuses it."
    expires = dt.timedelta(days=args.days) if args.days else None
    secret = keys.create(args.name, args.key, args.scopes, expires)
    if args.json:
        return {"name": args.key, "scopes": args.scopes, "secret": secret}
    return f"Key '{args.key}' ({', '.join(args.scopes)}), shown this once:\n{secret}"


def _traffic(args: argparse.Namespace) -> Any:
    from .client import api, traffic

    dep = api.get(args.name, address=args.address)
    if args.command == "split":
        dep = dep.split(traffic.parse_shares(args.shares), sticky=args.sticky)
    elif args.command == "shadow":
        dep = dep.shadow(None if args.version == "off" else int(args.version.lstrip("v")),
                         rate=args.rate)  # fmt: skip
    elif args.command == "promote":
        dep = dep.promote()
    return dep.traffic()


def _compare(args: argparse.Namespace) -> Any:
    from .client import api

    table = api.get(args.name, address=args.address).compare(window_s=args.window)
    if args.json:
        return table.reset_index().to_dict(orient="records")
    cols = ["role", "share", "requests", "error_rate", "p50_ms", "p95_ms", "accuracy"]
    return table[cols].to_string(float_format=lambda v: f"{v:.4g}")


def add_commands(sub: Any) -> None:
    """Register the commands on ``jupyter-deploy``'s subparsers."""
    k = sub.add_parser("keys", help="A deployment's keys: create (shown once), list, revoke.")
    k.add_argument("name")
    k.add_argument("action", choices=["create", "list", "revoke"])
    k.add_argument("key", nargs="?", help="the key's name (create, revoke)")
    k.add_argument("--scopes", nargs="+", choices=SCOPES, default=list(SCOPES),
                   help="what the key may call (default: all)")  # fmt: skip
    k.add_argument("--days", type=float, help="expire after DAYS (default: never)")
    k.set_defaults(func=_keys)
    t = sub.add_parser("traffic", help="How requests are shared between versions.")
    t.add_argument("name")
    t.set_defaults(func=_traffic)
    sp = sub.add_parser("split", help="Share requests between versions: NAME 1=90 2=10.")
    sp.add_argument("name")
    sp.add_argument("shares", nargs="+", help="VERSION=PERCENT for each version")
    sp.add_argument("--sticky", help="input column that keeps a caller on one version")
    sp.set_defaults(func=_traffic)
    sh = sub.add_parser("shadow", help="Mirror requests to a version (or 'off').")
    sh.add_argument("name")
    sh.add_argument("version", help="version number, or off")
    sh.add_argument("--rate", type=float, default=1.0, help="share mirrored (default 1)")
    sh.set_defaults(func=_traffic)
    pr = sub.add_parser("promote", help="All traffic to the newest version.")
    pr.add_argument("name")
    pr.set_defaults(func=_traffic)
    cp = sub.add_parser("compare", help="The live versions side by side (which one wins).")
    cp.add_argument("name")
    cp.add_argument("--window", type=int, default=300, help="seconds compared (default 300)")
    cp.set_defaults(func=_compare)
