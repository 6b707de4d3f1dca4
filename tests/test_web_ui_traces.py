"""The traces pages of the web UI (issue 10: "the web UI gets a waterfall"), over real HTTP: spans
exported through the real OTLP endpoint (protobuf), then the pages fetched with the UI's sign-in.
The list (newest first, ?service=, error flag), the waterfall (tree order, depth, durations, bars
sized and placed by start and duration), error spans marked in text, a missing parent said
plainly, a hostile span name escaped, 404 for unknown and malformed ids, sign-in required."""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import timedelta
from typing import Iterator

import httpx
import pytest

from otlp_helpers import CLIENT, INTERNAL, TOKEN, live, post, sid, span, tid, trace_request, utc
from vigil.clock import FakeClock

NOW = utc("2026-11-20T12:00:00Z")
T0 = NOW - timedelta(minutes=5)
ROW = re.compile(r'<tr class="span([^"]*)" data-span="([0-9a-f]+)" data-depth="(\d+)">(.*?)</tr>', re.S)
BAR = re.compile(r'style="margin-left: ([0-9.]+)%; width: ([0-9.]+)%"')
MS = re.compile(r'data-ms="([0-9.]+)"')


@contextmanager
def login(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, follow_redirects=False, timeout=60) as c:
        _sign_in(c)
        yield c


def _sign_in(c: httpx.Client) -> None:
    r = c.get("/login")
    csrf = r.text.split('name="csrf" value="')[1].split('"')[0]
    r = c.post("/login", data={"token": TOKEN, "csrf": csrf, "next": "/traces"})
    assert r.status_code == 303 and r.headers["location"] == "/traces", r.text[:300]


def rows(html: str) -> list[dict]:
    out = []
    for cls, span_id, depth, body in ROW.findall(html):
        left, width = BAR.search(body).groups()
        out.append({"span_id": span_id, "depth": int(depth), "error": "span-error" in cls, "body": body,
                    "left": float(left), "width": float(width), "ms": float(MS.search(body).group(1))})
    return out


@pytest.fixture
def srv(store):
    """Three traces: (1) a web -> api -> db tree of 5 spans with an error span, exported as two
    requests with the children first; (2) an api trace whose root's parent never arrives, with a
    hostile span name; (3) a lone fn span, the newest."""
    t1 = [
        ("web", [span(1, 1, name="GET /checkout", start=T0, ms=400.0)]),
        ("api", [span(1, 2, parent=1, name="POST /graphql", start=T0 + timedelta(milliseconds=50), ms=300.0),
                 span(1, 4, parent=2, name="charge", kind=INTERNAL, start=T0 + timedelta(milliseconds=250), ms=80.0, error=True),
                 span(1, 3, parent=2, name="SELECT orders", kind=CLIENT, start=T0 + timedelta(milliseconds=100), ms=100.0,
                      attrs={"db.system": "postgresql"})]),
    ]
    t2 = [("api", [span(2, 10, parent=99, name="<script>alert(1)</script>", start=T0 + timedelta(seconds=10), ms=20.0),
                   span(2, 11, parent=10, name="child", kind=CLIENT, start=T0 + timedelta(seconds=10, milliseconds=5), ms=10.0)])]
    t3 = [("fn", [span(3, 20, name="handler", start=T0 + timedelta(seconds=20), ms=5.0)])]
    with live(store, FakeClock(NOW)) as s:
        for groups in ([t1[1]], [t1[0]], t2, t3):
            assert post(s.url, "/v1/traces", trace_request(groups).SerializeToString()).status_code == 200
        yield s


def test_not_signed_in_goes_to_sign_in(srv):
    with httpx.Client(base_url=srv.url, follow_redirects=False, timeout=60) as c:
        for p in ("/traces", f"/traces/{tid(1).hex()}"):
            r = c.get(p)
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), p


def test_list_newest_first_with_root_duration_count_and_errors(srv):
    with login(srv.url) as c:
        r = c.get("/traces")
        assert r.status_code == 200
        html = r.text
        assert '<a href="/traces">Traces</a>' in html or 'href="/traces" aria-current="page"' in html  # in the navigation
        ids = re.findall(r'<a href="/traces/([0-9a-f]{32})">', html)
        assert ids == [tid(3).hex(), tid(2).hex(), tid(1).hex()]
        line1 = html.split(f'<a href="/traces/{tid(1).hex()}">')[1].split("</tr>")[0]
        assert "<td>web</td><td>GET /checkout</td>" in line1 and "400.000 ms" in line1
        assert "<td>4</td>" in line1 and "✖ 1 error" in line1
        line3 = html.split(f'<a href="/traces/{tid(3).hex()}">')[1].split("</tr>")[0]
        assert "<td>fn</td><td>handler</td>" in line3 and "✔ none" in line3 and "<td>1</td>" in line3
        # the hostile name is text in the list too
        assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        # ?service= keeps the traces with a span of that service
        only = re.findall(r'<a href="/traces/([0-9a-f]{32})">', c.get("/traces?service=api").text)
        assert only == [tid(2).hex(), tid(1).hex()]
        assert re.findall(r'<a href="/traces/([0-9a-f]{32})">', c.get("/traces?service=nobody").text) == []
        # a since outside the choices is a clear 400, not a silent default
        bad = c.get("/traces?since=forever")
        assert bad.status_code == 400 and "is not one of" in bad.text


def test_waterfall_tree_order_durations_bars_and_error(srv):
    with login(srv.url) as c:
        r = c.get(f"/traces/{tid(1).hex()}")
        assert r.status_code == 200
        got = rows(r.text)
        # tree order: root, its child, the child's children by start time (the db call before charge)
        assert [(g["span_id"], g["depth"]) for g in got] == [(sid(1).hex(), 0), (sid(2).hex(), 1), (sid(3).hex(), 2), (sid(4).hex(), 2)]
        assert [g["ms"] for g in got] == [400.0, 300.0, 100.0, 80.0]
        assert [n in g["body"] for g, n in zip(got, ("GET /checkout", "POST /graphql", "SELECT orders", "charge"))] == [True] * 4
        assert "400.0 ms" in got[0]["body"] and "80.0 ms" in got[3]["body"]
        # bars: offset and width in % of the trace's 400 ms
        want = [(0.0, 100.0), (12.5, 75.0), (25.0, 25.0), (62.5, 20.0)]
        for g, (left, width) in zip(got, want):
            assert g["left"] == pytest.approx(left, abs=0.001) and g["width"] == pytest.approx(width, abs=0.001)
        # the error span is marked in text, not colour alone; the others are not
        assert [g["error"] for g in got] == [False, False, False, True]
        assert "✖ error</strong>: boom" in got[3]["body"] and "✖ error" not in got[2]["body"]
        assert "✖ 1 error span" in r.text and "✔ connected" in r.text
        assert "not received" not in r.text


def test_missing_parent_said_and_hostile_name_escaped(srv):
    with login(srv.url) as c:
        r = c.get(f"/traces/{tid(2).hex()}")
        assert r.status_code == 200
        got = rows(r.text)
        assert [(g["span_id"], g["depth"]) for g in got] == [(sid(10).hex(), 0), (sid(11).hex(), 1)]
        assert f"parent span {sid(99).hex()} not received" in got[0]["body"]
        assert "not connected" in r.text and sid(99).hex() in r.text.split("not received:")[1]
        assert "<script>alert(1)</script>" not in r.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in got[0]["body"]
        # the child starts 5 ms into the 20 ms trace and lasts 10 ms
        assert (got[1]["left"], got[1]["width"]) == (pytest.approx(25.0, abs=0.001), pytest.approx(50.0, abs=0.001))


def test_unknown_and_malformed_ids_are_404_pages(srv):
    with login(srv.url) as c:
        for p in (f"/traces/{'ab' * 16}", "/traces/not-a-trace", f"/traces/{'0' * 32}", "/traces/%3Cscript%3E"):
            r = c.get(p)
            assert r.status_code == 404, p
            assert r.headers["content-type"].startswith("text/html") and "<script>" not in r.text
        assert "no span of trace" in c.get(f"/traces/{'ab' * 16}").text
        assert "is not a trace id" in c.get("/traces/not-a-trace").text


def test_bars_of_a_zero_length_trace_and_a_span_past_the_end():
    """Pure: a trace whose spans all last 0 ns gets full bars (no division by zero); a bar never
    runs past 100%."""
    from vigil.traces.tree import SpanRecord, build_tree
    from vigil.web.ui.waterfall import bars

    rec = lambda s, p, a, b: SpanRecord("t" * 32, s, p, "api", s, 2, a, b, 0, "{}")  # noqa: E731
    zero = bars(build_tree("t" * 32, [rec("a", "", 5, 5), rec("b", "a", 5, 5)]).to_dict())
    assert [(r["bar_left"], r["bar_width"]) for r in zero] == [(0.0, 100.0), (0.0, 100.0)]
    got = bars(build_tree("t" * 32, [rec("a", "", 0, 3_000_000), rec("b", "a", 1_000_000, 3_000_000)]).to_dict())
    assert [(r["bar_left"], r["bar_width"]) for r in got] == [(0.0, 100.0), (33.3333, 66.6667)]
