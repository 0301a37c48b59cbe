"""IPython magics: ``%deploy``, ``%undeploy``, ``%deployments``, ``%deploy_key``...

They parse their line into the same keyword arguments as :func:`jupyter_deploy.deploy`
and call the API; an error is shown as one red line, never a traceback.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..control.keys import SCOPES
from ..errors import JupyterDeployError
from ..spec import RUNTIMES, Autoscaling, DeploymentSpec, Resources


def _one_line_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Show JupyterDeployError (and bad magic arguments) as one line; return None."""

    @functools.wraps(func)
    def wrapper(self: Any, line: str) -> Any:
        try:
            return func(self, line)
        except JupyterDeployError as exc:
            print(f"\x1b[31m{type(exc).__name__}: {exc}\x1b[0m", file=sys.stderr)
        except SystemExit:  # argparse already printed the usage error
            pass
        return None

    return wrapper


# Every option's default is the spec's: one place for each.
_AUTO, _RES, _SPEC = Autoscaling(), Resources(), DeploymentSpec(name="defaults")


@magics_class
class DeployMagics(Magics):
    """Deploy models from the kernel namespace."""

    @magic_arguments()
    @argument("model", nargs="?", help="Variable holding the model (any object with predict).")
    @argument("--name", "-n", help="Deployment name and route /<name> (default: variable).")
    @argument("--sample", "-s", help="Variable with training data, to infer the input schema.")
    @argument("--min-replicas", type=int, default=_AUTO.min_replicas,
              help=f"Autoscaling floor (default {_AUTO.min_replicas}).")  # fmt: skip
    @argument("--max-replicas", type=int, default=_AUTO.max_replicas,
              help=f"Autoscaling ceiling (default {_AUTO.max_replicas}).")  # fmt: skip
    @argument(
        "--target-ongoing-requests",
        type=float,
        default=_AUTO.target_ongoing_requests,
        help="Ongoing requests per replica that autoscaling aims for "
        f"(default {_AUTO.target_ongoing_requests:g}).",
    )
    @argument("--num-cpus", type=float, default=_RES.num_cpus,
              help=f"CPUs per replica (default {_RES.num_cpus:g}).")  # fmt: skip
    @argument("--num-gpus", type=float, default=_RES.num_gpus,
              help=f"GPUs per replica (default {_RES.num_gpus:g}).")  # fmt: skip
    @argument("--no-auth", action="store_true", help="Serve without a bearer key.")
    @argument("--allow-nan", action="store_true", help="Accept missing values in all columns.")
    @argument("--reference", help="Variable with the data drift is measured against "
              "(default: the sample).")  # fmt: skip
    @argument("--log-sample-rate", type=float, default=_SPEC.log_sample_rate,
              help="Share of requests kept in the payload log "
              f"(default {_SPEC.log_sample_rate:g}, 0 = off).")  # fmt: skip
    @argument("--log-retention-days", type=int, default=_SPEC.log_retention_days,
              help="Days of payload log kept (default %(default)s).")  # fmt: skip
    @argument("--log-redact", metavar="FIELDS", default="",
              help="Request fields kept out of the payload log: ssn,dob.")  # fmt: skip
    @argument("--segments", metavar="COLUMNS", default="",
              help="Input columns to split monitoring by (fairness): sex,region.")  # fmt: skip
    @argument("--explain-timeout", type=float, default=_SPEC.explain_timeout_s, metavar="S",
              help="Seconds an explanation may take (default %(default)s).")  # fmt: skip
    @argument("--importance-rows", type=float, default=_SPEC.importance_rows_per_s, metavar="N",
              help="Live rows explained per second per replica for global importance "
              "(default %(default)s, 0 = off).")  # fmt: skip
    @argument("--runtime", choices=RUNTIMES, default=_SPEC.runtime,
              help="What runs the model: python (its predict) or onnx (its ONNX graph, "
              "checked against the model on the sample; default %(default)s).")  # fmt: skip
    @argument("--canary", type=float, metavar="PERCENT",
              help="Roll out as a canary from PERCENT of the traffic (e.g. 10).")  # fmt: skip
    @argument("--rollback", metavar="NAME", help="Serve NAME's previous version again.")
    @line_magic
    @_one_line_errors
    def deploy(self, line: str) -> Any:
        """Deploy a model: ``%deploy model --name churn --sample X_train``."""
        from ..client import api

        args = parse_argstring(self.deploy, line)
        if args.rollback:
            return api.rollback(args.rollback)
        if not args.model:
            raise JupyterDeployError("Name the model to deploy: %deploy <variable> [--name ...]")
        ns = self.shell.user_ns if self.shell is not None else {}
        from ..build.capture import resolve

        sample = resolve(args.sample, ns)[0] if args.sample else None
        reference = resolve(args.reference, ns)[0] if args.reference else None
        return api.deploy(
            args.model,
            args.name,
            sample=sample,
            reference=reference,
            log_sample_rate=args.log_sample_rate,
            log_retention_days=args.log_retention_days,
            log_redact=tuple(f.strip() for f in args.log_redact.split(",") if f.strip()),
            min_replicas=args.min_replicas,
            max_replicas=args.max_replicas,
            target_ongoing_requests=args.target_ongoing_requests,
            num_cpus=args.num_cpus,
            num_gpus=args.num_gpus,
            auth=not args.no_auth,
            allow_nan=args.allow_nan,
            runtime=args.runtime,
            canary=args.canary / 100 if args.canary is not None else None,
            segments=tuple(c.strip() for c in args.segments.split(",") if c.strip()),
            explain_timeout_s=args.explain_timeout,
            importance_rows_per_s=args.importance_rows,
            namespace=ns,
        )

    @magic_arguments()
    @argument("name", help="Deployment to split.")
    @argument("shares", nargs="+", help="VERSION=PERCENT for each version, e.g. 1=90 2=10.")
    @argument("--sticky", help="Input column: the same value always reaches the same version.")
    @line_magic
    @_one_line_errors
    def split(self, line: str) -> Any:
        """Share traffic between versions: ``%split churn 1=90 2=10 [--sticky customer_id]``."""
        from ..client import api, traffic

        args = parse_argstring(self.split, line)
        return api.get(args.name).split(traffic.parse_shares(args.shares), sticky=args.sticky)

    @magic_arguments()
    @argument("name", help="Deployment whose traffic is mirrored.")
    @argument("version", help="Version that gets the copies, or 'off'.")
    @argument("--rate", type=float, default=1.0, help="Share of requests mirrored (default 1).")
    @line_magic
    @_one_line_errors
    def shadow(self, line: str) -> Any:
        """Mirror traffic to a version: ``%shadow churn 3 [--rate 0.5]``; ``%shadow churn off``."""
        from ..client import api

        args = parse_argstring(self.shadow, line)
        version = None if args.version == "off" else int(args.version.lstrip("v"))
        return api.get(args.name).shadow(version, rate=args.rate)

    @magic_arguments()
    @argument("name", help="Deployment whose newest version takes all traffic.")
    @line_magic
    @_one_line_errors
    def promote(self, line: str) -> Any:
        """All traffic to the newest version: ``%promote churn``."""
        from ..client import api

        return api.get(parse_argstring(self.promote, line).name).promote()

    @magic_arguments()
    @argument("name", help="Deployment whose keys to manage.")
    @argument("action", choices=["create", "list", "revoke"])
    @argument("key", nargs="?", help="The key's name (create, revoke).")
    @argument("--scopes", default=",".join(SCOPES),
              help=f"What the key may call: some of {','.join(SCOPES)} (default all).")  # fmt: skip
    @argument("--days", type=float, help="Expire after DAYS (default: never).")
    @argument("--var", help="Variable that receives a new key's secret (default KEY_key).")
    @line_magic
    @_one_line_errors
    def deploy_key(self, line: str) -> Any:
        """Keys: ``%deploy_key churn create mobile --scopes predict --days 30``; ``list``;
        ``revoke``. A new secret goes into a variable, never into the cell's output (which
        the notebook saves)."""
        import datetime as dt

        from ..client import api

        args = parse_argstring(self.deploy_key, line)
        dep = api.get(args.name)
        if args.action == "list":
            return dep.keys()
        if not args.key:
            raise JupyterDeployError(f"Name the key: %deploy_key {args.name} {args.action} KEY")
        if args.action == "revoke":
            dep.revoke_key(args.key)
            print(f"Revoked key '{args.key}' of '{args.name}': every replica refuses it.")
            return None
        scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
        expires = dt.timedelta(days=args.days) if args.days else None
        secret = dep.create_key(args.key, scopes, expires)
        var = args.var or f"{args.key.replace('-', '_')}_key"
        if self.shell is not None:
            self.shell.user_ns[var] = secret
        print(f"Key '{args.key}' ({', '.join(scopes)}) created; its secret is in `{var}` "
              f"({secret[:4]}{'•' * 8}) and shown nowhere else.")  # fmt: skip
        return None

    @magic_arguments()
    @argument("name", help="Deployment to delete.")
    @line_magic
    @_one_line_errors
    def undeploy(self, line: str) -> None:
        """Stop serving a deployment: ``%undeploy churn``."""
        from ..client import api

        name = parse_argstring(self.undeploy, line).name
        api.undeploy(name)
        print(f"Deleted deployment '{name}'.")

    @magic_arguments()
    @argument("name", help="Deployment to watch.")
    @argument("--interval", type=float, default=1.0, help="Seconds between updates.")
    @line_magic
    @_one_line_errors
    def monitor(self, line: str) -> Any:
        """Live dashboard of a deployment: ``%monitor churn``."""
        from ..client import api

        args = parse_argstring(self.monitor, line)
        return api.get(args.name).monitor(interval_s=args.interval)

    @line_magic
    @_one_line_errors
    def deployments(self, line: str) -> Any:
        """Table of every deployment in the cluster: ``%deployments``."""
        from ..client import api
        from ..client.table import DeploymentTable

        return DeploymentTable(api.list_deployments())
