"""Imports run one way (issue 7), checked on the source: shared kernel -> store -> capabilities ->
cli and web, and no cycle between vigil's subpackages at module load.

Only imports that run when a module loads count (module level, including ``if TYPE_CHECKING`` is
excluded); an import inside a function is how a module loads something heavy or optional late.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "vigil"

KERNEL = {
    "vigil", "vigil.errors", "vigil.exitcodes", "vigil.clock", "vigil.units", "vigil.model", "vigil.selector",
    "vigil.yamlio", "vigil.secrets", "vigil.secretscan", "vigil.auth", "vigil.netguard", "vigil.pgconn",
    "vigil.fileutil", "vigil.histogram", "vigil.text", "vigil.aio",
}
ASSEMBLY = {"vigil.spec", "vigil.tables", "vigil.api", "vigil.docs", "vigil.client"}
EDGES = ("vigil.cli", "vigil.web", "vigil.__main__")


def module_name(p: Path) -> str:
    rel = p.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def load_time_imports(p: Path) -> set[str]:
    """Modules imported when ``p`` loads: top-level import statements, not those under
    ``if TYPE_CHECKING:`` or inside functions."""
    tree = ast.parse(p.read_text(), str(p))
    out: set[str] = set()
    me = module_name(p)
    pkg = me if p.name == "__init__.py" else me.rpartition(".")[0]

    def visit(nodes: list[ast.stmt]) -> None:
        for n in nodes:
            if isinstance(n, ast.Import):
                out.update(a.name for a in n.names)
            elif isinstance(n, ast.ImportFrom):
                base = n.module or ""
                if n.level:
                    anchor = pkg.split(".")
                    anchor = anchor[: len(anchor) - (n.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                out.add(base)
                for a in n.names:  # `from vigil.x import y` may import the submodule y
                    out.add(f"{base}.{a.name}")
            elif isinstance(n, ast.If):
                test = ast.unparse(n.test)
                if "TYPE_CHECKING" not in test:
                    visit(n.body)
                    visit(n.orelse)
            elif isinstance(n, ast.Try):
                visit(n.body)
                for h in n.handlers:
                    visit(h.body)
                visit(n.orelse)
                visit(n.finalbody)

    visit(tree.body)
    return {m for m in out if m == "vigil" or m.startswith("vigil.")}


def graph() -> dict[str, set[str]]:
    mods = {module_name(p): p for p in SRC.rglob("*.py") if "store/revisions" not in p.as_posix()}
    g: dict[str, set[str]] = {}
    for name, p in mods.items():
        g[name] = {m for m in load_time_imports(p) if m in mods and m != name}
    return g


def layer(m: str) -> int:
    if m in KERNEL:
        return 0
    if m == "vigil.store" or m.startswith("vigil.store."):
        return 1
    if m.startswith(EDGES):
        return 3
    if m in ASSEMBLY:
        return 2  # composes the capabilities
    return 2


def subpackage(m: str) -> str:
    parts = m.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else m


def test_imports_run_one_way():
    bad = []
    for m, deps in sorted(graph().items()):
        for d in sorted(deps):
            if layer(d) > layer(m):
                bad.append(f"{m} -> {d}")
    assert not bad, "imports against the layers (kernel -> store -> capabilities -> cli/web):\n  " + "\n  ".join(bad)


def test_capabilities_do_not_import_the_edges_or_the_root_spec_at_load():
    bad = []
    for m, deps in sorted(graph().items()):
        if layer(m) != 2 or m in ASSEMBLY:
            continue
        for d in deps:
            if d.startswith(EDGES):
                bad.append(f"{m} -> {d}")
    assert not bad, "\n  ".join(bad)


def test_no_cycle_between_subpackages_at_load():
    g = graph()
    sub: dict[str, set[str]] = {}
    for m, deps in g.items():
        a = subpackage(m)
        for d in deps:
            b = subpackage(d)
            if a != b:
                sub.setdefault(a, set()).add(b)
    # find a cycle
    seen: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def dfs(n: str) -> None:
        seen[n] = 1
        stack.append(n)
        for x in sorted(sub.get(n, ())):
            if seen.get(x) == 1:
                cycles.append(stack[stack.index(x):] + [x])
            elif x not in seen:
                dfs(x)
        stack.pop()
        seen[n] = 2

    for n in sorted(sub):
        if n not in seen:
            dfs(n)
    assert not cycles, "import cycles between subpackages at load:\n  " + "\n  ".join(" -> ".join(c) for c in cycles)
