"""Reading WAF test cases in go-ftw's YAML format (pure: text in, cases out).

The format is the Core Rule Set's (coreruleset/ftw-tests-schema); every version in use is read, so
CRS's own regression tests run as they are:

* **v1** (the Python ftw, CRS 3.x): ``tests[].test_title``, ``stages[].stage.input/output``,
  ``output.status`` an integer or a list, ``log_contains`` / ``no_log_contains``;
* **v2** (go-ftw 1.x, CRS 4): ``rule_id``, ``tests[].test_id``, ``stages[].input/output``,
  ``headers`` (a map) or ``ordered_headers`` (a list of name/value), ``encoded_data``,
  ``encoded_request``, ``output.log.expect_ids / no_expect_ids / match_regex / no_match_regex``,
  ``expect_error``;
* **v3**: a file-level ``template`` with ``{{.Payload}}`` in ``uri``, ``data`` or header values,
  and tests with ``payload`` (and a ``template`` override) and ``output``.

vigil reads ``tags`` (the file's ``meta.tags`` and each test's) to score a case: ``benign`` (or
``false-positive``) marks a request that must pass, ``attack`` one that must be blocked, ``api``
puts it in the API score beside the application score (GoTestWAF's ApiSec/AppSec). Without such a
tag a case is an attack when its last stage expects a blocking status or rule ids in the log.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.errors import UsageError

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_FILES = 5000
GROUPS = ("sqli", "xss", "ssrf", "ssti", "path-traversal", "lfi", "rce", "graphql", "rate-limit", "protocol", "benign")


@dataclass
class Request:
    method: str = "GET"
    uri: str = "/"
    version: str = "HTTP/1.1"
    headers: list[tuple[str, str]] = field(default_factory=list)
    data: bytes | None = None
    autocomplete: bool = True
    raw: bytes | None = None  # encoded_request: sent as is
    dest_addr: str | None = None
    port: int | None = None
    protocol: str = "http"


@dataclass
class Expect:
    status: list[int] = field(default_factory=list)
    response_contains: str | None = None
    log_contains: str | None = None
    no_log_contains: str | None = None
    expect_ids: list[int] = field(default_factory=list)
    no_expect_ids: list[int] = field(default_factory=list)
    match_regex: str | None = None
    no_match_regex: str | None = None
    expect_error: bool = False

    @property
    def needs_log(self) -> bool:
        return bool(self.log_contains or self.no_log_contains or self.expect_ids or self.no_expect_ids or self.match_regex or self.no_match_regex)


@dataclass
class Stage:
    request: Request
    expect: Expect


@dataclass
class Case:
    file: str
    id: str
    description: str
    stages: list[Stage]
    tags: list[str]
    category: str  # attack | benign
    group: str
    api: bool

    def to_dict(self) -> dict:
        return {"id": self.id, "file": self.file, "description": self.description, "category": self.category, "group": self.group,
                "api": self.api, "tags": self.tags}


def _err(file: str, where: str, what: str) -> UsageError:
    return UsageError(f"{file}: {where}: {what}", hint="go-ftw's YAML format: https://github.com/coreruleset/ftw-tests-schema")


def _str(v: Any, file: str, where: str) -> str:
    if isinstance(v, bool) or v is None or isinstance(v, (dict, list)):
        raise _err(file, where, "expected text")
    return str(v)


def _int(v: Any, file: str, where: str) -> int:
    if isinstance(v, bool):
        raise _err(file, where, "expected a number")
    try:
        return int(str(v))
    except ValueError:
        raise _err(file, where, f"expected a number, got {v!r}") from None


def _headers(inp: dict, file: str, where: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    h = inp.get("headers")
    if h is not None:
        if isinstance(h, dict):
            out += [(str(k), "" if v is None else str(v)) for k, v in h.items()]
        elif isinstance(h, list):  # v3 template: a list of {name, value}
            for i, t in enumerate(h):
                if not isinstance(t, dict) or "name" not in t:
                    raise _err(file, f"{where}.headers[{i}]", "expected {name, value}")
                out.append((str(t["name"]), "" if t.get("value") is None else str(t["value"])))
        else:
            raise _err(file, f"{where}.headers", "expected a mapping")
    oh = inp.get("ordered_headers")
    if oh is not None:
        if not isinstance(oh, list):
            raise _err(file, f"{where}.ordered_headers", "expected a list of {name, value}")
        for i, t in enumerate(oh):
            if not isinstance(t, dict) or "name" not in t:
                raise _err(file, f"{where}.ordered_headers[{i}]", "expected {name, value}")
            out.append((str(t["name"]), "" if t.get("value") is None else str(t["value"])))
    for k, _ in out:
        if not k:
            raise _err(file, f"{where}.headers", "a header needs a name")
    return out  # sent as written: WAF tests put line breaks in headers on purpose (header injection)


def _b64(v: Any, file: str, where: str) -> bytes:
    try:
        return base64.b64decode(_str(v, file, where), validate=False)
    except ValueError:
        raise _err(file, where, "not base64") from None


def _request(inp: Any, file: str, where: str) -> Request:
    if not isinstance(inp, dict):
        raise _err(file, where, "expected a mapping")
    r = Request()
    if "method" in inp:
        r.method = _str(inp["method"], file, f"{where}.method")
    if "uri" in inp:
        r.uri = _str(inp["uri"], file, f"{where}.uri")
    if "version" in inp:
        v = _str(inp["version"], file, f"{where}.version")
        r.version = v if v.upper().startswith("HTTP/") or not v[:1].isdigit() else f"HTTP/{v}"
    r.headers = _headers(inp, file, where)
    if inp.get("data") is not None:
        d = inp["data"]
        r.data = ("".join(str(x) for x in d) if isinstance(d, list) else _str(d, file, f"{where}.data")).encode("utf-8", "surrogateescape")
    if inp.get("encoded_data") is not None:
        r.data = _b64(inp["encoded_data"], file, f"{where}.encoded_data")
    if inp.get("encoded_request"):
        r.raw = _b64(inp["encoded_request"], file, f"{where}.encoded_request")
    if inp.get("raw_request"):
        r.raw = _str(inp["raw_request"], file, f"{where}.raw_request").encode("utf-8", "surrogateescape")
    if inp.get("stop_magic") is True:
        r.autocomplete = False
    if "autocomplete_headers" in inp and inp["autocomplete_headers"] is not None:
        r.autocomplete = bool(inp["autocomplete_headers"])
    if inp.get("dest_addr"):
        r.dest_addr = _str(inp["dest_addr"], file, f"{where}.dest_addr")
    if inp.get("port") is not None:
        r.port = _int(inp["port"], file, f"{where}.port")
    if inp.get("protocol"):
        r.protocol = _str(inp["protocol"], file, f"{where}.protocol").lower()
        if r.protocol not in ("http", "https"):
            raise _err(file, f"{where}.protocol", "http or https")
    return r


def _expect(out: Any, file: str, where: str) -> Expect:
    if out is None:
        return Expect()
    if not isinstance(out, dict):
        raise _err(file, where, "expected a mapping")
    e = Expect()
    st = out.get("status")
    if st is not None:
        e.status = [_int(x, file, f"{where}.status") for x in (st if isinstance(st, list) else [st])]
    for k in ("response_contains", "log_contains", "no_log_contains"):
        if out.get(k) is not None:
            setattr(e, k, _str(out[k], file, f"{where}.{k}"))
    log = out.get("log")
    if log is not None:
        if not isinstance(log, dict):
            raise _err(file, f"{where}.log", "expected a mapping")
        for k, attr in (("expect_ids", "expect_ids"), ("no_expect_ids", "no_expect_ids"), ("expect_id", "expect_ids"), ("no_expect_id", "no_expect_ids")):
            v = log.get(k)
            if v is not None:
                getattr(e, attr).extend(_int(x, file, f"{where}.log.{k}") for x in (v if isinstance(v, list) else [v]))
        for k in ("match_regex", "no_match_regex"):
            if log.get(k) is not None:
                setattr(e, k, _str(log[k], file, f"{where}.log.{k}"))
    if out.get("expect_error") is not None:
        e.expect_error = bool(out["expect_error"])
    import re

    for k in ("response_contains", "log_contains", "no_log_contains", "match_regex", "no_match_regex"):
        v = getattr(e, k)
        if v is not None:
            try:
                re.compile(v)
            except re.error as err:
                raise _err(file, f"{where}.{k}", f"not a regular expression: {err}") from None
    return e


def _fill(tmpl: dict, payload: str) -> dict:
    """A v3 template with ``{{.Payload}}`` replaced (in uri, data and header values)."""
    out = dict(tmpl)
    for k in ("uri", "data"):
        if isinstance(out.get(k), str):
            out[k] = out[k].replace("{{.Payload}}", payload).replace("{{ .Payload }}", payload)
    if isinstance(out.get("headers"), list):
        out["headers"] = [dict(h, value=str(h.get("value", "")).replace("{{.Payload}}", payload)) if isinstance(h, dict) else h for h in out["headers"]]
    return out


def parse_file(doc: Any, file: str) -> list[Case]:
    if doc is None:
        return []  # an empty file, or one of comments only (CRS has such placeholders)
    if not isinstance(doc, dict):
        raise _err(file, "the document", "expected a mapping with meta and tests")
    meta = doc.get("meta") or {}
    if not isinstance(meta, dict):
        raise _err(file, "meta", "expected a mapping")
    if meta.get("enabled") is False:
        return []
    file_tags = [str(t) for t in (meta.get("tags") or [])]
    rule_id = doc.get("rule_id")
    tests = doc.get("tests")
    if not isinstance(tests, list):
        raise _err(file, "tests", "expected a list")
    template = doc.get("template") if isinstance(doc.get("template"), dict) else None
    cases: list[Case] = []
    for i, t in enumerate(tests):
        where = f"tests[{i}]"
        if not isinstance(t, dict):
            raise _err(file, where, "expected a mapping")
        tid = t.get("test_id", t.get("id"))
        title = t.get("test_title") or (f"{rule_id}-{tid if tid is not None else i + 1}" if rule_id is not None else f"{Path(file).stem}-{tid if tid is not None else i + 1}")
        desc = str(t.get("desc") or t.get("description") or "")
        stages: list[Stage] = []
        if t.get("payload") is not None:
            if t.get("stages"):
                raise _err(file, where, "a test has payload or stages, not both")
            base = dict(template or {})
            if isinstance(t.get("template"), dict):
                base.update({k: v for k, v in t["template"].items() if v is not None})
            stages.append(Stage(_request(_fill(base, str(t["payload"])), file, f"{where}.template"), _expect(t.get("output"), file, f"{where}.output")))
        else:
            raw_stages = t.get("stages")
            if not isinstance(raw_stages, list) or not raw_stages:
                raise _err(file, f"{where}.stages", "expected a non-empty list")
            for j, s in enumerate(raw_stages):
                sw = f"{where}.stages[{j}]"
                if not isinstance(s, dict):
                    raise _err(file, sw, "expected a mapping")
                if "stage" in s and isinstance(s["stage"], dict):  # v1
                    s = s["stage"]
                    sw += ".stage"
                if "input" not in s:
                    raise _err(file, sw, "a stage needs input")
                stages.append(Stage(_request(s["input"], file, f"{sw}.input"), _expect(s.get("output"), file, f"{sw}.output")))
        tags = list(dict.fromkeys(file_tags + [str(x) for x in (t.get("tags") or [])]))
        low = [x.lower() for x in tags]
        last = stages[-1].expect
        if "benign" in low or "false-positive" in low:
            category = "benign"
        elif "attack" in low:
            category = "attack"
        else:
            category = "attack" if (last.expect_ids or last.log_contains or any(s >= 400 for s in last.status)) else "benign"
        group = next((g for g in GROUPS if g in low), "benign" if category == "benign" else str(meta.get("name") or Path(file).stem))
        cases.append(Case(file, str(title), desc, stages, tags, category, group, "api" in low or "graphql" in low))
    return cases


def load_suite(paths: list[Path]) -> list[Case]:
    """Every case of the YAML files named, or found (``*.yaml``, ``*.yml``, sorted) under the
    directories named. Raises :class:`UsageError` for a missing path, a bad file or no case."""
    from vigil.yamlio import Limits, load_plain

    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(x for x in p.rglob("*") if x.suffix in (".yaml", ".yml") and x.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise UsageError(f"{p}: no such file or directory", hint="security.waf.suite or --suite names go-ftw YAML files or directories")
    if len(files) > MAX_FILES:
        raise UsageError(f"more than {MAX_FILES} test files", hint="name fewer directories")
    limits = Limits(max_bytes=MAX_FILE_BYTES, what="a WAF test file", typical="a test file is a few KiB")
    cases: list[Case] = []
    for f in files:
        data = f.read_bytes()
        if len(data) > MAX_FILE_BYTES:
            raise UsageError(f"{f}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
        doc = load_plain(data.decode("utf-8-sig", "replace"), str(f), limits)
        cases += parse_file(doc, str(f))
    from collections import Counter

    dup = sorted(i for i, n in Counter(c.id for c in cases).items() if n > 1)
    if dup:
        raise UsageError(f"test ids used twice: {', '.join(dup[:10])}", hint="each test_title / rule_id-test_id names one test")
    if not cases:
        raise UsageError("the suite has no enabled test case", hint="a WAF check with nothing sent proves nothing")
    return cases
