"""The layout is the architecture: packages import only downwards, and no module cycles.

ARCHITECTURE.md declares the layers below; this test holds the code to them. Every
``import`` counts, also those inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "custody"

# Lowest first. A unit may import units of its own layer or below, never above.
# Within one layer, units may import each other only where listed in SAME_LAYER.
LAYERS: list[tuple[str, ...]] = [
    ("errors",),
    ("clock", "progress", "findings", "encoding", "home", "i18n", "system"),
    ("root", "keys", "evidence"),
    ("ledger",),
    ("timestamps",),
    ("trust",),
    ("acquisition",),
    ("handling",),
    ("verify",),
    ("delivery",),
    ("cli",),
    ("__main__",),
]
SAME_LAYER = {
    ("root", "system"),
    # i18n is the language messages for people are in: any module may say one.
    ("system", "i18n"),
    ("clock", "i18n"),
    ("encoding", "i18n"),
    ("findings", "i18n"),
    ("progress", "i18n"),
    ("home", "i18n"),
}


def _unit(module: str) -> str:
    """'custody.ledger.store' -> 'ledger'; 'custody.errors' -> 'errors'; 'custody' -> ''."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path, package: str) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names if a.name.startswith("custody"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            if not base.startswith("custody"):
                continue
            for alias in node.names:
                # "from custody.ledger import merkle" depends on the module custody.ledger.merkle
                candidate = f"{base}.{alias.name}"
                names.add(candidate if candidate in _MODULES else base)
    return names


_MODULES = _modules()


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _graph() -> dict[str, set[str]]:
    return {
        module: {i for i in _imports(path, _package_of(module, path)) if i in _MODULES}
        for module, path in _MODULES.items()
    }


def test_every_unit_is_in_a_declared_layer() -> None:
    declared = {unit for layer in LAYERS for unit in layer}
    units = {_unit(m) for m in _MODULES} - {""}
    assert units <= declared, f"add these to LAYERS and ARCHITECTURE.md: {units - declared}"


def test_packages_import_only_downwards() -> None:
    rank = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}
    wrong = []
    for module, targets in _graph().items():
        here = _unit(module)
        for target in targets:
            there = _unit(target)
            if not here or not there or here == there:
                continue
            if rank[there] > rank[here] or (
                rank[there] == rank[here] and (here, there) not in SAME_LAYER
            ):
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the declared layers:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles_between_modules() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt == node:
                continue
            if state[nxt] == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif state[nxt] == 0:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if state[module] == 0:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_only_the_cli_imports_typer_or_rich() -> None:
    leaks = []
    for module, path in _MODULES.items():
        if _unit(module) == "cli":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            leaks += [f"{module}: {n}" for n in names if n.split(".")[0] in ("typer", "rich")]
    assert not leaks, leaks


def test_every_module_says_what_it_owns() -> None:
    silent = [m for m, p in _MODULES.items() if not ast.get_docstring(ast.parse(p.read_text()))]
    assert not silent, f"modules without a docstring: {silent}"
