"""A trace's spans as a tree with timings, and the service-path check. Pure: plain data in and out.

The tree is given flat, in waterfall order: depth first, children under their parent ordered by
start time, each span with its ``depth``, its offset from the trace's start and its duration, and
its children's ids. A span whose parent is not among the trace's spans is a root with
``parent_missing: true`` (the parent never arrived, or was dropped); spans caught in a parent cycle
are roots too, marked ``cycle: true``. A trace is **connected** when it has exactly one root and no
span misses its parent.

The **service path** (``vigil trace check --service-path web,api,fn,db``): along one chain of
spans from the root down, the hops -- a span's service, and for a database client span (a CLIENT
span with ``db.system`` or ``db.system.name``) also ``db``, the database system and its
``peer.service`` -- must contain the path's names in order, each the next hop after the one before
(consecutive spans of one service are one hop).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Sequence

KIND_NAMES = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
STATUS_NAMES = {0: "unset", 1: "ok", 2: "error"}
CLIENT = 3
DB_ATTRS = ("db.system", "db.system.name")


@dataclass(frozen=True)
class SpanRecord:
    trace_id: str
    span_id: str
    parent_span_id: str
    service: str
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status: int
    attrs: str  # JSON

    def doc(self) -> dict:
        try:
            d = json.loads(self.attrs) if self.attrs else {}
        except ValueError:  # pragma: no cover - written by vigil
            d = {}
        return d if isinstance(d, dict) else {}


def ns_text(ns: int) -> str:
    """RFC 3339 UTC with nanoseconds."""
    s, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def _ms(ns: int) -> float:
    return round(ns / 1_000_000, 6)


@dataclass
class Tree:
    trace_id: str
    spans: list[dict] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)
    missing_parents: list[str] = field(default_factory=list)
    """Parent span ids referred to by spans of the trace but not among them."""
    cycles: list[str] = field(default_factory=list)
    start_ns: int = 0
    end_ns: int = 0
    truncated: bool = False

    @property
    def connected(self) -> bool:
        return len(self.roots) == 1 and not self.missing_parents and not self.cycles

    def to_dict(self) -> dict:
        services = sorted({s["service"] for s in self.spans})
        return {
            "trace_id": self.trace_id,
            "start": ns_text(self.start_ns) if self.spans else None,
            "duration_ms": _ms(self.end_ns - self.start_ns) if self.spans else 0,
            "span_count": len(self.spans),
            "services": services,
            "connected": self.connected,
            "roots": self.roots,
            "missing_parents": self.missing_parents,
            "truncated": self.truncated,
            "spans": self.spans,
        }


def build_tree(trace_id: str, records: Sequence[SpanRecord], *, truncated: bool = False) -> Tree:
    """The trace's spans as a tree (see the module doc). Iterative: any depth."""
    t = Tree(trace_id, truncated=truncated)
    if not records:
        return t
    by_id = {r.span_id: r for r in records}
    children: dict[str, list[SpanRecord]] = {}
    roots: list[SpanRecord] = []
    missing: set[str] = set()
    for r in records:
        p = r.parent_span_id
        if not p:
            roots.append(r)
        elif p not in by_id:
            roots.append(r)
            missing.add(p)
        else:
            children.setdefault(p, []).append(r)
    for lst in children.values():
        lst.sort(key=lambda r: (r.start_ns, r.span_id))
    roots.sort(key=lambda r: (r.start_ns, r.span_id))
    t.start_ns = min(r.start_ns for r in records)
    t.end_ns = max(r.end_ns for r in records)
    seen: set[str] = set()
    out: list[dict] = []

    def walk(root: SpanRecord, *, cycle: bool = False) -> None:
        stack: list[tuple[SpanRecord, int]] = [(root, 0)]
        while stack:
            r, depth = stack.pop()
            if r.span_id in seen:
                continue
            seen.add(r.span_id)
            kids = children.get(r.span_id, [])
            node = _node(r, depth, t.start_ns, [k.span_id for k in kids])
            if depth == 0:
                if r.parent_span_id and r.parent_span_id in missing:
                    node["parent_missing"] = True
                if cycle:
                    node["cycle"] = True
            out.append(node)
            for k in reversed(kids):
                stack.append((k, depth + 1))

    for r in roots:
        walk(r)
        t.roots.append(r.span_id)
    # spans not reached from a root sit in a parent cycle: each cycle is shown from its earliest span
    for r in sorted(records, key=lambda r: (r.start_ns, r.span_id)):
        if r.span_id not in seen:
            walk(r, cycle=True)
            t.roots.append(r.span_id)
            t.cycles.append(r.span_id)
    t.spans = out
    t.missing_parents = sorted(missing)
    return t


def _node(r: SpanRecord, depth: int, t0: int, kids: list[str]) -> dict:
    d = r.doc()
    node: dict[str, Any] = {
        "span_id": r.span_id,
        "parent_span_id": r.parent_span_id or None,
        "depth": depth,
        "service": r.service,
        "name": r.name,
        "kind": KIND_NAMES.get(r.kind, str(r.kind)),
        "start": ns_text(r.start_ns),
        "offset_ms": _ms(r.start_ns - t0),
        "duration_ms": _ms(r.end_ns - r.start_ns),
        "status": STATUS_NAMES.get(r.status, str(r.status)),
        "attributes": d.get("attributes", {}),
        "children": kids,
    }
    if d.get("status_message"):
        node["status_message"] = d["status_message"]
    return node


# -- the service path ------------------------------------------------------------------------------


def hop_names(node: dict) -> frozenset[str]:
    """The names a span answers to in a service path (see the module doc)."""
    names = {node["service"]}
    attrs = node.get("attributes") or {}
    if node.get("kind") == "client":
        db = next((attrs[a] for a in DB_ATTRS if a in attrs), None)
        if db is not None:
            names.add("db")
            names.add(str(db))
            if "peer.service" in attrs:
                names.add(str(attrs["peer.service"]))
    return frozenset(names)


@dataclass
class PathResult:
    trace_id: str
    ok: bool
    matched: list[str]
    """The longest prefix of the path found along one chain."""
    missing: str | None
    """The first name of the path not found after ``matched``."""
    connected: bool
    missing_parents: list[str]
    chain: list[dict]
    """The spans that matched the path's names (service, name, span id)."""

    def to_dict(self) -> dict:
        return {
            "trace_id": self.trace_id, "ok": self.ok, "matched": self.matched, "missing": self.missing,
            "connected": self.connected, "missing_parents": self.missing_parents, "chain": self.chain,
        }

    def why(self) -> str:
        parts = []
        if not self.connected:
            if self.missing_parents:
                parts.append(f"parent span(s) {', '.join(self.missing_parents[:5])} missing (the trace is broken)")
            else:
                parts.append("more than one root span (the trace is broken)")
        if self.missing is not None:
            after = f" after {' -> '.join(self.matched)}" if self.matched else ""
            parts.append(f"no {self.missing!r} hop{after}")
        return "; ".join(parts) or "ok"


def check_path(tree: Tree, path: Sequence[str]) -> PathResult:
    """Does the trace carry the service path along one chain, and is it connected?"""
    nodes = {n["span_id"]: n for n in tree.spans}
    best: list[dict] = []
    # depth-first over chains, carrying the hops matched so far; a hop is matched when a span's
    # names hold the next path name and every span since the last match is of the last matched
    # span's service (or of the next one)
    stack: list[tuple[str, tuple[dict, ...]]] = [(r, ()) for r in tree.roots]
    found: list[dict] | None = None
    while stack and found is None:
        sid, matched = stack.pop()
        n = nodes.get(sid)
        if n is None:
            continue
        names = hop_names(n)
        k = len(matched)
        if k < len(path) and path[k] in names:
            matched = matched + (n,)
        elif k > 0 and k < len(path) and n["service"] != matched[-1]["service"]:
            matched = ()  # a service outside the path breaks the run: start over here
            if path[0] in names:
                matched = (n,)
        elif k == 0 and path and path[0] in names:
            matched = (n,)
        if len(matched) > len(best):
            best = list(matched)
        if len(matched) == len(path):
            found = list(matched)
            break
        for c in n.get("children", []):
            stack.append((c, matched))
    chain = found if found is not None else best
    matched_names = list(path[: len(chain)])
    ok = found is not None and tree.connected
    return PathResult(
        trace_id=tree.trace_id,
        ok=ok,
        matched=matched_names,
        missing=None if found is not None else path[len(chain)],
        connected=tree.connected,
        missing_parents=tree.missing_parents,
        chain=[{"service": c["service"], "name": c["name"], "span_id": c["span_id"], "kind": c["kind"]} for c in chain],
    )
