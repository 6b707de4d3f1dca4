"""Text out: OpenSLO documents as a YAML stream or JSON, and a vigil spec as ``vigil.yaml`` text.

Numbers are written exactly (a Decimal as ``0.999``, never ``0.9990000000000001``); strings with
characters YAML would read back differently are double-quoted.
"""

from __future__ import annotations

import io
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Iterable

from vigil.selector import Selector
from vigil.units import format_duration

if TYPE_CHECKING:
    from vigil.spec import Spec


def _yaml_out() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt", pure=True)
    yaml.width = 1 << 16
    yaml.indent(mapping=2, sequence=4, offset=2)

    def decimal(representer: Any, d: Decimal) -> Any:
        if d == d.to_integral_value():
            return representer.represent_int(int(d))
        return representer.represent_scalar("tag:yaml.org,2002:float", format(d.normalize(), "f"))

    def string(representer: Any, s: str) -> Any:
        # ruamel writes NEL, LS, PS and other non-printables unescaped in plain or single-quoted
        # scalars and reads some of them back as line breaks; double quotes escape them exactly
        if any(not c.isprintable() and c not in "\n" for c in s):
            return representer.represent_scalar("tag:yaml.org,2002:str", s, style='"')
        return representer.represent_str(s)

    yaml.representer.add_representer(Decimal, decimal)
    yaml.representer.add_representer(str, string)
    return yaml


def _ruamel(obj: Any, flow: Iterable[str] = (), key: str | None = None) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    flow = tuple(flow)
    if isinstance(obj, dict):
        m = CommentedMap()
        for k, v in obj.items():
            m[k] = _ruamel(v, flow, k)
        if key in flow:
            m.fa.set_flow_style()
        return m
    if isinstance(obj, list):
        return CommentedSeq(_ruamel(v, flow, key) for v in obj)
    return obj


def dump_documents(documents: list[dict]) -> str:
    """OpenSLO documents as a YAML stream, each starting with ``---``."""
    if not documents:
        return ""
    yaml = _yaml_out()
    buf = io.StringIO()
    yaml.explicit_start = True
    yaml.dump_all([_ruamel(d) for d in documents], buf)
    return buf.getvalue()


def to_json(obj: Any) -> Any:
    """Plain data with Decimals as JSON numbers (integers when whole), selectors as strings."""
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if isinstance(obj, Decimal):
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    if isinstance(obj, Selector):
        return str(obj)
    return obj


def spec_to_document(spec: Spec) -> dict:
    """A spec as the plain data of a ``vigil.yaml`` (services and SLOs; policy and telemetry when set)."""
    services: dict[str, Any] = {}
    for name, svc in spec.services.items():
        services[name] = {k: v for k, v in (("description", svc.description), ("owner", svc.owner), ("tier", svc.tier)) if v is not None}
    slos = []
    for s in spec.slos:
        d: dict[str, Any] = {"name": s.name, "service": s.service, "objective": _objective_out(s.objective)}
        if s.window.rolling is not None:
            d["window"] = {"rolling": format_duration(s.window.rolling)}
        else:
            d["window"] = {"calendar": s.window.calendar, "timezone": s.window.tz}
        if s.description is not None:
            d["description"] = s.description
        if s.sli.ratio is not None:
            r = s.sli.ratio
            body: dict[str, Any] = {"good": str(r.good), "total": str(r.total)}
            if r.exclude is not None:
                body["exclude"] = str(r.exclude)
            d["sli"] = {"ratio": body}
        elif s.sli.latency is not None:
            d["sli"] = {"latency": {"metric": str(s.sli.latency.metric), "threshold": format_duration(s.sli.latency.threshold)}}
        else:
            f = s.sli.freshness
            assert f is not None
            d["sli"] = {
                "freshness": {
                    "metric": str(f.metric),
                    "threshold": format_duration(f.threshold),
                    "slice": format_duration(f.slice),
                    "missing": f.missing,
                }
            }
        slos.append(d)
    out: dict[str, Any] = {"version": 1, "services": services, "slos": slos}
    if spec.policy.freeze or spec.policy.overrides.labels:
        out["policy"] = spec.policy.model_dump(mode="json", exclude_none=True)
    return out


def _objective_out(frac: Decimal) -> Decimal | str:
    """Percent as a YAML number when that reads back exactly and above 1 (a bare number at or under
    1 is a fraction), else a ``"0.5%"`` string."""
    pct = (frac * 100).normalize()
    if pct > 1 and Decimal(repr(float(pct))) == pct:
        return pct
    return f"{pct:f}%"


def dump_spec(spec: Spec, *, source: str | None = None) -> str:
    """A spec as ``vigil.yaml`` text that :func:`vigil.spec.parse_spec` reads back to the same SLOs."""
    yaml = _yaml_out()
    buf = io.StringIO()
    if source is not None:
        buf.write(f"# imported from {_one_line(source)} by `vigil openslo import`; check with `vigil check`\n")
    yaml.dump(_ruamel(spec_to_document(spec), flow=("window", "latency", "freshness", "when")), buf)
    return buf.getvalue()


def _one_line(s: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in s)[:300]
