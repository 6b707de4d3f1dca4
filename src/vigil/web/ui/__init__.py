"""The web UI served by ``vigil serve``: server-rendered pages (Jinja2) with plotly charts, each
chart drawn from a JSON endpoint of the API, and Swagger UI at ``/docs``; every asset is served
from installed packages (no CDN).

Pages need a session (``/login`` with a named token, or the single admin token); the chart
endpoints under ``/api/v1`` take the session cookie or ``Authorization: Bearer``. Viewers read;
deployers also add and expire silences; admins also see and revoke the UI's sessions. Every form
carries a CSRF token. :func:`install` adds it all to the API app (one call in ``create_app``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Callable
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

from vigil import __version__
from vigil.auth import ROLES, Identity, Role, Tokens
from vigil.clock import Clock, FakeClock, parse_time
from vigil.errors import AuthError, ForbiddenError, UsageError, VigilError
from vigil.spec import LoadedSpec
from vigil.store import Store
from vigil.web.ui import data
from vigil.web.ui.sessions import COOKIE, LOGIN_COOKIE, Sessions, same

HERE = Path(__file__).parent
STATIC = HERE / "static"
MAX_FORM = 16 * 1024
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
NAV = [
    ("overview", "/", "Overview"),
    ("dashboards", "/dashboards", "Dashboards"),
    ("deploys", "/deploys", "Deploys"),
    ("dr", "/dr", "DR"),
    ("alerts", "/alerts", "Alerts"),
    ("traces", "/traces", "Traces"),
]
RANGE_CHOICES = ("1h", "6h", "1d", "7d", "30d")
TRACE_SINCE = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "1d": 86400, "7d": 7 * 86400}
"""The traces list's ``?since=`` choices (seconds)."""
UI_ROLES: dict[tuple[str, str], Role] = {
    ("POST", "/alerts/silences"): "deployer",
    ("POST", "/alerts/silences/{ident}/expire"): "deployer",
    ("POST", "/sessions/{sid_hash}/revoke"): "admin",
}
"""The role each UI action needs (every page needs a viewer session)."""


def _env():
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["pct"] = lambda v, d=3: "–" if v is None else f"{v * 100:.{d}f}%"
    env.filters["num"] = lambda v, d=2: "–" if v is None else f"{v:,.{d}f}"
    env.filters["dur"] = _dur
    return env


def _dur(seconds: Any) -> str:
    if seconds is None:
        return "–"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    if s < 86400 * 2:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def swagger_dir() -> Path:
    """Swagger UI 5 from the swagger-ui-py package (swagger-ui-bundle ships 4.15, which cannot
    render FastAPI's OpenAPI 3.1 document)."""
    import swagger_ui

    return Path(swagger_ui.__file__).parent / "static"


def install(app: FastAPI, loaded: LoadedSpec, store: Store, tokens: Tokens, clock: Clock, errors: Callable[..., dict]) -> Sessions:
    """Add the UI's pages, chart endpoints, assets and /docs to ``app``."""
    sessions = Sessions(tokens)
    env = _env()
    spec = loaded.spec

    # FastAPI's own /docs loads Swagger UI from a CDN: replaced by a local copy
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) not in ("/docs", "/docs/oauth2-redirect", "/redoc")]

    def client_of(request: Request) -> str:
        return request.client.host if request.client else "?"

    def session_of(request: Request):
        return sessions.get(request.cookies.get(COOKIE))

    def secure(request: Request) -> bool:
        return request.url.scheme == "https"

    def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        s = session_of(request)
        html = env.get_template(name).render(
            nav=NAV, session=s, version=__version__, path=request.url.path, can=lambda role: s is not None and s.identity().can(role),
            spec_path=str(loaded.path or ""), **ctx,
        )
        return HTMLResponse(html, status_code=status, headers=_page_headers())

    def error_page(request: Request, e: VigilError) -> HTMLResponse:
        return render(request, "error.html", status=e.http_status, error=e.to_dict(), active=None)

    def need_session(request: Request):
        s = session_of(request)
        if s is None:
            nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return None, RedirectResponse(f"/login?next={quote(nxt, safe='')}", status_code=303)
        return s, None

    def chart_auth(request: Request) -> Identity:
        """A chart endpoint takes a Bearer token or the UI's session cookie (viewer or above)."""
        h = request.headers.get("authorization", "")
        scheme, _, given = h.partition(" ")
        if scheme.lower() == "bearer" and given.strip():
            who = tokens.authenticate(given.strip())
        else:
            s = session_of(request)
            who = s.identity() if s else None
        if who is None:
            raise AuthError("missing or wrong API token", hint="send Authorization: Bearer <token>, or sign in at /login")
        request.state.identity = who
        return who

    ChartAuth = Depends(chart_auth)

    def now() -> datetime:
        return clock.now()

    def at_of(at: str | None) -> datetime:
        return parse_time(at, now=now()) if at else now()

    async def form_of(request: Request) -> dict[str, str]:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM:
                raise UsageError("the form is too large")
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        if ctype not in ("application/x-www-form-urlencoded", ""):
            raise UsageError("forms are sent as application/x-www-form-urlencoded")
        try:
            parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
        except (UnicodeDecodeError, ValueError):
            raise UsageError("cannot read the form") from None
        return {k: v[-1] for k, v in parsed.items()} | {f"{k}[]": "\x1f".join(v) for k, v in parsed.items()}

    def same_origin(request: Request) -> bool:
        origin = request.headers.get("origin")
        if origin is None:  # not sent by this client (browsers send it with every form post)
            return True
        host = request.headers.get("host", "")
        o = urlsplit(origin)
        return o.netloc == host

    async def action(request: Request, route: str):
        """A form post from a page: a live session, the same origin, the session's CSRF token and
        the role the action needs. Returns (session, form) or an error response."""
        s = session_of(request)
        if s is None:
            return None, None, render(request, "error.html", status=401, active=None,
                                      error={"code": "auth", "message": "you are not signed in (or the session expired)", "hint": "sign in at /login"})
        form = await form_of(request)
        if not same_origin(request) or not same(form.get("csrf"), s.csrf):
            return None, None, render(request, "error.html", status=403, active=None,
                                      error={"code": "csrf", "message": "the form's CSRF token is missing or wrong", "hint": "reload the page and send the form again"})
        need = UI_ROLES.get(("POST", route), "viewer")
        if not s.identity().can(need):
            return None, None, render(request, "error.html", status=403, active=None,
                                      error={"code": "forbidden", "message": f"{s.name} has role {s.role}; this needs {need} or above",
                                             "hint": "sign in with a token of that role"})
        return s, form, None

    # -- assets and docs ---------------------------------------------------------------------------

    @app.get("/ui-static/plotly.min.js", include_in_schema=False)
    def plotly_asset() -> FileResponse:
        return FileResponse(plotly_js(), media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/ui-static/{name}", include_in_schema=False)
    def ui_asset(name: str) -> Response:
        p = STATIC / name
        if "/" in name or name.startswith(".") or not p.is_file():
            return JSONResponse({"error": {"code": "not-found", "message": f"no asset {name!r}", "hint": None}}, status_code=404)
        mt = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml", ".png": "image/png"}.get(p.suffix, "application/octet-stream")
        return FileResponse(p, media_type=mt, headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/ui-static/swagger/{name}", include_in_schema=False)
    def swagger_asset(name: str) -> Response:
        allowed = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript", "favicon-32x32.png": "image/png"}
        if name not in allowed:
            return JSONResponse({"error": {"code": "not-found", "message": f"no asset {name!r}", "hint": None}}, status_code=404)
        return FileResponse(swagger_dir() / name, media_type=allowed[name], headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        html = env.get_template("docs.html").render(version=__version__)
        return HTMLResponse(html, headers={**_page_headers(), "Content-Security-Policy": PAGE_CSP.replace("img-src 'self' data:", "img-src 'self' data:")})

    @app.get("/api", include_in_schema=False)
    @app.get("/api/v1", include_in_schema=False)
    def api_index() -> dict:
        routes = []
        for r in app.routes:
            path = getattr(r, "path", "")
            if (path.startswith("/api/") or path.startswith("/v1/")) and getattr(r, "include_in_schema", False):
                for m in sorted(getattr(r, "methods", []) or []):
                    routes.append({"method": m, "path": path, "summary": getattr(r, "summary", None)})
        return {
            "name": "vigil",
            "version": __version__,
            "docs": "/docs",
            "openapi": "/openapi.json",
            "auth": "Authorization: Bearer <token> on every /api route (the UI's session cookie works for GET routes of the UI's charts)",
            "roles": list(ROLES),
            "routes": sorted(routes, key=lambda x: (x["path"], x["method"])),
        }

    # -- login -------------------------------------------------------------------------------------

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request, next: str = "/") -> HTMLResponse:  # noqa: A002
        import secrets

        tok = secrets.token_urlsafe(24)
        resp = render(request, "login.html", active=None, csrf=tok, next=_safe_next(next), message=None)
        resp.set_cookie(LOGIN_COOKIE, tok, httponly=True, samesite="strict", secure=secure(request), path="/login", max_age=3600)
        return resp

    @app.post("/login", include_in_schema=False)
    async def login_post(request: Request) -> Response:
        import secrets

        client = client_of(request)
        form = await form_of(request)
        nxt = _safe_next(form.get("next", "/"))

        def again(status: int, message: str) -> HTMLResponse:
            tok = secrets.token_urlsafe(24)
            resp = render(request, "login.html", status=status, active=None, csrf=tok, next=nxt, message=message)
            resp.set_cookie(LOGIN_COOKIE, tok, httponly=True, samesite="strict", secure=secure(request), path="/login", max_age=3600)
            return resp

        if not same_origin(request) or not same(form.get("csrf"), request.cookies.get(LOGIN_COOKIE)):
            return again(403, "The sign-in form expired or came from another site: sign in again.")
        if sessions.too_many_failures(client):
            return again(429, "Too many failed sign-ins from this address: wait a minute.")
        got = sessions.login(form.get("token", "").strip(), client)
        if got is None:
            sessions.failed(client)
            return again(401, "That token is not accepted by this server.")
        sid, _s = got
        resp = RedirectResponse(nxt, status_code=303)
        resp.set_cookie(COOKIE, sid, httponly=True, samesite="lax", secure=secure(request), path="/", max_age=sessions.lifetime_s)
        resp.delete_cookie(LOGIN_COOKIE, path="/login")
        return resp

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        s, form, err = await action(request, "/logout")
        if err is not None:
            return err
        sessions.logout(request.cookies.get(COOKIE))
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    # -- pages -------------------------------------------------------------------------------------

    def picker(request: Request) -> dict:
        q = request.query_params
        return {"range": q.get("range") or ("custom" if q.get("from") else "1d"), "from": q.get("from", ""), "to": q.get("to", ""),
                "refresh": q.get("refresh", "0"), "choices": RANGE_CHOICES, "query": _range_query(q)}

    def page(name: str, fn: Callable[..., dict], with_picker: bool = True):
        def handler(request: Request) -> Response:
            s, redirect = need_session(request)
            if redirect is not None:
                return redirect
            try:
                ctx = fn(request)
                if any(k in request.query_params for k in ("range", "from", "to")):
                    data.grid_for(now(), request.query_params.get("range"), request.query_params.get("from"), request.query_params.get("to"))
            except VigilError as e:
                return error_page(request, e)
            return render(request, name, picker=picker(request) if with_picker else None, csrf=s.csrf, **ctx)

        return handler

    def overview_ctx(request: Request) -> dict:
        service = request.query_params.get("service") or None
        d = data.overview(loaded, store, now(), service)
        return {"active": "overview", "data": d, "services": sorted(spec.services), "service": service}

    def slo_ctx(request: Request) -> dict:
        name = request.path_params["name"]
        slo = data.slo_or_404(loaded, name)
        from vigil.slo.evaluate import evaluate_slos
        from vigil.telemetry.sources import open_source

        st = evaluate_slos([slo], open_source(spec.telemetry, store), now())[0].to_dict()
        gate = list(_gate_rows(store, slo.service))
        return {"active": "overview", "slo": slo, "slo_status": st, "gate": gate, "alerts": data.slo_alerts(store, name),
                "qname": quote(name, safe="")}

    def dashboards_ctx(request: Request) -> dict:
        return {"active": "dashboards", "dashboards": spec.dashboards}

    def dashboard_ctx(request: Request) -> dict:
        d = data.dashboard_or_404(loaded, request.path_params["name"])
        return {"active": "dashboards", "dashboard": d, "dashboards": spec.dashboards}

    def deploys_ctx(request: Request) -> dict:
        return {"active": "deploys", "data": data.deploys(loaded, store)}

    def dr_ctx(request: Request) -> dict:
        return {"active": "dr", "data": data.dr(loaded, store, now()), "drills_spec": spec.drills}

    def drill_ctx(request: Request) -> dict:
        try:
            run_id = int(request.path_params["run_id"])
        except ValueError:
            raise UsageError("a drill run id is a number") from None
        return {"active": "dr", "run": data.drill_report(store, run_id)}

    def alerts_ctx(request: Request) -> dict:
        prefill = (request.query_params.get("silence") or "")[:500]  # from an alert's "silence…" link
        return {"active": "alerts", "data": data.alerts(store, now()), "pinned": isinstance(clock, FakeClock), "prefill": prefill}

    def traces_ctx(request: Request) -> dict[str, Any]:
        from vigil.web.ui import waterfall

        q = request.query_params
        service = (q.get("service") or "").strip()[:128] or None
        since = q.get("since") or "1d"
        if since not in TRACE_SINCE:
            raise UsageError(f"since {since[:16]!r} is not one of {', '.join(TRACE_SINCE)}", hint="pick one of the list's choices")
        t = now()
        since_ns = int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000 - TRACE_SINCE[since] * 1_000_000_000
        return {"active": "traces", "traces": waterfall.recent(store, since_ns, service), "service": service, "since": since,
                "since_choices": list(TRACE_SINCE), "services": sorted(spec.services), "limit": waterfall.RECENT_LIMIT}

    def trace_ctx(request: Request) -> dict[str, Any]:
        from vigil.errors import NotFoundError
        from vigil.traces.routes import check_trace_id
        from vigil.traces.store import read_trace
        from vigil.web.ui import waterfall

        raw = request.path_params["trace_id"]
        try:
            tid = check_trace_id(raw)
        except UsageError:
            raise NotFoundError(f"{raw[:64]!r} is not a trace id", hint="a trace id is 32 hex digits; pick one from /traces") from None
        tree = read_trace(store, tid)
        if not tree.spans:
            raise NotFoundError(f"no span of trace {tid} is stored",
                                hint="traces are kept for telemetry.traces.retention; check the id and that the exporter points at this server")
        d = tree.to_dict()
        return {"active": "traces", "trace": d, "rows": waterfall.bars(d), "dur_ms": waterfall.dur_ms,
                "errors": sum(1 for x in d["spans"] if x["status"] == "error")}

    def sessions_ctx(request: Request) -> dict:
        s = session_of(request)
        if s is None or not s.identity().can("admin"):
            raise ForbiddenError("the sessions page needs an admin", hint="sign in with an admin token")
        return {"active": None, "sessions": sessions.list()}

    for path, tmpl, fn in (
        ("/", "overview.html", overview_ctx),
        ("/slos/{name}", "slo.html", slo_ctx),
        ("/dashboards", "dashboards.html", dashboards_ctx),
        ("/dashboards/{name}", "dashboard.html", dashboard_ctx),
        ("/deploys", "deploys.html", deploys_ctx),
        ("/dr", "dr.html", dr_ctx),
        ("/dr/drills/{run_id}", "drill.html", drill_ctx),
        ("/alerts", "alerts.html", alerts_ctx),
        ("/sessions", "sessions.html", sessions_ctx),
    ):
        app.add_api_route(path, page(tmpl, fn), methods=["GET"], include_in_schema=False, response_class=HTMLResponse)
    for path, tmpl, fn in (("/traces", "traces.html", traces_ctx), ("/traces/{trace_id}", "trace.html", trace_ctx)):
        app.add_api_route(path, page(tmpl, fn, with_picker=False), methods=["GET"], include_in_schema=False, response_class=HTMLResponse)

    # -- actions -----------------------------------------------------------------------------------

    @app.post("/alerts/silences", include_in_schema=False)
    async def silence_add(request: Request) -> Response:
        s, form, err = await action(request, "/alerts/silences")
        if err is not None:
            return err
        from vigil.alerting.routes import window
        from vigil.alerting.silences import add_silence, parse_matchers

        try:
            if isinstance(clock, FakeClock):
                raise UsageError("this server runs on a pinned clock (VIGIL_NOW); silences are recorded at the real clock",
                                 hint="restart vigil serve without VIGIL_NOW")
            matchers = [m.strip() for m in form.get("matchers", "").replace("\r", "").split("\n") if m.strip()]
            if not matchers:
                raise UsageError("a silence needs at least one matcher, like service=\"search\"")
            reason = form.get("reason", "").strip()
            if not reason:
                raise UsageError("a silence needs a reason")
            t = clock.now()
            begin, end = window(t, form.get("starts") or None, form.get("duration") or None, None)
            add_silence(store, parse_matchers(matchers), starts_at=begin, ends_at=end, created_by=f"ui:{s.name}", reason=reason[:2000], now=t)
        except VigilError as e:
            return error_page(request, e)
        return RedirectResponse("/alerts#silences", status_code=303)

    @app.post("/alerts/silences/{ident}/expire", include_in_schema=False)
    async def silence_expire(request: Request, ident: str) -> Response:
        s, form, err = await action(request, "/alerts/silences/{ident}/expire")
        if err is not None:
            return err
        from vigil.alerting.silences import expire_silence

        try:
            if isinstance(clock, FakeClock):
                raise UsageError("this server runs on a pinned clock (VIGIL_NOW); expiring a silence is recorded at the real clock")
            expire_silence(store, ident[:40], by=f"ui:{s.name}", now=clock.now())
        except VigilError as e:
            return error_page(request, e)
        return RedirectResponse("/alerts#silences", status_code=303)

    @app.post("/sessions/{sid_hash}/revoke", include_in_schema=False)
    async def session_revoke(request: Request, sid_hash: str) -> Response:
        s, form, err = await action(request, "/sessions/{sid_hash}/revoke")
        if err is not None:
            return err
        sessions.revoke_hash(sid_hash[:64])
        return RedirectResponse("/sessions", status_code=303)

    # -- chart and page data endpoints (JSON) -------------------------------------------------------

    errs = errors(400, 401, 404)

    @app.get("/api/v1/overview", summary="The UI's overview: every SLO's status and each service's gate answer (what-if)",
             dependencies=[ChartAuth], responses=errs)
    def api_overview(at: At = None, service: Annotated[str | None, Query(max_length=128)] = None) -> dict:
        return data.overview(loaded, store, at_of(at), service)

    @app.get("/api/v1/charts/slos/{name}/burndown", summary="An SLO's budget burn-down over its window against the ideal line",
             dependencies=[ChartAuth], responses=errs)
    def api_burndown(name: str, at: At = None) -> dict:
        from vigil.dashboards.slo_charts import burndown
        from vigil.telemetry.sources import open_source

        slo = data.slo_or_404(loaded, name)
        return burndown(slo, open_source(spec.telemetry, store, slo=slo), at_of(at))

    @app.get("/api/v1/charts/slos/{name}/burn-rates", summary="An SLO's burn rates over time with the multiwindow thresholds",
             dependencies=[ChartAuth], responses=errs)
    def api_burn_rates(name: str, range: Range = None, frm: From = None, to: To = None, at: At = None) -> dict:  # noqa: A002
        from vigil.dashboards.slo_charts import burn_rates
        from vigil.telemetry.sources import open_source

        slo = data.slo_or_404(loaded, name)
        when = at_of(at)
        grid, picked = data.grid_for(when, range, frm, to)
        return {**burn_rates(slo, open_source(spec.telemetry, store, slo=slo), when, grid), **picked}

    @app.get("/api/v1/charts/slos/{name}/sli", summary="An SLO's SLI and good/valid counts per step",
             dependencies=[ChartAuth], responses=errs)
    def api_sli(name: str, range: Range = None, frm: From = None, to: To = None, at: At = None) -> dict:  # noqa: A002
        from vigil.dashboards.slo_charts import sli_steps
        from vigil.telemetry.sources import open_source

        slo = data.slo_or_404(loaded, name)
        when = at_of(at)
        grid, picked = data.grid_for(when, range, frm, to)
        return {**sli_steps(slo, open_source(spec.telemetry, store, slo=slo), when, grid), **picked}

    @app.get("/api/v1/dashboards", summary="The spec's dashboards and their panels", dependencies=[ChartAuth], responses=errors(401))
    def api_dashboards() -> dict:
        return {"dashboards": [
            {"name": d.name, "title": d.title, "description": d.description, "service": d.service,
             "panels": [{"slug": p.slug, "title": p.title, "unit": p.unit,
                         "url": f"/api/v1/dashboards/{d.name}/panels/{p.slug}"} for p in d.panels]}
            for d in spec.dashboards
        ]}

    @app.get("/api/v1/dashboards/{name}/panels/{panel}", summary="One dashboard panel's lines over a time range",
             dependencies=[ChartAuth], responses=errs)
    def api_panel(name: str, panel: str, range: Range = None, frm: From = None, to: To = None, at: At = None) -> dict:  # noqa: A002
        grid, picked = data.grid_for(at_of(at), range, frm, to)
        return data.panel_json(loaded, store, name, panel, grid, picked)

    @app.get("/api/v1/deploys", summary="The gate log, migration and canary verdicts, canary runs with their steps",
             dependencies=[ChartAuth], responses=errors(401))
    def api_deploys() -> dict:
        return data.deploys(loaded, store)

    @app.get("/api/v1/charts/canary/{verdict_id}", summary="Baseline and canary distributions of a canary verdict",
             dependencies=[ChartAuth], responses=errs)
    def api_canary(verdict_id: int) -> dict:
        return data.canary_distributions(loaded, store, verdict_id)

    @app.get("/api/v1/dr", summary="Drill history, backup runs and backup status", dependencies=[ChartAuth], responses=errors(400, 401))
    def api_dr(at: At = None) -> dict:
        return data.dr(loaded, store, at_of(at))

    @app.get("/api/v1/charts/drills", summary="RTO and RPO achieved by each drill against the objectives",
             dependencies=[ChartAuth], responses=errors(401))
    def api_drill_chart() -> dict:
        return data.drill_chart(store)

    @app.get("/api/v1/charts/backups", summary="Backup age and archive lag over a time range", dependencies=[ChartAuth], responses=errs)
    def api_backup_chart(range: Range = None, frm: From = None, to: To = None, at: At = None) -> dict:  # noqa: A002
        grid, picked = data.grid_for(at_of(at), range, frm, to)
        return data.backup_chart(loaded, store, grid, picked)

    @app.get("/api/v1/drills/{run_id}/report", summary="A drill's report and its gap register", dependencies=[ChartAuth], responses=errs)
    def api_drill_report(run_id: int) -> dict:
        return data.drill_report(store, run_id)

    return sessions


Range = Annotated[str | None, Query(max_length=8, description="1h, 6h, 1d (default), 7d or 30d")]
From = Annotated[str | None, Query(alias="from", max_length=64, description="custom range start: RFC 3339 or now-3d")]
To = Annotated[str | None, Query(max_length=64, description="custom range end")]
At = Annotated[str | None, Query(max_length=64, description="evaluate at this time (default now)")]


def _gate_rows(store: Store, service: str) -> list[dict]:
    from vigil.deploy.gate import GateRecord

    return [GateRecord.from_row(r).to_dict() for r in store.gate_decisions(service=service, limit=50)]


def _safe_next(nxt: str | None) -> str:
    """Only a local path: never another site (an open redirect)."""
    if not nxt or not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt or "\n" in nxt or "\r" in nxt:
        return "/"
    return nxt[:2000]


def _range_query(q: Any) -> str:
    parts = []
    for k in ("range", "from", "to"):
        v = q.get(k)
        if v:
            parts.append(f"{k}={quote(v, safe='')}")
    return "&".join(parts)


def _page_headers() -> dict[str, str]:
    return {
        "Content-Security-Policy": PAGE_CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


__all__ = ["install", "UI_ROLES", "Sessions"]
