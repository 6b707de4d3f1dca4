"""vigil probe ssrf|ssti against real loopback apps: a deliberately vulnerable one (every
vulnerability found), a naive-blocklist one (the spellings that bypass it found) and the fixed twin
(nothing found). The apps' own outbound network is a sandbox (tests/apps/vulnapp.py): nothing any
test sends leaves loopback."""

from __future__ import annotations

import http.server
import ipaddress
import json
import random
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from vigil.security.probes import detect, to_sarif
from vigil.security.probes.canary import Canary
from vigil.security.probes.engine import ProbeOptions, Target, parse_retry_after, run_probe, target_problem
from vigil.security.probes.payloads import ipv4_spellings, ssrf_payloads, ssti_payloads
from vigil.security.sarifin import parse_sarif

APP = Path(__file__).resolve().parent / "apps" / "vulnapp.py"
FAST = ProbeOptions(timeout=5.0, delay=0.6, oob_wait=0)


def _start(mode: str):
    p = subprocess.Popen([sys.executable, str(APP), "--mode", mode], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()  # bounded: the app prints its port at once or exits
    assert line.startswith("PORT "), line
    return p, f"http://127.0.0.1:{int(line.split()[1])}"


@pytest.fixture(scope="module")
def apps():
    started = {m: _start(m) for m in ("vulnerable", "naive", "fixed")}
    yield {m: base for m, (_, base) in started.items()}
    for p, _ in started.values():
        p.kill()
        p.wait(timeout=10)


@pytest.fixture
def canary():
    with Canary() as c:
        yield c


def _probe(kind, targets, canary, seed=7, **kw):
    return run_probe(kind, targets, canary=canary, options=kw.pop("options", FAST), rand=random.Random(seed), at="2026-12-01T00:00:00Z", **kw)


def _families(finding) -> set[str]:
    return {h.family for h in finding.hits}


# --- the vulnerable app: every vulnerability found -----------------------------------------------


def test_full_read_ssrf_is_found_by_every_family_with_metadata_as_critical(apps, canary):
    rep = _probe("ssrf", [Target(apps["vulnerable"] + "/preview", ("url",))], canary)
    tr = rep.targets[0]
    assert tr.complete and len(tr.findings) == 1
    f = tr.findings[0]
    assert f.kind == "ssrf" and f.param == "url" and f.severity == "critical" and f.confidence == "confirmed"
    assert {"canary", "canary-spelling", "metadata", "redirect", "scheme", "internal-port", "timing"} <= _families(f)
    by_payload = {h.payload: h for h in f.hits}
    meta = by_payload["http://169.254.169.254/latest/meta-data/"]
    assert meta.severity == "critical" and meta.evidence[0].kind == "reflection" and "aws-imds listing" in meta.evidence[0].detail
    # every spelling of the metadata address reached it
    for _, spelled in ipv4_spellings("169.254.169.254"):
        assert f"http://{spelled}/latest/meta-data/" in by_payload, spelled
    assert by_payload["file:///etc/passwd"].severity == "critical"
    # the canary saw the direct payload's own token, and its body came back
    direct = next(h for h in f.hits if h.family == "canary")
    assert {e.kind for e in direct.evidence} == {"oob", "reflection"}
    tok = direct.payload.rsplit("/", 1)[1]
    assert canary.hits_for(tok)
    timing = next(h for h in f.hits if h.family == "timing")
    assert {e.kind for e in timing.evidence} == {"timing", "oob"}
    # the redirect to metadata was followed: the canary saw the first hop, metadata came back
    redirects = [h for h in f.hits if h.family == "redirect" and h.severity == "critical"]
    assert len(redirects) == 2 and all({e.kind for e in h.evidence} == {"oob", "reflection"} for h in redirects)


def test_blind_ssrf_is_found_by_the_canary_and_by_timing_only(apps, canary):
    rep = _probe("ssrf", [Target(apps["vulnerable"] + "/hook", ("callback",))], canary)
    (f,) = rep.findings
    assert f.confidence == "confirmed" and f.severity == "high"  # nothing read back: not critical
    kinds = {e.kind for h in f.hits for e in h.evidence}
    assert kinds == {"oob", "timing"}  # the answer is always "202 queued": no reflection, no error
    assert "metadata" not in _families(f)


def test_ssti_in_a_query_parameter_is_confirmed_and_fingerprinted_as_jinja2(apps, canary):
    rep = _probe("ssti", [Target(apps["vulnerable"] + "/greet", ("name",))], canary)
    (f,) = rep.findings
    assert f.kind == "ssti" and f.severity == "critical" and f.confidence == "confirmed" and f.engine == "Jinja2"
    best = f.best
    assert "{{" in best.payload and best.evidence[0].kind == "reflection"
    # the product is of the payload's own random factors
    expr = best.payload.split("{{")[1].split("}}")[0]
    a, b = (int(x) for x in expr.split("*"))
    assert str(a * b) in best.evidence[0].detail
    # error probes found the Jinja2 syntax error page too
    assert any(h.family == "error" and h.engine == "Jinja2" and h.confidence == "tentative" for h in f.hits)


def test_ssti_in_a_post_form_field(apps, canary):
    rep = _probe("ssti", [Target(apps["vulnerable"] + "/render", ("subject",), method="POST", body="form")], canary)
    (f,) = rep.findings
    assert f.param == "subject" and f.method == "POST" and f.confidence == "confirmed" and f.engine == "Jinja2"


def test_a_naive_blocklist_is_bypassed_by_other_spellings_and_the_report_says_which(apps, canary):
    rep = _probe("ssrf", [Target(apps["naive"] + "/preview", ("url",))], canary)
    (f,) = rep.findings
    worked = {h.payload for h in f.hits if h.family == "metadata"}
    assert "http://169.254.169.254/latest/meta-data/" not in worked  # the blocklist stops the written form
    assert "http://metadata.google.internal/computeMetadata/v1beta1/instance/?recursive=true" not in worked
    assert "http://2852039166/latest/meta-data/" in worked and "http://[::ffff:a9fe:a9fe]/latest/meta-data/" in worked
    # a redirect through the canary names no metadata address, so the blocklist lets it through
    assert any(h.family == "redirect" and h.severity == "critical" for h in f.hits)
    assert f.severity == "critical"


# --- the fixed twin: nothing ----------------------------------------------------------------------


@pytest.mark.parametrize("path,param,method,body", [("/preview", "url", "GET", "query"), ("/hook", "callback", "GET", "query")])
def test_the_fixed_twin_has_no_ssrf(apps, canary, path, param, method, body):
    rep = _probe("ssrf", [Target(apps["fixed"] + path, (param,), method, body)], canary)
    assert rep.complete and rep.findings == []
    assert canary.hits == []  # it never fetched anything the probe chose


@pytest.mark.parametrize("path,param,method,body", [("/greet", "name", "GET", "query"), ("/render", "subject", "POST", "form")])
def test_the_fixed_twin_has_no_ssti(apps, canary, path, param, method, body):
    rep = _probe("ssti", [Target(apps["fixed"] + path, (param,), method, body)], canary)
    assert rep.complete and rep.findings == [] and rep.targets[0].requests >= 2 + len(ssti_payloads(random.Random(0)))


# --- the command ------------------------------------------------------------------------------------


def test_cli_finds_exits_1_and_writes_sarif_the_ledger_files_as_probe(apps, cli, tmp_path, contract_spec):
    sarif = tmp_path / "p.sarif"
    r = cli("probe", "ssti", "--target", apps["vulnerable"] + "/greet", "--param", "name", "--sarif", str(sarif), "--json",
            "--oob-wait", "0", "--seed", "3", "--spec", str(contract_spec))
    assert r.code == 1, r.err
    out = r.json()
    assert out["found"] == 1 and out["complete"] is True and out["cwe"] == "CWE-1336"
    f = out["targets"][0]["findings"][0]
    assert f["cwe"] == "CWE-1336" and f["engine"] == "Jinja2" and "{{" in f["payload"] and f["evidence"][0]["kind"] == "reflection"
    doc = json.loads(sarif.read_text())
    (run,) = parse_sarif(doc)
    assert run.tool == "vigil-probe" and len(run.findings) == 1
    (sf,) = run.findings
    assert sf.severity == "critical" and sf.cwe == ["CWE-1336"] and sf.rule_id == "ssti"
    assert doc["runs"][0]["invocations"][0]["executionSuccessful"] is True
    # into the ledger: kind probe, and the same finding again on a re-run (same fingerprint)
    r = cli("findings", "import", str(sarif), "--service", "api", "--release", "r1", "--json", "--spec", str(contract_spec),
            "--db", f"sqlite:///{tmp_path / 's.db'}")
    assert r.code == 0, r.err
    r2 = cli("probe", "ssti", "--target", apps["vulnerable"] + "/greet", "--param", "name", "--sarif", str(tmp_path / "q.sarif"),
             "--oob-wait", "0", "--seed", "4", "--spec", str(contract_spec))
    assert r2.code == 1
    r = cli("findings", "import", str(tmp_path / "q.sarif"), "--service", "api", "--release", "r1", "--json", "--spec", str(contract_spec),
            "--db", f"sqlite:///{tmp_path / 's.db'}")
    assert r.json()["new_findings"] == 0
    r = cli("findings", "list", "--json", "--spec", str(contract_spec), "--db", f"sqlite:///{tmp_path / 's.db'}")
    (row,) = r.json()["findings"]
    assert row["kind"] == "probe" and row["severity"] == "critical" and row["state"] == "open"


def test_cli_clean_target_exits_0_with_an_empty_sarif_run(apps, cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no vigil.yaml here: the probe needs none
    sarif = tmp_path / "c.sarif"
    r = cli("probe", "ssrf", "--target", apps["fixed"] + "/preview", "--param", "url", "--sarif", str(sarif), "--oob-wait", "0",
            "--delay", "0.5")
    assert r.code == 0, (r.out, r.err)
    assert "CLEAN" in r.out
    doc = json.loads(sarif.read_text())
    assert doc["runs"][0]["results"] == [] and doc["runs"][0]["invocations"][0]["executionSuccessful"] is True
    r = cli("probe", "ssrf", "--target", apps["fixed"] + "/preview", "--param", "url", "--spec", str(tmp_path / "none.yaml"))
    assert r.code == 2 and "none.yaml" in r.err  # a spec named explicitly must exist


def test_cli_refuses_targets_that_are_not_loopback(cli, tmp_path):
    for url in ("http://example.com/x", "http://10.0.0.5/x", "http://169.254.169.254/x", "file:///etc/passwd", "http://2852039166/"):
        r = cli("probe", "ssrf", "--target", url, "--param", "u")
        assert r.code == 2, url
        assert "error:" in r.err and "Traceback" not in r.err
    r = cli("probe", "ssrf", "--target", "http://169.254.169.254/x", "--param", "u", "--allow-target", "169.254.169.254")
    assert r.code == 2 and "metadata" in r.err  # never, whatever is allowed


def test_target_rules():
    assert target_problem("http://127.0.0.1:8080/x", []) is None
    assert target_problem("http://[::1]:8080/x", []) is None
    assert target_problem("http://localhost/x", []) is None
    assert target_problem("http://127.9.9.9/x", []) is None
    assert "not a loopback" in target_problem("http://staging.example.com/x", [])
    assert target_problem("http://staging.example.com/x", ["staging.example.com"]) is None
    assert target_problem("http://10.20.3.4/x", ["10.20.0.0/16"]) is None
    assert "not a loopback" in target_problem("http://10.21.3.4/x", ["10.20.0.0/16"])
    assert "metadata" in target_problem("http://169.254.169.254/", ["169.254.0.0/16"])
    assert "non-standard spelling" in target_problem("http://0x7f000001/", [])
    assert "http" in target_problem("gopher://127.0.0.1/", [])


def test_spec_allows_a_target_and_refuses_metadata_networks(tmp_path, cli):
    from vigil.spec import parse_spec

    s = parse_spec("version: 1\nservices: {api: {}}\nsecurity:\n  probes: {allowed_targets: [staging.example.com, 10.20.0.0/16], delay: 3s}\n")
    assert s.security.probes.allowed_targets == ["staging.example.com", "10.20.0.0/16"]
    from vigil.errors import SpecError

    for bad in ("[169.254.0.0/16]", "[metadata.google.internal]", "['a b']"):
        with pytest.raises(SpecError):
            parse_spec(f"version: 1\nservices: {{api: {{}}}}\nsecurity:\n  probes: {{allowed_targets: {bad}}}\n")
    with pytest.raises(SpecError):
        parse_spec("version: 1\nservices: {api: {}}\nsecurity:\n  probes: {delay: 31s}\n")


# --- external failures: refused, throttled, timed out ----------------------------------------------


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_a_refused_target_is_not_probed_exit_3_and_its_sarif_blocks(cli, tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}/preview"
    sarif = tmp_path / "x.sarif"
    r = cli("probe", "ssrf", "--target", url, "--param", "url", "--sarif", str(sarif), "--json", "--oob-wait", "0")
    assert r.code == 3
    out = r.json()
    assert out["complete"] is False and out["targets"][0]["error"] and out["targets"][0]["requests"] == 2  # one retry
    doc = json.loads(sarif.read_text())
    assert doc["runs"][0]["invocations"][0]["executionSuccessful"] is False
    (run,) = parse_sarif(doc)
    (f,) = run.findings
    assert f.rule_id == "vigil-probe-incomplete" and f.severity == "critical"


class _Flaky(http.server.BaseHTTPRequestHandler):
    """429 (Retry-After: 0) the first time each value is seen, then the vulnerable greeting; or
    always 429 with mode 'always'; or no answer at all for values with 'zq' when mode is 'hang'."""

    seen: set = set()
    mode = "once"
    calls = 0

    def do_GET(self):  # noqa: N802
        from urllib.parse import parse_qs, urlsplit

        type(self).calls += 1
        v = parse_qs(urlsplit(self.path).query).get("name", [""])[0]
        if self.mode == "hang" and "zq" in v:
            threading.Event().wait(3)  # longer than the probe's timeout: the client gives up
            return
        if self.mode == "always" or (self.mode == "once" and v not in self.seen):
            self.seen.add(v)
            self.send_response(429)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        import jinja2

        try:
            b = jinja2.Environment().from_string("Hello " + v).render().encode()
            code = 200
        except Exception as e:  # noqa: BLE001
            b, code = f"{type(e).__module__}.{type(e).__name__}: {e}".encode(), 500
        self.send_response(code)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def log_message(self, *a):
        pass


@pytest.fixture
def flaky():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    _Flaky.seen = set()
    _Flaky.calls = 0
    yield srv
    srv.shutdown()
    srv.server_close()


def test_throttled_answers_are_retried_after_retry_after_and_counted_once(flaky, canary):
    _Flaky.mode = "once"
    waits = []
    rep = _probe("ssti", [Target(f"http://127.0.0.1:{flaky.server_address[1]}/g", ("name",))], canary, sleep=waits.append)
    tr = rep.targets[0]
    assert tr.complete and tr.retries == tr.requests // 2 and waits and set(waits) == {0.0}
    (f,) = tr.findings
    assert f.confidence == "confirmed"
    assert len({h.payload for h in f.hits}) == len(f.hits)  # each working payload once, though each was sent twice


def test_always_throttled_is_incomplete_never_clean(flaky, canary):
    _Flaky.mode = "always"
    rep = _probe("ssti", [Target(f"http://127.0.0.1:{flaky.server_address[1]}/g", ("name",))], canary, sleep=lambda s: None)
    assert not rep.complete and rep.findings == [] and rep.targets[0].error  # the baseline never got an answer
    doc = to_sarif(rep)
    assert doc["runs"][0]["results"][0]["ruleId"] == "vigil-probe-incomplete"


def test_payloads_that_time_out_are_unsent_and_the_report_incomplete(flaky, canary):
    _Flaky.mode = "hang"
    rep = _probe("ssti", [Target(f"http://127.0.0.1:{flaky.server_address[1]}/g", ("name",))], canary,
                 options=ProbeOptions(timeout=0.3, delay=0.5, oob_wait=0))
    tr = rep.targets[0]
    assert not tr.complete and tr.error is None and len(tr.unsent) == len(ssti_payloads(random.Random(0)))
    assert tr.requests == 2 + 2 * len(tr.unsent)  # the baseline, then each payload and its one retry


# --- the pure parts --------------------------------------------------------------------------------


def test_every_spelling_reads_as_the_address():
    for addr in ("169.254.169.254", "127.0.0.1", "10.1.2.3"):
        for name, spelled in ipv4_spellings(addr):
            h = spelled.strip("[]")
            ip = ipaddress.ip_address(h) if ":" in h else ipaddress.ip_address(socket.inet_aton(h))
            if isinstance(ip, ipaddress.IPv6Address):
                ip = ip.ipv4_mapped
            assert str(ip) == addr, (name, spelled)


def test_tokens_and_products_are_unique():
    rnd = random.Random(1)  # one generator per run, as the engine uses
    ps = ssrf_payloads("http://127.0.0.1:9", rnd) + ssti_payloads(rnd)
    toks = [p.token for p in ps]
    assert len(set(toks)) == len(toks)
    refl = [p.reflect for p in ps if p.reflect]
    assert len(set(refl)) == len(refl)


def test_a_signature_already_in_the_baseline_proves_nothing():
    page = "ami-id\ninstance-id\n"  # a page that documents IMDS
    base = detect.make_baseline([detect.Answer(200, page, 0.01)])
    assert detect.new_signatures("metadata", detect.Answer(200, page, 0.01), base) == []
    base2 = detect.make_baseline([detect.Answer(200, "hello", 0.01)])
    assert detect.new_signatures("metadata", detect.Answer(200, page, 0.01), base2) == ["aws-imds listing"]


def test_timing_needs_every_trial_slow():
    base = detect.make_baseline([detect.Answer(200, "", 0.2), detect.Answer(200, "", 0.1)])
    assert detect.timing([1.9, 2.1], 2.0, base) is not None
    assert detect.timing([1.9, 1.7], 2.0, base) is None  # 0.2 + 1.6 = 1.8
    assert detect.timing([], 2.0, base) is None


def test_an_echoed_payload_is_not_reflection():
    a = detect.Answer(200, "you sent zqvglabca{{2*3}}bqz", 0.01)
    assert detect.reflection("zqvglabca{{2*3}}bqz", a, "zqvglabca{{2*3}}bqz") is None
    assert detect.reflection("zqa6bqz", detect.Answer(200, "Hello zqa6bqz", 0.0), "zqa{{2*3}}bqz") is not None


def test_retry_after_forms():
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


def test_the_canary_records_raw_protocols_and_redirects(canary):
    import base64

    with socket.create_connection((canary.host, canary.port), timeout=5) as s:
        s.sendall(b"vglaaaaaaaaaaaaaa\r\n")  # what dict:// or gopher:// write: one line
        assert b"200 OK" in s.recv(1000)
    assert canary.hits_for("vglaaaaaaaaaaaaaa")
    to = base64.urlsafe_b64encode(b"http://169.254.169.254/").decode().rstrip("=")
    with socket.create_connection((canary.host, canary.port), timeout=5) as s:
        s.sendall(f"GET /r/vglbbbbbbbbbbbbbb?code=307&to64={to} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        reply = s.recv(1000).decode()
    assert reply.startswith("HTTP/1.1 307") and "Location: http://169.254.169.254/\r\n" in reply
    with socket.create_connection((canary.host, canary.port), timeout=5) as s:
        s.sendall(b"GET /r/vglcccccccccccccc?to=http://x/%0d%0aSet-Cookie:%20a=b HTTP/1.1\r\n\r\n")
        reply = s.recv(1000).decode()
    assert "Set-Cookie" not in reply.split("\r\n\r\n")[0].replace("Location: http://x/Set-Cookie: a=b", "")
