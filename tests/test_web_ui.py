"""The web UI over real HTTP (uvicorn on loopback): every page and endpoint without a session and
with each role, sign-in and its cookie, CSRF on every form, the actions' roles, the API index and
/docs offline; and every SLO chart's numbers equal the SLO engine's for the same window, on 30
days of simulated data."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from live import LiveServer
from webui_data import NOW, TOKENS, build

# the first test builds the shared 30-day dataset (about 3 minutes on a busy 2-core machine)
pytestmark = pytest.mark.timeout(900)

PAGES = ["/", "/slos/api-availability", "/dashboards", "/dashboards/api", "/deploys", "/dr", "/dr/drills/1", "/alerts"]
JSON = [
    "/api/v1/overview", "/api/v1/charts/slos/api-availability/burndown", "/api/v1/charts/slos/api-latency/burn-rates?range=1d",
    "/api/v1/charts/slos/search-freshness/sli?range=6h", "/api/v1/dashboards", "/api/v1/dashboards/jobs/panels/dsar-queue-depth?range=7d",
    "/api/v1/deploys", "/api/v1/charts/canary/1", "/api/v1/dr", "/api/v1/charts/drills", "/api/v1/charts/backups?range=1d",
    "/api/v1/drills/3/report",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return build(tmp_path_factory.getbasetemp())


def _app(d: Path, clock):
    from vigil.auth import load_tokens_file
    from vigil.spec import load_spec
    from vigil.store import open_store
    from vigil.web.app import create_app

    store = open_store(f"sqlite:///{d / '.vigil' / 'vigil.db'}")
    return create_app(load_spec(d / "vigil.yaml"), store, load_tokens_file(d / "tokens.yaml"), clock), store


@pytest.fixture(scope="module")
def server(data_dir):
    from vigil.clock import FakeClock, parse_time

    app, store = _app(data_dir, FakeClock(parse_time(NOW)))
    with LiveServer(app) as srv:
        yield srv
    store.close()


@pytest.fixture(scope="module")
def live_clock_server(tmp_path_factory, data_dir):
    """The same spec on a fresh store at the real clock: actions (silences) are recorded at it."""
    import shutil

    from vigil.clock import SystemClock

    d = tmp_path_factory.mktemp("actions")
    shutil.copy(data_dir / "vigil.yaml", d / "vigil.yaml")
    shutil.copy(data_dir / "tokens.yaml", d / "tokens.yaml")
    (d / "tokens.yaml").chmod(0o600)
    (d / ".vigil").mkdir(mode=0o700)
    app, store = _app(d, SystemClock())
    with LiveServer(app) as srv:
        yield srv
    store.close()


def login(srv, role: str, **headers) -> httpx.Client:
    c = httpx.Client(base_url=srv.url, follow_redirects=False, timeout=60)
    r = c.get("/login")
    csrf = r.text.split('name="csrf" value="')[1].split('"')[0]
    r = c.post("/login", data={"token": TOKENS[role], "csrf": csrf, "next": "/"}, headers=headers)
    assert r.status_code == 303 and r.headers["location"] == "/", r.text[:300]
    return c


def csrf_of(c: httpx.Client, path: str = "/alerts") -> str:
    return c.get(path).text.split('name="csrf" value="')[1].split('"')[0]


# -- without a session -----------------------------------------------------------------------------


def test_without_a_session_pages_go_to_sign_in_and_endpoints_are_401(server):
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=60) as c:
        for p in PAGES + ["/sessions"]:
            r = c.get(p)
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), p
        for p in JSON:
            r = c.get(p)
            assert r.status_code == 401, p
            assert r.json()["error"]["code"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
        for p in ("/alerts/silences", "/alerts/silences/x/expire", "/sessions/abc/revoke", "/logout"):
            assert c.post(p, data={"csrf": "x"}).status_code == 401, p
        # a wrong token is neither a session nor a Bearer
        assert c.get(JSON[0], headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=60, cookies={"vigil_session": "forged"}) as c:
        assert c.get("/").status_code == 303


def test_home_api_index_and_docs_are_served_without_a_cdn(server):
    with httpx.Client(base_url=server.url, timeout=60, follow_redirects=True) as c:
        r = c.get("/")  # the UI's home: the sign-in page, after the redirect
        assert r.status_code == 200 and 'action="/login"' in r.text
        for p in ("/api", "/api/v1"):
            j = c.get(p).json()
            assert j["docs"] == "/docs" and j["openapi"] == "/openapi.json"
            paths = {r["path"] for r in j["routes"]}
            assert {"/api/v1/slos", "/api/v1/gate", "/api/v1/overview", "/api/v1/charts/slos/{name}/burndown"} <= paths
        docs = c.get("/docs").text
        assert "cdn" not in docs.lower() and "//" not in docs.replace("<!doctype", "").split("<body>")[0].replace("https://", "")
        for src in ("/ui-static/swagger/swagger-ui-bundle.js", "/ui-static/swagger/swagger-ui.css", "/ui-static/docs.js",
                    "/ui-static/plotly.min.js", "/ui-static/vigil.js", "/ui-static/vigil.css"):
            r = c.get(src)
            assert r.status_code == 200 and len(r.content) > 200, src
        assert c.get("/ui-static/../pyproject.toml").status_code == 404
        assert c.get("/ui-static/swagger/index.html").status_code == 404
        assert "/api/v1/overview" in c.get("/openapi.json").json()["paths"]


# -- each role -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["viewer", "pusher", "deployer", "admin"])
def test_each_role_reads_every_page_and_endpoint(server, role):
    c = login(server, role)
    for p in PAGES:
        r = c.get(p)
        assert r.status_code == 200, (p, r.text[:300])
        assert "Content-Security-Policy" in r.headers and r.headers["X-Frame-Options"] == "DENY"
        assert f"{role}-user" in r.text
    for p in JSON:
        assert c.get(p).status_code == 200, p
    r = c.get("/sessions")
    assert r.status_code == (200 if role == "admin" else 403)
    # a deployer sees the silence form; a viewer is told it needs one
    alerts = c.get("/alerts").text
    assert ('action="/alerts/silences"' in alerts) == (role in ("deployer", "admin"))
    # Bearer tokens read the same endpoints
    with httpx.Client(base_url=server.url, timeout=60) as b:
        assert b.get(JSON[1], headers={"Authorization": f"Bearer {TOKENS[role]}"}).status_code == 200


def test_sign_in_cookie_and_sign_out(server):
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=60) as c:
        r = c.get("/login")
        csrf = r.text.split('name="csrf" value="')[1].split('"')[0]
        # a wrong token: no session; the form comes back with a new CSRF token
        bad = c.post("/login", data={"token": "nope-0123456789abcdef", "csrf": csrf})
        assert bad.status_code == 401 and "vigil_session" not in bad.headers.get("set-cookie", "")
        csrf = bad.text.split('name="csrf" value="')[1].split('"')[0]
        # a login form without its CSRF cookie (another site posting it) is refused
        with httpx.Client(base_url=server.url, timeout=60) as other:
            assert other.post("/login", data={"token": TOKENS["admin"], "csrf": csrf}).status_code == 403
        # an open redirect is not followed
        r = c.post("/login", data={"token": TOKENS["viewer"], "csrf": csrf, "next": "//evil.example/x"})
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        assert "vigil_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain HTTP on loopback
        assert c.get("/").status_code == 200
        token = c.get("/").text.split('name="csrf" value="')[1].split('"')[0]
        assert c.post("/logout", data={"csrf": token}).status_code == 303
        sid = cookie.split("vigil_session=")[1].split(";")[0]
    # the session is gone on the server, not only in the browser
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=60, cookies={"vigil_session": sid}) as c2:
        assert c2.get("/").status_code == 303


def test_secure_cookie_behind_tls(server):
    """Behind a TLS-terminating proxy (X-Forwarded-Proto from a trusted address, as uvicorn reads it)
    the cookies are Secure."""
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=60) as c:
        r = c.get("/login", headers={"X-Forwarded-Proto": "https"})
        assert "Secure" in r.headers["set-cookie"]
        csrf = r.text.split('name="csrf" value="')[1].split('"')[0]
        # (this client speaks plain HTTP, so it keeps a Secure cookie to itself: sent here by hand)
        r = c.post("/login", data={"token": TOKENS["viewer"], "csrf": csrf},
                   headers={"X-Forwarded-Proto": "https", "Cookie": f"vigil_login_csrf={csrf}"})
        assert r.status_code == 303 and "Secure" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]


def test_brute_force_sign_in_is_slowed(server):
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=60, headers={"X-Forwarded-For": "10.9.9.9"}) as c:
        codes = []
        for _ in range(12):
            r = c.get("/login")
            csrf = r.text.split('name="csrf" value="')[1].split('"')[0]
            codes.append(c.post("/login", data={"token": "wrong-0123456789abcdef", "csrf": csrf}).status_code)
        assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
        r = c.get("/login")
        csrf = r.text.split('name="csrf" value="')[1].split('"')[0]
        assert c.post("/login", data={"token": TOKENS["admin"], "csrf": csrf}).status_code == 429  # even a right token, for a minute


# -- actions: roles and CSRF -------------------------------------------------------------------------


def test_silences_need_a_deployer_and_csrf(live_clock_server):
    srv = live_clock_server
    viewer, pusher, deployer = login(srv, "viewer"), login(srv, "pusher"), login(srv, "deployer")
    form = {"matchers": 'service="search"', "duration": "2h", "reason": "index rebuild"}
    for c in (viewer, pusher):
        r = c.post("/alerts/silences", data={**form, "csrf": csrf_of(c)})
        assert r.status_code == 403 and "needs deployer" in r.text
    # no CSRF token, a wrong one, or another site's Origin: refused, nothing stored
    assert deployer.post("/alerts/silences", data=form).status_code == 403
    assert deployer.post("/alerts/silences", data={**form, "csrf": "x" * 43}).status_code == 403
    assert deployer.post("/alerts/silences", data={**form, "csrf": csrf_of(deployer)}, headers={"Origin": "http://evil.example"}).status_code == 403
    with httpx.Client(base_url=srv.url, timeout=60) as b:
        assert b.get("/api/v1/silences", headers={"Authorization": f"Bearer {TOKENS['admin']}"}).json()["silences"] == []
    # a bad silence is a clear error, nothing stored
    r = deployer.post("/alerts/silences", data={**form, "duration": "forever", "csrf": csrf_of(deployer)})
    assert r.status_code == 400 and "cannot read duration" in r.text
    r = deployer.post("/alerts/silences", data={**form, "csrf": csrf_of(deployer)}, headers={"Origin": srv.url})
    assert r.status_code == 303
    with httpx.Client(base_url=srv.url, timeout=60) as b:
        got = b.get("/api/v1/silences", headers={"Authorization": f"Bearer {TOKENS['admin']}"}).json()["silences"]
    assert len(got) == 1 and got[0]["created_by"] == "ui:deployer-user" and got[0]["reason"] == "index rebuild"
    sid = got[0]["id"]
    assert viewer.post(f"/alerts/silences/{sid}/expire", data={"csrf": csrf_of(viewer)}).status_code == 403
    assert deployer.post(f"/alerts/silences/{sid}/expire", data={"csrf": csrf_of(deployer)}).status_code == 303
    with httpx.Client(base_url=srv.url, timeout=60) as b:
        got = b.get("/api/v1/silences", headers={"Authorization": f"Bearer {TOKENS['admin']}"}).json()["silences"]
    assert got[0]["state"] == "expired"


def test_pinned_clock_server_records_no_silence(server):
    c = login(server, "admin")
    r = c.post("/alerts/silences", data={"matchers": 'service="api"', "duration": "1h", "reason": "x", "csrf": csrf_of(c)})
    assert r.status_code == 400 and "pinned clock" in r.text


def test_admin_revokes_a_session(server):
    viewer, admin = login(server, "viewer"), login(server, "admin")
    assert viewer.get("/").status_code == 200
    page = admin.get("/sessions").text
    assert "viewer-user" in page
    # sessions are listed oldest first: the viewer's is the last viewer-user row
    sid_hash = page.split("viewer-user")[-1].split('action="/sessions/')[1].split("/revoke")[0]
    deployer = login(server, "deployer")
    assert deployer.post(f"/sessions/{sid_hash}/revoke", data={"csrf": csrf_of(deployer, "/")}).status_code == 403
    assert viewer.get("/").status_code == 200
    assert admin.post(f"/sessions/{sid_hash}/revoke", data={"csrf": csrf_of(admin, "/sessions")}).status_code == 303
    assert viewer.get("/").status_code == 303  # signed out by the admin


def test_bad_parameters_are_clear_errors(server):
    c = login(server, "viewer")
    assert c.get("/api/v1/charts/slos/nope/burndown").status_code == 404
    r = c.get("/api/v1/charts/slos/api-latency/sli?range=2y")
    assert r.status_code == 400 and "unknown range" in r.json()["error"]["message"]
    r = c.get("/api/v1/dashboards/api/panels/api-latency?from=now-1d")
    assert r.status_code == 400 and "needs both from and to" in r.json()["error"]["message"]
    assert c.get("/api/v1/dashboards/api/panels/nope").status_code == 404
    r = c.get("/slos/nope")
    assert r.status_code == 404 and "unknown SLO" in r.text and "<html" in r.text
    assert c.get("/dashboards/api?range=2y").status_code == 400


# -- the numbers are the engine's -------------------------------------------------------------------


def _minute(x: str) -> int:
    return int(datetime.strptime(x, "%Y-%m-%d %H:%M").replace(tzinfo=timezone.utc).timestamp()) // 60


def _f(d):
    return None if d is None else float(d)


@pytest.fixture(scope="module")
def engine(data_dir):
    from vigil.spec import load_spec
    from vigil.store import open_store
    from vigil.telemetry.sources import open_source

    loaded = load_spec(data_dir / "vigil.yaml")
    store = open_store(f"sqlite:///{data_dir / '.vigil' / 'vigil.db'}", mode="read")
    yield loaded, (lambda: open_source(loaded.spec.telemetry, store))
    store.close()


@pytest.mark.parametrize("slo_name", ["api-availability", "api-latency", "search-freshness", "checkout-success"])
def test_every_slo_chart_equals_the_engine(server, engine, slo_name):
    from vigil.clock import parse_time
    from vigil.slo.evaluate import covered_span, evaluate_slo, evaluate_slos, slo_coverage
    from vigil.slo.windows import Span, minute_to_datetime, span_at

    loaded, source = engine
    slo = loaded.spec.slo(slo_name)
    at = parse_time(NOW)
    c = login(server, "viewer")
    cov = slo_coverage(slo, source())
    span = covered_span(slo, span_at(slo.window, at), cov)

    # burn-down: every point is the engine's budget consumed of this window as it stood then
    bd = c.get(f"/api/v1/charts/slos/{slo_name}/burndown").json()
    assert len(bd["x"]) > 10
    for x, consumed, good, valid in zip(bd["x"], bd["consumed"], bd["good"], bd["valid"]):
        t = _minute(x)
        st = evaluate_slo(slo, source(), minute_to_datetime(t), span=Span(span.start, span.end, t, False, span.covered_from), coverage=cov)
        assert (good, valid, consumed) == (st.window_counts.good, st.window_counts.valid, _f(st.consumed)), x
        if slo.window.calendar:  # a calendar window: the engine evaluated at that time, plainly
            assert consumed == _f(evaluate_slo(slo, source(), minute_to_datetime(t)).consumed)
    now = evaluate_slos([slo], source(), at)[0].to_dict()
    assert bd["consumed"][-1] == now["budget"]["consumed"]  # ends at /api/v1/slos' figure
    assert c.get("/api/v1/slos", headers={"Authorization": f"Bearer {TOKENS['viewer']}"}).json()["slos"][
        [s.name for s in loaded.spec.slos].index(slo_name)]["budget"]["consumed"] == bd["consumed"][-1]

    # burn rates over time: the engine's burn rate of each long window at each point
    for rng in ("1d", "30d"):
        br = c.get(f"/api/v1/charts/slos/{slo_name}/burn-rates?range={rng}").json()
        names = list(br["burn_rates"])
        assert names == ["1h", "6h", "1d", "3d"]
        assert [x["threshold"] for x in br["conditions"]][:2] in ([14.4, 6.0], [pytest.approx(13.44), pytest.approx(5.6)]) or br["conditions"]
        for i, x in enumerate(br["x"]):
            st = evaluate_slo(slo, source(), minute_to_datetime(_minute(x)))
            for n in names:
                assert br["burn_rates"][n][i] == _f(st.burn_rate(n)), (rng, x, n)

    # SLI and counts per step: the engine's counts of the window [a, b)
    for q in ("range=6h", "from=2026-11-18T00:00:00Z&to=2026-11-20T12:00:00Z"):
        sl = c.get(f"/api/v1/charts/slos/{slo_name}/sli?{q}").json()
        bounds = [_minute(x) for x in sl["x"]]
        step = bounds[1] - bounds[0]
        starts = [bounds[0] - step] + bounds[:-1]
        for a, b, g, v, sli in zip(starts, bounds, sl["good"], sl["valid"], sl["sli"]):
            st = evaluate_slo(slo, source(), minute_to_datetime(b), span=covered_span(slo, Span(a, b, b, True), cov), coverage=cov)
            assert (g, v) == (st.window_counts.good, st.window_counts.valid), (q, a, b)
            assert sli == _f(st.sli)


def test_dashboard_error_rate_is_the_availability_slos_error_ratio(server, engine):
    """The API dashboard's 5xx share per step is 1 - the engine's SLI of api-availability over the
    same step; its p95 is Prometheus' histogram_quantile (the alert engine's) of the same buckets."""
    from decimal import Decimal

    from vigil.alerting.rules import histogram_quantile as prom_quantile
    from vigil.slo.evaluate import evaluate_slo, slo_coverage
    from vigil.slo.windows import Span, minute_to_datetime
    from vigil.telemetry.ingest import DOCUMENTED_BOUNDS, INF_NS

    loaded, source = engine
    slo = loaded.spec.slo("api-availability")
    c = login(server, "viewer")
    err = c.get("/api/v1/dashboards/api/panels/api-error-rate?range=7d").json()
    pts = err["series"][0]["points"]
    assert len(pts) == 169
    cov = slo_coverage(slo, source())
    for (x, v), (prev, _) in zip(pts[1:], pts[:-1]):
        a, b = _minute(prev), _minute(x)
        st = evaluate_slo(slo, source(), minute_to_datetime(b), span=Span(a, b, b, True, cov.minute), coverage=cov)
        assert v == (None if st.sli is None else pytest.approx(float(1 - st.sli), abs=1e-15)), x
    assert max(v for _, v in pts if v is not None) > 0.04  # the spike is on the chart
    lat = c.get("/api/v1/dashboards/api/panels/api-latency?range=1h").json()
    p95 = lat["series"][1]
    assert p95["label"] == "p95"
    s = source()
    from vigil.selector import parse_selector

    sel = parse_selector('http_request_duration_seconds{service="api"}')
    checked = 0
    for (x, v), (prev, _) in list(zip(p95["points"][1:], p95["points"][:-1]))[-6:]:
        a, b = _minute(prev), _minute(x)
        buckets = dict(s.observation_buckets(sel, a, b))
        layout = [le for le, since in s.bucket_bounds().items() if since <= a]  # the store's 2% layout
        assert set(int(Decimal(str(le)) * 10**9) for le in DOCUMENTED_BOUNDS) <= set(layout)
        for le in layout:
            buckets.setdefault(le, 0)
        dec = [(Decimal("Infinity") if le >= INF_NS else Decimal(le) / Decimal(10**9), n) for le, n in sorted(buckets.items())]
        want = prom_quantile(Decimal("0.95"), dec)
        assert v == (None if want is None else float(want)), x  # the last minute holds nothing yet: a gap on both sides
        checked += want is not None
    assert checked >= 4


class _ProtocolOnly:
    """The embedded source seen only through the Source protocol (no batched store read)."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def __getattr__(self, name):
        if name in ("store", "ids"):
            raise AttributeError(name)
        return getattr(self._inner, name)


@pytest.mark.parametrize("rng", ["1h", "6h", "1d", "30d"])
def test_batched_store_reads_equal_the_protocol_path(engine, rng):
    """The one-query reads of the embedded store (vigil.dashboards.fast) give the numbers the
    Source protocol gives, for every panel and SLO chart."""
    from vigil.clock import parse_time
    from vigil.dashboards.series import panel_series, range_grid
    from vigil.dashboards.slo_charts import burn_rates, sli_steps
    from vigil.slo.windows import now_minute

    loaded, source = engine
    at = parse_time(NOW)
    grid = range_grid(rng, now_minute(at))
    for d in loaded.spec.dashboards:
        for p in d.panels:
            assert panel_series(source(), p, grid) == panel_series(_ProtocolOnly(source()), p, grid), (rng, p.title)
    for slo in loaded.spec.slos:
        if slo.sli.freshness is None:
            assert burn_rates(slo, source(), at, grid) == burn_rates(slo, _ProtocolOnly(source()), at, grid), (rng, slo.name)
            assert sli_steps(slo, source(), at, grid) == sli_steps(slo, _ProtocolOnly(source()), at, grid), (rng, slo.name)


def test_alerts_page_and_the_slos_alerts(server):
    viewer, deployer = login(server, "viewer"), login(server, "deployer")
    page = viewer.get("/alerts").text
    assert "api-availability-burn" in page and "🔔 firing" in page  # the spike's burn-rate pages fire
    assert "index rebuild" in page and "token:ops" in page  # the silence
    assert "silence…" not in page and 'action="/alerts/silences"' not in page  # a viewer cannot silence
    page = deployer.get("/alerts").text
    link = page.split('href="/alerts?silence=')[1].split('"')[0]
    prefilled = deployer.get("/alerts?silence=" + link).text
    assert '>alertname=&#34;api-availability-burn&#34;\nservice=&#34;api&#34;</textarea>' in prefilled
    slo = viewer.get("/slos/api-availability").text
    assert slo.count("api-availability-burn") == 2 and "No alert of this SLO has fired" not in slo
    assert "No alert of this SLO has fired" in viewer.get("/slos/checkout-success").text


def test_deploys_page_shows_verdicts_and_canary_runs(server):
    page = login(server, "viewer").get("/deploys").text
    assert "r-42" in page and "✔ pass" in page and "3 statements, additive" in page  # the migration verdict
    assert "Run #1 api r-42: rolled_back" in page and "rolled back at 25%" in page
    assert page.count("· judge") == 2 and "verdict fail · score 0" in page  # its steps with their scores
    assert "✖ frozen" in page and "⚑ security: CVE-2026-1234 patch" in page  # the gate log with the override


class _PlainFreshness:
    """The embedded source without its gauge summary: freshness slices classified from every minute."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def __getattr__(self, name):
        if name == "gauge_summary":
            raise AttributeError(name)
        return getattr(self._inner, name)


@pytest.mark.parametrize("rng", ["1d", "7d"])
def test_freshness_from_the_store_summary_equals_the_plain_engine_on_30_days(engine, rng):
    """The overview's statuses and the freshness SLO's charts, read through the store's per-hour
    summary of the gauge (issue 9, speed), are the plain engine's over every minute."""
    from vigil.clock import parse_time
    from vigil.dashboards.series import range_grid
    from vigil.dashboards.slo_charts import burn_rates, burndown, sli_steps
    from vigil.slo.evaluate import evaluate_slos
    from vigil.slo.windows import now_minute

    loaded, source = engine
    at = parse_time(NOW)
    fast = [s.to_dict() for s in evaluate_slos(loaded.spec.slos, source(), at)]
    assert fast == [s.to_dict() for s in evaluate_slos(loaded.spec.slos, _PlainFreshness(source()), at)]
    grid = range_grid(rng, now_minute(at))
    fresh = [s for s in loaded.spec.slos if s.sli.freshness is not None]
    assert fresh
    for slo in fresh:
        assert burndown(slo, source(), at) == burndown(slo, _PlainFreshness(source()), at)
        assert burn_rates(slo, source(), at, grid) == burn_rates(slo, _PlainFreshness(source()), at, grid)
        assert sli_steps(slo, source(), at, grid) == sli_steps(slo, _PlainFreshness(source()), at, grid)
