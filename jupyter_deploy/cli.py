"""``jupyter-deploy``: the same API from a shell, for scripts and CI.

Exit codes: 0 success; 1 the operation failed; 2 bad usage or a bad parameter; 3 no such
deployment; 4 the quality gate rejected the candidate (``run``, ``retrain``; nothing was
deployed); 5 the candidate's canary was rolled back (``run`` with ``rollout=canary``; the
baseline serves). ``retrain`` exits 0 with "not needed: ..." when its trigger is not met.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from . import cli_stream, cli_versions
from .errors import (
    CanaryRolledBackError,
    DeploymentNotFoundError,
    GateFailedError,
    JupyterDeployError,
    ParameterError,
)

EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_GATE_FAILED, EXIT_CANARY = 1, 2, 3, 4, 5


def _print(data: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    elif isinstance(data, dict):
        for key, value in data.items():
            print(f"{key}: {value}")
    else:
        print(data)


def _cluster(args: argparse.Namespace) -> Any:
    from .client import api
    from .control import cluster
    from .settings import Settings

    if args.action == "start":
        from .client import actions

        info, restored = actions.connect(None, Settings.from_env(), force=True)
        return {"address": info.address, "embedded": info.embedded, "pid": info.pid,
                "http": cluster.base_url(info, Settings.from_env()),
                "restored": [f"{r.name} v{r.version}" for r in restored]}  # fmt: skip
    if args.action == "stop":
        stopped = api.stop_cluster(forget=args.forget)
        said = "Stopped the embedded cluster." if stopped else "No embedded cluster was running."
        return said + (" Its deployments were forgotten." if args.forget else "")
    settings = Settings.from_env()
    state = cluster.read_state(settings)
    if state is None:
        return {"running": False}
    return {"running": True, "address": state.address, "pid": state.pid,
            "http": cluster.base_url(state, settings)}  # fmt: skip


def _list(args: argparse.Namespace) -> Any:
    from .client import api
    from .client.table import DeploymentTable

    table = DeploymentTable(api.list_deployments(address=args.address))
    return table.rows() if args.json else repr(table)


def _status(args: argparse.Namespace) -> Any:
    from .client import api

    dep = api.get(args.name, address=args.address)
    return {**dep.status(), "versions": dep.versions()}


def _metrics(args: argparse.Namespace) -> Any:
    from .client import api

    dep = api.get(args.name, address=args.address)
    if args.prometheus:
        return dep.prometheus().rstrip("\n")
    snapshot = dep.metrics(args.window)
    if not args.json:
        snapshot.pop("series")
    return snapshot


def _drift(args: argparse.Namespace) -> Any:
    from .client import api

    report = api.get(args.name, address=args.address).drift(args.window)
    if args.json or not report.get("available"):
        return report
    rows = [*report["features"], *report["predictions"]]
    lines = [f"{'feature':<20} {'test':<5} {'psi':>8} {'p':>10} {'n':>7}  verdict"]
    for r in rows:
        psi = "-" if r["psi"] is None else f"{r['psi']:.3g}"
        p = "-" if r["p_value"] is None else f"{r['p_value']:.3g}"
        flag = "DRIFT" if r["drifted"] else "ok"
        lines.append(f"{r['feature']:<20} {r['test']:<5} {psi:>8} {p:>10} {r['n']:>7}  {flag}")
    lines.append(f"accuracy: {report['accuracy']}")
    return "\n".join(lines)


def _logs(args: argparse.Namespace) -> Any:
    import datetime as dt

    from .client import api

    since = dt.timedelta(seconds=args.since) if args.since else None
    frame = api.get(args.name, address=args.address).logs(since=since, limit=args.limit)
    if args.json:
        return json.loads(frame.to_json(orient="records", date_format="iso"))
    return frame.to_string(max_colwidth=60) if len(frame) else "No records."


def _batch(args: argparse.Namespace) -> Any:
    from .client import api

    dep = api.get(args.name, address=args.address)
    result = dep.batch(
        args.input,
        args.output,
        keep=args.keep or (),
        version=args.version,
        method=args.method,
        overwrite=args.overwrite,
        progress=not args.json,
    )
    return result.to_dict()


def _rollback(args: argparse.Namespace) -> Any:
    from .client import api

    dep = api.rollback(args.name, address=args.address, progress=not args.json)
    return {"name": dep.name, "version": dep.version, "url": dep.url}


def _delete(args: argparse.Namespace) -> Any:
    from .client import api

    api.undeploy(args.name, address=args.address)
    return f"Deleted deployment '{args.name}'."


def _export(args: argparse.Namespace) -> Any:
    from .client import api

    dep = api.get(args.name, address=args.address)
    options = {"quantize": True} if args.quantize else {}
    options.update({k: v for k in ("image", "secret", "base_image") if (v := getattr(args, k))})
    result = dep.export(args.format, args.out, version=args.version, **options)
    return result if isinstance(result, str) else result.to_dict()


def _config(args: argparse.Namespace) -> Any:
    from .settings import describe

    rows = describe()
    if args.json:
        return [{"variable": v, "default": d, "help": h} for v, d, h in rows]
    return "\n".join(f"{v:<18} default {d or '(empty)'!s:<10} {h}" for v, d, h in rows)


def _run(args: argparse.Namespace) -> Any:
    from .pipelines.runner import run_command

    return run_command(args)


def _retrain(args: argparse.Namespace) -> Any:
    from .pipelines.retrain import retrain_command

    return retrain_command(args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jupyter-deploy", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--json", action="store_true", help="Print JSON.")
    p.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or embedded).")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("cluster", help="Start, stop or inspect the embedded Ray cluster.")
    c.add_argument("action", choices=["start", "stop", "status"])
    c.add_argument("--forget", action="store_true",
                   help="with stop: drop every deployment, key and log for good")  # fmt: skip
    c.set_defaults(func=_cluster)
    sub.add_parser("list", help="List deployments.").set_defaults(func=_list)
    for name, func, text in [
        ("status", _status, "Status and versions of a deployment."),
        ("rollback", _rollback, "Serve a deployment's previous version again."),
        ("delete", _delete, "Delete a deployment."),
    ]:
        s = sub.add_parser(name, help=text)
        s.add_argument("name")
        s.set_defaults(func=func)
    cli_versions.add_commands(sub)  # keys, traffic, split, shadow, promote, compare
    cli_stream.add_commands(sub)  # stream start|status|stop
    m = sub.add_parser("metrics", help="Traffic, latency and errors of a deployment.")
    m.add_argument("name")
    m.add_argument("--window", type=int, default=60, help="seconds to summarise (default 60)")
    m.add_argument("--prometheus", action="store_true", help="Prometheus text format")
    m.set_defaults(func=_metrics)
    d = sub.add_parser("drift", help="Input and prediction drift, accuracy from feedback.")
    d.add_argument("name")
    d.add_argument("--window", type=int, default=300, help="seconds compared (default 300)")
    d.set_defaults(func=_drift)
    lg = sub.add_parser("logs", help="The payload log (requests and responses).")
    lg.add_argument("name")
    lg.add_argument("--since", type=float, help="only the last SINCE seconds")
    lg.add_argument("--limit", type=int, default=20, help="last N records (default 20, 0 all)")
    lg.set_defaults(func=_logs)
    from .export.formats import FORMATS

    e = sub.add_parser("export", help="Write a deployment as ONNX, a Bento, a container, KubeRay.")
    e.add_argument("name")
    e.add_argument("out", help="; ".join(f"{k}: {f.help}" for k, f in FORMATS.items()))
    e.add_argument("--format", choices=list(FORMATS), default="onnx")
    e.add_argument("--version", type=int, help="version to export (default: the live one)")
    e.add_argument("--quantize", action="store_true", help="int8 dynamic quantisation (MLPs)")
    e.add_argument("--image", help="kuberay: the container image (default NAME:vVERSION)")
    e.add_argument("--secret", help="kuberay: the key hash Secret's name (default NAME-token)")
    e.add_argument("--base-image", help="docker: the FROM image (default: this Python's tag)")
    e.set_defaults(func=_export)
    b = sub.add_parser("batch", help="Score a CSV/Parquet file, folder or glob on the cluster.")
    b.add_argument("name")
    b.add_argument("input", help="a .parquet/.csv file, a folder or a quoted glob")
    b.add_argument("output", help="a .parquet or .csv file (failed rows: OUTPUT.errors.parquet)")
    b.add_argument("--keep", nargs="+", metavar="COL", help="input columns to copy to the output")
    b.add_argument("--version", type=int, help="version to score with (default: the live one)")
    b.add_argument("--method", default="predict", choices=["predict", "predict_proba"])
    b.add_argument("--overwrite", action="store_true", help="replace an existing output")
    b.set_defaults(func=_batch)
    sub.add_parser("config", help="Settings and their variables.").set_defaults(func=_config)
    r = sub.add_parser("run", help="Run a deployment notebook (exit 4: the gate failed; "
                       "5: the canary was rolled back).")  # fmt: skip
    r.add_argument("notebook", help="e.g. notebooks/deploy.ipynb")
    r.add_argument("output", nargs="?", help="the executed notebook (default: timestamped)")
    r.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("KEY", "VALUE"),
                   help="a parameter, e.g. -p name churn -p threshold 0.9")  # fmt: skip
    r.add_argument("--cwd", help="kernel working directory (default: here)")
    r.add_argument("--kernel", help="kernel name (default: the notebook's)")
    r.set_defaults(func=_run)
    rt = sub.add_parser("retrain", help="Retrain from logged labels if the trigger is met "
                        "(exit 0, 'not needed: ...' if not; 4: the gate failed).")  # fmt: skip
    rt.add_argument("name")
    rt.add_argument("--notebook", default="notebooks/retrain.ipynb")
    rt.add_argument("--trigger", default="always", help="always, drift, or e.g. accuracy<0.9")
    rt.add_argument("--window", default="24h", help="labelled traffic to use, e.g. 6h, 7d")
    rt.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("KEY", "VALUE"),
                    help="a notebook parameter, e.g. -p train train.py -p canary 0.2")  # fmt: skip
    rt.add_argument("--output", help="the executed notebook (default: timestamped)")
    rt.add_argument("--cwd", help="kernel working directory (default: here)")
    rt.set_defaults(func=_retrain)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        _print(args.func(args), args.json)
    except DeploymentNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except GateFailedError as exc:
        print(f"gate failed: {exc}", file=sys.stderr)
        return EXIT_GATE_FAILED
    except CanaryRolledBackError as exc:
        print(f"canary rolled back: {exc}", file=sys.stderr)
        return EXIT_CANARY
    except ParameterError as exc:
        print(f"bad parameter: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except JupyterDeployError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
