"""The layer check: imports point down only, runners/ and storage/ never import each other,
no module import cycles (imports inside functions count), and Streamlit only in the UI layer.

    python scripts/check_layers.py        # prints each problem; exit 1 if there is any

The layers, top to bottom (ARCHITECTURE.md):
    ui       app.py, ui.py, app_pages/
    core     core/
    adapters runners/, storage/, demo/
    common   common/
A module may import its own layer or any layer below. `runners.lib` is the package a feed
script imports inside the sandbox: it may import nothing of the project.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "ui", "app_pages", "core", "runners", "storage", "demo", "common")
RANK = {"ui": 3, "core": 2, "adapters": 1, "common": 0}
STREAMLIT_LAYER = "ui"
# Adapters that must not know each other.
SEPARATE = {("runners", "storage"), ("storage", "runners"), ("runners", "demo"), ("storage", "demo"),
            ("demo", "runners"), ("demo", "storage")}
SANDBOX_PACKAGE = "runners.lib"


def layer_of(module: str) -> str:
    top = module.split(".")[0]
    if top in ("app", "ui", "app_pages"):
        return "ui"
    if top == "core":
        return "core"
    if top in ("runners", "storage", "demo"):
        return "adapters"
    return "common"


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    modules = {}
    for top in PACKAGES:
        single = root / f"{top}.py"
        if single.exists():
            modules[top] = single
        for path in sorted((root / top).rglob("*.py")) if (root / top).is_dir() else []:
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _targets(node: ast.AST, package: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        return [module] + [f"{module}.{alias.name}" for alias in node.names]
    return []


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> tuple[list[Import], list[Import]]:
    """(imports of project modules, imports of streamlit) made anywhere in the module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    project, streamlit = [], []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        for target in _targets(node, package):
            if target.split(".")[0] == "streamlit" or target.startswith("streamlit_"):
                streamlit.append(Import(name, target, node.lineno))
                continue
            resolved = _resolve(target, modules)
            if resolved and resolved != name:
                project.append(Import(name, resolved, node.lineno))
    return project, streamlit


def _rule_broken(edge: Import) -> str | None:
    source_layer, target_layer = layer_of(edge.source), layer_of(edge.target)
    source_top, target_top = edge.source.split(".")[0], edge.target.split(".")[0]
    if edge.source.startswith(SANDBOX_PACKAGE) and not edge.target.startswith(SANDBOX_PACKAGE):
        return "the sandbox's lib package imports the project"
    if RANK[target_layer] > RANK[source_layer]:
        return f"upward import ({source_layer} -> {target_layer})"
    if (source_top, target_top) in SEPARATE:
        return f"import between adapters ({source_top} -> {target_top})"
    return None


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def problems(root: Path = ROOT) -> list[str]:
    modules = project_modules(root)
    found: list[str] = []
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        project, streamlit = imports_of(name, path, modules)
        rel = path.relative_to(root)
        for edge in project:
            rule = _rule_broken(edge)
            if rule:
                found.append(f"{rel}:{edge.line}: {edge.source} imports {edge.target}: {rule}")
            # A module's own packages are imported before it anyway (`from . import x`
            # inside a package is not a loop): only edges to other modules count.
            if not name.startswith(edge.target + "."):
                graph[name].add(edge.target)
        if streamlit and layer_of(name) != STREAMLIT_LAYER:
            for edge in streamlit:
                found.append(f"{rel}:{edge.line}: {name} imports {edge.target}: Streamlit outside the UI layer")
    for cycle in find_cycles(graph):
        found.append("import cycle: " + " <-> ".join(cycle))
    return found


def main() -> int:
    found = problems()
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} layer problem(s)", file=sys.stderr)
        return 1
    print("layers: imports point down, no cycles, Streamlit only in the UI layer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
