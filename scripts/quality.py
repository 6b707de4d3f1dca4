"""Lint and type checks with a ratchet (issue 7), run by `make test` before the tests.

Four counts over src/vigil, each recorded in scripts/quality-ratchet.json:

- ruff findings (configured in pyproject.toml);
- mypy findings (the pydantic plugin, check_untyped_defs, warn_unused_ignores);
- ``# type: ignore`` comments without a reason after them: an ignore is for a library whose stubs
  are wrong, and says so (``# type: ignore[arg-type]  # typeshed wants ...``);
- functions returning a bare ``dict`` (JSON shapes that cross layers get a TypedDict or a
  dataclass); ``to_dict`` methods, the JSON edge of a typed object, are not counted.

A count may not rise above its record. When one falls, the script says so and lowers the record:
the ratchet only goes down. Exit 1 when a count rose, with the new findings shown.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATCHET = ROOT / "scripts" / "quality-ratchet.json"


def run(cmd: list[str]) -> tuple[int, str]:
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def ruff_count() -> tuple[int, str]:
    _, out = run([sys.executable, "-m", "ruff", "check", "src", "--output-format", "concise"])
    lines = [x for x in out.splitlines() if re.match(r"^src/.+:\d+:\d+: ", x)]
    return len(lines), "\n".join(lines)


def mypy_count() -> tuple[int, str]:
    _, out = run([sys.executable, "-m", "mypy", "--no-error-summary", "--hide-error-context"])
    lines = [x for x in out.splitlines() if re.match(r"^src/.+:\d+: error: ", x)]
    return len(lines), "\n".join(lines)


IGNORE = re.compile(r"#\s*type:\s*ignore(\[[^\]]*\])?(?P<rest>.*)$")


def unexplained_ignores() -> tuple[int, str]:
    """``# type: ignore`` comments not followed by a ``# reason`` on their line."""
    found = []
    for path in sorted((ROOT / "src" / "vigil").rglob("*.py")):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = IGNORE.search(line)
            if m and not re.match(r"\s*#\s*\S", m.group("rest")):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    return len(found), "\n".join(found)


def _bare_dict(ann: ast.expr) -> bool:
    """``dict`` without key and value types anywhere in an annotation (``dict``, ``list[dict]``, ``dict | None``)."""
    subscripted = {id(n.value) for n in ast.walk(ann) if isinstance(n, ast.Subscript)}
    return any(isinstance(n, ast.Name) and n.id == "dict" and id(n) not in subscripted for n in ast.walk(ann))


def bare_dict_returns() -> tuple[int, str]:
    """Functions that return a bare ``dict`` (a JSON shape nobody named), ``to_dict`` and
    ``as_dict`` (the JSON edge of a typed object) aside: TypedDicts or dataclasses instead."""
    found = []
    for path in sorted((ROOT / "src" / "vigil").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
                if node.name not in ("to_dict", "as_dict") and _bare_dict(node.returns):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.name} -> {ast.unparse(node.returns)}")
    return len(found), "\n".join(found)


def main() -> int:
    record = json.loads(RATCHET.read_text())
    failed = False
    counters = (
        ("ruff", ruff_count),
        ("mypy", mypy_count),
        ("unexplained-type-ignores", unexplained_ignores),
        ("bare-dict-returns", bare_dict_returns),
    )
    for name, counter in counters:
        n, detail = counter()
        limit = record.get(name, n)
        if n > limit:
            print(f"{name}: {n} findings, more than the ratchet's {limit}:\n{detail}")
            failed = True
        else:
            if n < limit:
                print(f"{name}: {n} findings, down from {limit}: the ratchet is lowered")
            else:
                print(f"{name}: {n} findings (ratchet {limit})")
            record[name] = n
    RATCHET.write_text(json.dumps(record, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
