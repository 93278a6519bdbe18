"""The import graph of ``bot/`` and ``actions/``, read from the source with ``ast``: no import cycle between
``bot`` modules, and no action module importing another (``actions/base.py`` and ``actions/__init__.py``
hold what actions share).

An edge is an ``import`` or ``from … import`` statement anywhere in a module (a function's lazy import
counts): ``from a.b import c`` leads to the module ``a.b.c`` when there is one, else to ``a.b``. Importing
``a.b`` also runs ``a/__init__.py``, but that is no edge: a package may import its own modules."""

import ast
from pathlib import Path

from bot.core.settings import ROOT

ACTIONS_SHARED = {"actions", "actions.base"}


def module_name(path: Path) -> str:
    """``bot/web/chat.py`` → ``bot.web.chat``; ``bot/web/__init__.py`` → ``bot.web``."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(*packages: str) -> dict[str, Path]:
    """Every module of ``packages`` (top-level folders under ROOT) by name."""
    return {module_name(path): path for package in packages for path in sorted((ROOT / package).rglob("*.py"))}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that module ``name`` (at ``path``) imports."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {target for target in found if target in known and target != name}


def graph(*packages: str) -> dict[str, set[str]]:
    """Module → the modules it imports, within ``packages``."""
    found = modules(*packages)
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of ``edges``, one per strongly connected component of more than one module, each
    as a path ``[a, b, …, a]``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(path_through(set(component)))

    def path_through(component: set[str]) -> list[str]:
        start = min(component)
        seen, queue = {start: [start]}, [start]
        while queue:  # breadth-first, back to start
            node = queue.pop(0)
            for target in sorted(edges[node] & component):
                if target == start:
                    return seen[node] + [start]
                if target not in seen:
                    seen[target] = seen[node] + [target]
                    queue.append(target)
        raise AssertionError(f"no cycle through {start}")

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_bot_has_no_import_cycle():
    found = cycles(graph("bot"))
    assert not found, "import cycles in bot/:\n" + "\n".join(" → ".join(cycle) for cycle in found)


def test_no_action_module_imports_another():
    found = [
        f"{name} imports {target}"
        for name, targets in sorted(graph("actions").items())
        for target in sorted(targets - ACTIONS_SHARED)
        if name not in ACTIONS_SHARED
    ]
    assert not found, "\n".join(found)


def test_the_cycle_finder_finds_a_lazy_import_cycle(tmp_path):
    edges = {"bot.a": {"bot.b"}, "bot.b": {"bot.c"}, "bot.c": {"bot.a"}, "bot.d": {"bot.a"}}
    assert cycles(edges) == [["bot.a", "bot.b", "bot.c", "bot.a"]]
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from . import c\n")
    (package / "c.py").write_text("from pkg.b import f\nimport pkg\n")
    known = {"pkg", "pkg.b", "pkg.c"}
    assert imports("pkg.c", package / "c.py", known) == {"pkg.b", "pkg"}
    assert imports("pkg.b", package / "b.py", known) == {"pkg.c"}
    assert imports("pkg", package / "__init__.py", known) == {"pkg.b"}
