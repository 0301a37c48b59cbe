"""IPython magics: ``%deploy``, ``%undeploy``, ``%deployments``.

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

from ..errors import JupyterDeployError
from ..spec import default


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


@magics_class
class DeployMagics(Magics):
    """Deploy models from the kernel namespace."""

    @magic_arguments()
    @argument("model", nargs="?", help="Variable holding the model (any object with predict).")
    @argument("--name", "-n", help="Deployment name and route /<name> (default: variable).")
    @argument("--sample", "-s", help="Variable with training data, to infer the input schema.")
    @argument("--min-replicas", type=int, default=1, help="Autoscaling floor (default 1).")
    @argument("--max-replicas", type=int, default=2, help="Autoscaling ceiling (default 2).")
    @argument(
        "--target-ongoing-requests",
        type=float,
        default=8.0,
        help="Ongoing requests per replica that autoscaling aims for (default 8).",
    )
    @argument("--num-cpus", type=float, default=0.5, help="CPUs per replica (default 0.5).")
    @argument("--num-gpus", type=float, default=0.0, help="GPUs per replica (default 0).")
    @argument("--no-auth", action="store_true", help="Serve without a bearer token.")
    @argument("--allow-nan", action="store_true", help="Accept missing values in all columns.")
    @argument("--reference", help="Variable with the data drift is measured against "
              "(default: the sample).")  # fmt: skip
    @argument("--log-sample-rate", type=float, default=1.0,
              help="Share of requests kept in the payload log (default 1, 0 = off).")  # fmt: skip
    @argument("--log-retention-days", type=int, default=default("log_retention_days"),
              help="Days of payload log kept (default %(default)s).")  # fmt: skip
    @argument("--log-redact", metavar="FIELDS", default="",
              help="Request fields kept out of the payload log: ssn,dob.")  # fmt: skip
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
            namespace=ns,
        )

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
