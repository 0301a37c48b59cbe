"""The package's layout rules, checked so they cannot drift (docs/architecture.md).

Imports inside functions and under TYPE_CHECKING count: they are cycles all the same
once the code runs.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "jupyter_deploy"

# Lower layers never import higher ones. Rooms by where their code runs:
LAYERS = {
    "": 0,  # errors, settings, spec, progress, _ray, _version: everyone's vocabulary
    "_bento": 0,  # ships inside every Bento: imports nothing of ours
    "build": 1,  # kernel: capture, environment, reference profile, packaging
    "monitoring": 1,  # head actors and the statistics they keep
    "explain": 1,  # where a model is loaded: per-column contributions of its answers
    "control": 2,  # connection, ingress, the durable store and its registry actor
    "replica": 3,  # the Serve replica and what it records
    "rollout": 4,  # driver: make Serve match the desired state, wait until it does
    "export": 5,  # kernel/CLI: the Bento as an ONNX graph (with parity report) or archive
    "batch": 5,  # driver + scoring tasks over a version's Bento
    "stream": 5,  # consumer actors: a broker's messages scored with a version's Bento
    "client": 6,  # the API and the deployment handle
    "pipelines": 7,  # gate, candidate, deployment-notebook runner
    "server": 7,  # the Jupyter server extension, its child and the kernel bridge
}
# Modules placed apart from their folder's layer.
MODULE_LAYERS = {
    "jupyter_deploy": 9,  # the package root lazily exposes the API and the magics
    "jupyter_deploy.cli": 8,
    "jupyter_deploy.cli_versions": 8,
    "jupyter_deploy.cli_stream": 8,
    "jupyter_deploy.notebook.monitor": 5,  # views a handle gives out: below client
    "jupyter_deploy.notebook.charts": 5,
    "jupyter_deploy.notebook.magics": 8,
}
PRIVATE_RAY = re.compile(
    r"ray\.serve\._private|\w\._version\s*=|serve\._run|__internal_head__|\"RAY_SERVE_|'RAY_SERVE_"
)


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        if "labextension" in path.parts:
            continue
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts)
        mods[name.removesuffix(".__init__")] = path
    return mods


def _imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                subs = [f"{base}.{a.name}" for a in node.names]
                # `from . import x` imports module x, not the package around it
                targets = [t for t in subs if t in mods] or [base]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                while target and target not in mods and "." in target:
                    target = target.rpartition(".")[0]
                if target in mods and target != mod:
                    graph[mod].add(target)
    return graph


def _layer(mod: str) -> int:
    if mod in MODULE_LAYERS:
        return MODULE_LAYERS[mod]
    parts = mod.split(".")
    room = parts[1] if len(parts) > 2 or (PACKAGE / parts[-1]).is_dir() else ""
    return LAYERS[room]


def test_no_import_cycle() -> None:
    graph = _imports(_modules())
    state: dict[str, int] = {}

    def visit(mod: str, path: list[str]) -> None:
        state[mod] = 1
        for dep in sorted(graph[mod]):
            assert state.get(dep) != 1, "import cycle: " + " -> ".join([*path, mod, dep])
            if dep not in state:
                visit(dep, [*path, mod])
        state[mod] = 2

    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [])


def test_no_import_from_a_layer_above() -> None:
    graph = _imports(_modules())
    upward = [
        f"{mod} ({_layer(mod)}) imports {dep} ({_layer(dep)})"
        for mod, deps in graph.items()
        for dep in deps
        if _layer(dep) > _layer(mod)
    ]
    assert not upward, "\n".join(upward)


def test_every_room_has_a_layer() -> None:
    rooms = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert rooms - {"labextension"} <= set(LAYERS) | {"notebook"}


def test_private_ray_apis_live_in_one_module() -> None:
    users = sorted(
        str(path.relative_to(PACKAGE))
        for path in _modules().values()
        if PRIVATE_RAY.search(path.read_text())
    )
    assert users == ["_ray.py"]


def test_the_bento_files_import_nothing_of_ours() -> None:
    for path in (PACKAGE / "_bento").glob("*.py"):
        assert not re.search(r"^\s*(from|import) (jupyter_deploy|\.)", path.read_text(), re.M), path


def test_modules_stay_small() -> None:
    long = {m: n for m, p in _modules().items() if (n := len(p.read_text().splitlines())) > 350}
    assert not long, long
