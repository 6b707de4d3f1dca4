"""Warnings about SLI selectors, for ``vigil check``: selectors that can never match, values that
look like regular expressions behind ``=`` / ``!=``, selectors that match nothing in the store, and
a ``good`` that matches every series of ``total`` (the SLI can never drop).

Pure: functions over the spec's plain tree and a list of series (anything with ``metric``,
``labels`` and ``kind``). Each warning is ``(spec path, message)``; the loader adds file and line.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Iterable, Protocol, Sequence

from vigil.selector import Matcher, Selector, SelectorError, parse_selector, quote

Loc = tuple
Warning_ = tuple[Loc, str]

# (SLI kind, key, series kind)
_SLI_SELECTORS = (
    ("ratio", "good", "counter"),
    ("ratio", "total", "counter"),
    ("ratio", "exclude", "counter"),
    ("latency", "metric", "observation"),
    ("freshness", "metric", "gauge"),
)

KIND_WORDS = {"counter": "counters", "observation": "observations (histograms)", "gauge": "gauges"}
_REGEX_CHARS = set("*+?[]()|^$\\")


class SeriesLike(Protocol):
    metric: str
    labels: dict[str, str]
    kind: str


@dataclass(frozen=True)
class SelectorRef:
    """One selector of an SLI, where it is in the spec and what kind of series it must match."""

    loc: Loc
    slo: int
    sli: str  # ratio | latency | freshness
    role: str  # good | total | exclude | metric
    kind: str  # counter | observation | gauge
    selector: Selector


def selector_refs(plain: Any) -> list[SelectorRef]:
    """Every SLI selector of the spec's plain tree that parses; the others are errors already."""
    out: list[SelectorRef] = []
    slos = plain.get("slos") if isinstance(plain, dict) else None
    for i, slo in enumerate(slos if isinstance(slos, list) else []):
        sli = slo.get("sli") if isinstance(slo, dict) else None
        if not isinstance(sli, dict):
            continue
        for kind, key, series_kind in _SLI_SELECTORS:
            body = sli.get(kind)
            text = body.get(key) if isinstance(body, dict) else None
            if not isinstance(text, str):
                continue
            try:
                sel = parse_selector(text)
            except SelectorError:
                continue
            out.append(SelectorRef(("slos", i, "sli", kind, key), i, kind, key, series_kind, sel))
    return out


# -- static ---------------------------------------------------------------------------------------


def contradiction(sel: Selector) -> str | None:
    """Why no series can ever match ``sel`` (None: some label values could)."""
    by_label: dict[str, list[Matcher]] = {}
    for m in sel.matchers:
        by_label.setdefault(m.name, []).append(m)
    for name, ms in by_label.items():
        if len(ms) < 2:
            continue
        candidates = _finite_values(ms)
        if candidates is not None:
            if not any(all(m.matches({name: v}) for m in ms) for v in candidates):
                return f"{' and '.join(str(m) for m in ms)} can never all hold: the selector matches no series"
            continue
        for a in ms:
            for b in ms:
                if a.op == "=~" and b.op == "!~" and a.value == b.value:
                    return f"{a} and {b} can never both hold: the selector matches no series"
    return None


def _finite_values(ms: Sequence[Matcher]) -> set[str] | None:
    """The only values the matchers allow, when one of them pins a finite set: an ``=``, or an
    ``=~`` that is a plain alternation of literals (``api|web``)."""
    for m in ms:
        if m.op == "=":
            return {m.value}
    for m in ms:
        if m.op == "=~" and not (_REGEX_CHARS - {"|"}) & set(m.value) and "." not in m.value:
            return set(m.value.split("|"))
    return None


def looks_like_regex(value: str) -> bool:
    """A literal ``=`` / ``!=`` value that reads like a regular expression (``5..``, ``5.*``, ``a|b``)."""
    return bool(_REGEX_CHARS & set(value)) or ".." in value or ".*" in value or ".+" in value


def static_warnings(refs: Iterable[SelectorRef]) -> list[Warning_]:
    out: list[Warning_] = []
    refs = list(refs)
    for r in refs:
        why = contradiction(r.selector)
        if why:
            out.append((r.loc, f"{r.selector}: {why}"))
        for m in r.selector.matchers:
            if m.op in ("=", "!=") and looks_like_regex(m.value):
                regex_op = "=~" if m.op == "=" else "!~"
                out.append(
                    (
                        r.loc,
                        f"{m} compares the literal text {quote(m.value)}; for a regular expression write "
                        f"{m.name}{regex_op}{quote(m.value)}",
                    )
                )
    # good and total of one ratio that can never match the same series: the SLI is always 0
    for good, total in _ratio_pairs(refs):
        if good.selector.metric == total.selector.metric and not contradiction(good.selector) and not contradiction(total.selector):
            both = Selector(total.selector.metric, total.selector.matchers + good.selector.matchers)
            why = contradiction(both)
            if why:
                out.append((good.loc, f"good {good.selector} and total {total.selector} never match the same series: the SLI is always 0"))
    return out


def _ratio_pairs(refs: Sequence[SelectorRef]) -> list[tuple[SelectorRef, SelectorRef]]:
    by_slo: dict[int, dict[str, SelectorRef]] = {}
    for r in refs:
        if r.sli == "ratio":
            by_slo.setdefault(r.slo, {})[r.role] = r
    return [(d["good"], d["total"]) for d in by_slo.values() if "good" in d and "total" in d]


# -- against the store ----------------------------------------------------------------------------


def store_warnings(refs: Iterable[SelectorRef], series: Sequence[SeriesLike]) -> list[Warning_]:
    """Selectors that match nothing in the store (with did-you-mean over the store's metric and
    label names and values), and ratios whose ``good`` matches every series of ``total``."""
    refs = list(refs)
    by_metric: dict[str, list[SeriesLike]] = {}
    for s in series:
        by_metric.setdefault(s.metric, []).append(s)
    out: list[Warning_] = []
    for r in refs:
        if contradiction(r.selector):
            continue  # said already
        msg = _no_match(r, by_metric)
        if msg:
            out.append((r.loc, msg))
    for good, total in _ratio_pairs(refs):
        excl = next((x for x in refs if x.slo == good.slo and x.role == "exclude"), None)
        tot = [s for s in by_metric.get(total.selector.metric, ()) if s.kind == "counter" and total.selector.matches(s.labels)]
        if excl is not None:
            tot = [s for s in tot if not (s.metric == excl.selector.metric and excl.selector.matches(s.labels))]
        if good.selector.metric == total.selector.metric:  # good must be a subset of total
            extra = [
                s for s in by_metric.get(good.selector.metric, ())
                if s.kind == "counter" and good.selector.matches(s.labels) and not total.selector.matches(s.labels)
            ]
            if extra:
                first = "{" + ",".join(f'{k}="{v}"' for k, v in sorted(extra[0].labels.items())) + "}"
                out.append(
                    (
                        good.loc,
                        f"good {good.selector} matches {len(extra)} series that total {total.selector} does not, like"
                        f" {good.selector.metric}{first}: good must be a subset of total, or the SLI reads better than the"
                        " data (the gate freezes such an SLO once its good events exceed its valid ones)",
                    )
                )
        if not tot or good.selector.metric != total.selector.metric:
            continue
        if all(good.selector.matches(s.labels) for s in tot):
            hint = [str(m) for m in good.selector.matchers if m.op == "!=" and looks_like_regex(m.value)]
            out.append(
                (
                    good.loc,
                    f"good {good.selector} matches every one of the {len(tot)} series of total {total.selector} in the store:"
                    " with the series seen so far the SLI can never drop below 100%"
                    + (
                        f" ({hint[0]} compares literally; did you mean {hint[0].replace('!=', '!~', 1)}?)"
                        if hint
                        else "; fine while no failure has been recorded yet, otherwise check that good leaves the failures out"
                    ),
                )
            )
    return out


def _no_match(r: SelectorRef, by_metric: dict[str, list[SeriesLike]]) -> str | None:
    sel = r.selector
    of_metric = by_metric.get(sel.metric, [])
    if not of_metric:
        close = difflib.get_close_matches(sel.metric, list(by_metric), n=3)
        return (
            f"{sel} matches nothing in the store: no series of metric {sel.metric!r}"
            + (f"; did you mean {_or(close)}?" if close else f" ({len(by_metric)} metrics in the store)")
        )
    same = [s for s in of_metric if s.kind == r.kind]
    if not same:
        kinds = sorted({s.kind for s in of_metric})
        return (
            f"{sel} matches nothing usable: metric {sel.metric!r} is a {' and '.join(kinds)} in the store; "
            f"a {r.sli} SLI reads {KIND_WORDS[r.kind]}"
        )
    if any(sel.matches(s.labels) for s in same):
        return None
    names = sorted({k for s in same for k in s.labels})
    for m in sel.matchers:
        if m.name not in names and not m.matches({}):
            close = difflib.get_close_matches(m.name, names, n=1)
            return (
                f"{sel} matches none of the {len(same)} series of {sel.metric}: no series has a label {m.name!r}"
                + (f"; did you mean {close[0]!r}?" if close else f" (labels: {_clip(', '.join(names) or 'none')})")
            )
    for m in sel.matchers:
        if not any(m.matches(s.labels) for s in same):
            values = sorted({s.labels.get(m.name, "") for s in same} - {""})
            close = difflib.get_close_matches(m.value, values, n=1) if m.op == "=" else []
            return (
                f"{sel} matches none of the {len(same)} series of {sel.metric}: no series has {m}"
                + (f"; did you mean {m.name}={quote(close[0])}?" if close else f" ({m.name} values: {_clip(', '.join(values) or 'none')})")
            )
    return f"{sel} matches none of the {len(same)} series of {sel.metric}: no series meets all of its matchers at once"


def _or(xs: list[str]) -> str:
    q = [repr(x) for x in xs]
    return q[0] if len(q) == 1 else ", ".join(q[:-1]) + " or " + q[-1]


def _clip(s: str, n: int = 120) -> str:
    return s if len(s) <= n else s[:n] + "..."
