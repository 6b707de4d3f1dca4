"""``vigil export alertmanager``: the ``alerting:`` section (receivers, the route tree, inhibit
rules) as an Alertmanager configuration that ``amtool check-config`` accepts.

Secrets never appear in the output: Alertmanager reads them from files (``routing_key_file``,
``auth_password_file``, ``api_url_file``, ``url_file``). A secret the spec takes from an environment
variable is pointed at ``/etc/alertmanager/secrets/<variable>``, with a note saying to write it
there. vigil's own delivery (the outbox, fallbacks, the dead man's switch) has no Alertmanager
equivalent beyond what is noted.

The section is read by attribute, so this module works with any version of the section's model:
a receiver kind or key it does not know is noted, never guessed.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Iterable, Sequence

from vigil.alerting.export import Exported
from vigil.units import format_duration

SECRETS_DIR = "/etc/alertmanager/secrets"


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for n in names:
        if obj is None:
            return default
        if isinstance(obj, dict):
            if n in obj and obj[n] is not None:
                return obj[n]
        else:
            v = getattr(obj, n, None)
            if v is not None:
                return v
    return default


def _items(coll: Any) -> list[tuple[str, Any]]:
    """(name, value) pairs of a mapping, or of a list of objects with a ``name``."""
    if coll is None:
        return []
    if isinstance(coll, dict):
        return list(coll.items())
    return [(str(_get(x, "name")), x) for x in coll]


def _dur(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, (int, float, Decimal)):
        return format_duration(Decimal(str(v)))
    return str(v)


def _secret(obj: Any, base: str, notes: list[str], where: str) -> tuple[str, str] | None:
    """(``<key>_file``, path) for a secret given as ``<base>_file`` or ``<base>_env``."""
    path = _get(obj, f"{base}_file")
    if path is not None:
        return f"{base}_file", str(path)
    env = _get(obj, f"{base}_env")
    if env is not None:
        p = f"{SECRETS_DIR}/{env}"
        notes.append(f"{where}: {base} comes from ${env} in vigil; Alertmanager reads it from {p}: write the value there")
        return f"{base}_file", p
    return None


def _matchers(obj: Any) -> list[str]:
    """Alertmanager matchers (``name="value"``, ``name=~"re"``) from a ``matchers`` list of strings,
    or ``match`` / ``match_re`` mappings."""
    out: list[str] = []
    ms = _get(obj, "matchers")
    if isinstance(ms, dict):
        out += [f'{k}="{_esc(v)}"' for k, v in ms.items()]
    elif ms:
        out += [str(m) for m in ms]
    for k, v in (_get(obj, "match") or {}).items():
        out.append(f'{k}="{_esc(v)}"')
    for k, v in (_get(obj, "match_re") or {}).items():
        out.append(f'{k}=~"{_esc(v)}"')
    return out


def _esc(v: Any) -> str:
    return str(v).replace("\\", "\\\\").replace('"', '\\"')


def _route(r: Any, notes: list[str], top: bool = False) -> dict:
    out: dict[str, Any] = {}
    rec = _get(r, "receiver")
    if rec is not None:
        out["receiver"] = str(rec)
    ms = _matchers(r)
    if ms and not top:
        out["matchers"] = ms
    gb = _get(r, "group_by")
    if gb is not None:
        out["group_by"] = list(gb)
    for k in ("group_wait", "group_interval", "repeat_interval"):
        d = _dur(_get(r, k))
        if d is not None:
            out[k] = d
    if _get(r, "continue_", "continue"):
        out["continue"] = True
    mute = _get(r, "mute_time_intervals")
    if mute:
        out["mute_time_intervals"] = list(mute)
    subs = _get(r, "routes") or []
    if subs:
        out["routes"] = [_route(s, notes) for s in subs]
    return out


def _receiver(name: str, r: Any, notes: list[str]) -> dict:
    out: dict[str, Any] = {"name": name}
    where = f"receiver {name}"
    kinds = 0
    resolved = bool(_get(r, "send_resolved", default=True))
    pd = _get(r, "pagerduty")
    if pd is not None:
        kinds += 1
        cfg: dict[str, Any] = {"send_resolved": resolved}
        sec = _secret(pd, "routing_key", notes, where)
        if sec:
            cfg[sec[0]] = sec[1]
        url = _get(pd, "url")
        if url and str(url) != "https://events.pagerduty.com/v2/enqueue":
            cfg["url"] = str(url)
        out["pagerduty_configs"] = [cfg]
    em = _get(r, "email")
    if em is not None:
        kinds += 1
        to = _get(em, "to")
        cfg = {"to": ", ".join(to) if isinstance(to, (list, tuple)) else str(to), "send_resolved": resolved}
        frm = _get(em, "from_", "sender", "from")
        if frm:
            cfg["from"] = str(frm)
        host = _get(em, "smarthost", "host")
        port = _get(em, "port")
        if host:
            cfg["smarthost"] = f"{host}:{port}" if port and ":" not in str(host) else str(host)
        user = _get(em, "username", "auth_username")
        if user:
            cfg["auth_username"] = str(user)
            sec = _secret(em, "password", notes, where)
            if sec:
                cfg["auth_password_file"] = sec[1]
        tls = _get(em, "tls")
        if tls is not None:
            cfg["require_tls"] = tls == "starttls"
            if tls == "ssl":
                notes.append(f"{where}: implicit TLS (tls: ssl): Alertmanager uses it when the smarthost's port is 465")
            if tls == "none":
                notes.append(f"{where}: tls: none sends mail in the clear")
        ca = _get(em, "ca_file")
        if ca:
            cfg["tls_config"] = {"ca_file": str(ca)}
        if _get(em, "password_file") or ca:
            notes.append(f"{where}: file paths are relative to the spec in vigil and to Alertmanager's working directory there: make them absolute")
        out["email_configs"] = [cfg]
    wh = _get(r, "webhook")
    if wh is not None:
        kinds += 1
        cfg = {"send_resolved": resolved}
        url = _get(wh, "url")
        if url:
            cfg["url"] = str(url)
        else:
            sec = _secret(wh, "url", notes, where)
            if sec:
                cfg["url_file"] = sec[1]
        if _get(wh, "secret_env", "secret_file", "hmac_secret_env", "hmac_secret_file"):
            notes.append(f"{where}: Alertmanager's webhooks are not HMAC-signed; vigil's signature is left out")
        out["webhook_configs"] = [cfg]
    sl = _get(r, "slack")
    if sl is not None:
        kinds += 1
        cfg = {"send_resolved": resolved}
        sec = _secret(sl, "url", notes, where) or _secret(sl, "api_url", notes, where) or _secret(sl, "webhook_url", notes, where)
        if sec:
            cfg["api_url_file"] = sec[1]
        ch = _get(sl, "channel")
        if ch:
            cfg["channel"] = str(ch)
        out["slack_configs"] = [cfg]
    sns = _get(r, "sns")
    if sns is not None:
        kinds += 1
        cfg = {"send_resolved": resolved}
        arn = _get(sns, "topic_arn", "topic")
        if arn:
            cfg["topic_arn"] = str(arn)
        region = _get(sns, "region")
        if not region and arn and str(arn).count(":") >= 5:
            region = str(arn).split(":")[3]
        if region:
            cfg["sigv4"] = {"region": str(region)}
        endpoint = _get(sns, "endpoint_url")
        if endpoint:
            cfg["api_url"] = str(endpoint)
        out["sns_configs"] = [cfg]
    fb = _get(r, "fallback")
    if fb:
        notes.append(f"{where}: falls back to {fb} in vigil; Alertmanager has no fallback receivers (add a route with continue: true to send to both)")
    if kinds == 0:
        notes.append(f"{where}: no integration Alertmanager knows; exported without one")
    return out


def _inhibit(rule: Any) -> dict:
    out: dict[str, Any] = {}
    src = _get(rule, "source_matchers", "source")
    tgt = _get(rule, "target_matchers", "target")
    out["source_matchers"] = _matchers({"matchers": src}) if src is not None else _matchers({"match": _get(rule, "source_match")})
    out["target_matchers"] = _matchers({"matchers": tgt}) if tgt is not None else _matchers({"match": _get(rule, "target_match")})
    eq = _get(rule, "equal")
    if eq:
        out["equal"] = list(eq)
    return out


def alertmanager_config(alerting: Any, rules: Sequence[Any] = ()) -> Exported:
    """The configuration as plain data, and notes."""
    notes: list[str] = []
    if alerting is None:
        notes.append("the spec has no `alerting:` section: one receiver without integrations takes every alert")
        return Exported({"route": {"receiver": "vigil-default", "group_by": ["alertname", "service"]},
                         "receivers": [{"name": "vigil-default"}]}, notes)
    receivers = [_receiver(n, r, notes) for n, r in _items(_get(alerting, "receivers"))]
    route_obj = _get(alerting, "route")
    route = _route(route_obj, notes, top=True) if route_obj is not None else {}
    if "receiver" not in route:
        if receivers:
            route["receiver"] = receivers[0]["name"]
            notes.append(f"the route names no receiver; {receivers[0]['name']} takes what no sub-route does")
        else:
            route["receiver"] = "vigil-default"
            receivers.append({"name": "vigil-default"})
    doc: dict[str, Any] = {"route": route, "receivers": receivers}
    inh = [_inhibit(i) for i in (_get(alerting, "inhibit_rules", "inhibit") or [])]
    if inh:
        doc["inhibit_rules"] = inh
    hb = _get(alerting, "heartbeat", "dead_mans_switch")
    if hb is not None:
        notes.append("the dead man's switch is vigil's own; with Prometheus, add an always-firing rule (expr: vector(1)) routed to it")
    return Exported(doc, notes)


def receiver_names(doc: dict) -> Iterable[str]:
    return [r["name"] for r in doc.get("receivers", [])]
