"""Durable delivery to real receivers on loopback, on a fake clock.

Alerts enter as the rule engine writes them (``record_evaluation``: the transition log); the
dispatcher routes, groups, writes the outbox and sends to: a PagerDuty Events API v2 emulator, an
SMTP server (aiosmtpd, STARTTLS and AUTH), HTTP servers that accept, reject, hang, answer 429 and
5xx on command, and SNS through moto. Time is a FakeClock moved by explicit ticks; the only real
waits are the receivers' own (a hanging server and the client's timeout, bounded to a second).
"""

from __future__ import annotations

import json
import os
import stat
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from alert_receivers import Behaviour, HttpReceiver, PagerDuty, SmtpServer, free_port
from vigil.alerting.dispatch import Dispatcher, build_senders, circuit_after, decide
from vigil.alerting.outbox import CircuitState, attempts_log, outbox
from vigil.alerting.receivers import Result
from vigil.alerting.rules import Reading, Timing
from vigil.alerting.state import record_evaluation
from vigil.clock import FakeClock
from vigil.spec import parse_spec
from vigil.store import open_store

T0 = "2026-03-02T10:00:00Z"
SECRET = "hook-secret-0123456789"
ENV = {"HOOK_SECRET": SECRET, "PD_KEY": "R0UT1NGKEY0123456789abcdef012345", "SMTP_PASSWORD": "s3cret-password"}


class Rig:
    """A store, a fake clock, the spec's alerting section, a dispatcher over real senders."""

    def __init__(self, tmp: Path, alerting_yaml: str, *, environ: dict | None = None, resolver=None, parallel: int = 1,
                 strict: bool = True) -> None:
        text = "version: 1\nservices: {api: {}, search: {}, checkout: {}}\nalerting:\n" + alerting_yaml
        (tmp / "vigil.yaml").write_text(text)
        self.spec = parse_spec(text.encode(), filename=str(tmp / "vigil.yaml"))
        self.store = open_store(f"sqlite:///{tmp / 'state.db'}")
        self.clock = FakeClock(T0)
        kw = {"resolver": resolver} if resolver else {}
        self.senders = build_senders(self.spec.alerting, base_dir=tmp, environ={**ENV, **(environ or {})}, strict=strict, **kw)
        self.disp = Dispatcher(self.store, self.spec.alerting, self.senders, self.clock, parallel=parallel)
        self.rules: dict[str, dict] = {}

    def alert(self, rule: str, holds: bool = True, value: str = "12.5", *, record: bool = True, **labels: str) -> None:
        """One evaluation at the clock's time: ``rule`` (with ``labels``) holds or not; every other
        rule instance seen before keeps its last answer. ``record=False`` only stages the answer for
        the next evaluation (several alerts at one instant)."""
        lab = {"alertname": rule, "service": "api", "severity": "page", **labels}
        key = json.dumps(lab, sort_keys=True)
        self.rules.setdefault(rule, {})[key] = (lab, holds, value)
        if not record:
            return
        readings = {
            r: [Reading(lab_, h, Decimal(v), {"summary": f"{r} is at {v}", "description": f"{r}: value {v} over 5m (threshold 10)"})
                for lab_, h, v in inst.values()]
            for r, inst in self.rules.items()
        }
        rec = record_evaluation(self.store, self.clock.now(), readings, {r: Timing() for r in self.rules})
        assert rec.recorded

    def run(self, seconds: int, step: int = 1) -> None:
        for _ in range(0, seconds, step):
            self.clock.tick(step)
            self.disp.tick()

    def log(self, **kw):
        return attempts_log(self.store, limit=10000, **kw)

    def close(self) -> None:
        for s in self.senders.values():
            s.close()
        self.store.close()


@pytest.fixture
def pd():
    with PagerDuty() as p:
        yield p


@pytest.fixture
def hook():
    with HttpReceiver() as h:
        yield h


def sub(tmp: Path, name: str) -> Path:
    p = tmp / name
    p.mkdir()
    return p


def webhook_yaml(url: str, **extra: str) -> str:
    more = "".join(f", {k}: {v}" for k, v in extra.items())
    return f"""\
  receivers:
    - {{name: hook, webhook: {{url: '{url}', secret_env: HOOK_SECRET}}{more}}}
  route: {{receiver: hook, group_by: [alertname], group_wait: 0s, group_interval: 1m, repeat_interval: 4h}}
"""


def pd_yaml(url: str, fallback: str = "", extra_receivers: str = "") -> str:
    fb = f", fallback: {fallback}, fallback_after: 2" if fallback else ""
    return f"""\
  external_url: https://vigil.example.com
  receivers:
    - {{name: oncall, pagerduty: {{routing_key_env: PD_KEY, url: '{url}'}}{fb}}}
{extra_receivers}  route: {{receiver: oncall, group_by: [alertname, service], group_wait: 0s, group_interval: 1m, repeat_interval: 4h}}
"""


# -- PagerDuty ---------------------------------------------------------------------------------------


def test_pagerduty_trigger_then_resolve_one_incident(tmp_path, pd):
    rig = Rig(tmp_path, pd_yaml(pd.url_enqueue))
    rig.alert("api-5xx-spike")
    rig.run(2)
    assert [e["event_action"] for e in pd.events] == ["trigger"]
    ev = pd.events[0]
    assert ev["routing_key"] == ENV["PD_KEY"] and ev["payload"]["severity"] == "critical"
    assert ev["payload"]["summary"].startswith("[FIRING:1] api-5xx-spike (api): api-5xx-spike is at 12.5")
    assert ev["client_url"].startswith("https://vigil.example.com/api/v1/alerts?group=")
    rig.alert("api-5xx-spike", holds=False)
    rig.run(61)
    assert [e["event_action"] for e in pd.events] == ["trigger", "resolve"]
    assert pd.events[1]["dedup_key"] == ev["dedup_key"]
    assert pd.incident_count() == 1 and pd.incidents[ev["dedup_key"]][-1]["status"] == "resolved"
    log = rig.log()
    assert [(a["action"], a["result"], a["status_code"]) for a in reversed(log)] == [("trigger", "delivered", 202), ("resolve", "delivered", 202)]
    assert all(a["latency_ms"] is not None and a["key"] for a in log)
    rig.close()


def test_pagerduty_400_is_never_retried_and_429_backs_off_as_told(tmp_path, pd):
    rig = Rig(tmp_path, pd_yaml(pd.url_enqueue))
    pd.script(Behaviour(429, {"Retry-After": "7"}, b"slow down"), Behaviour(400, {}, b'{"status":"invalid event"}'))
    rig.alert("a")
    rig.run(1)
    (row,) = outbox(rig.store)
    assert row.status == "pending" and row.attempts == 1
    # Retry-After 7 s honoured (above the 1 s backoff): nothing is sent at 2..7 s
    rig.run(6)
    assert len(pd.received) == 1
    rig.run(1)
    assert len(pd.received) == 2  # the 400: never retried, no fallback: failed
    (row,) = outbox(rig.store)
    assert row.status == "failed" and "invalid event: not retried" in row.last_error
    rig.run(600)
    assert len(pd.received) == 2
    assert [a["result"] for a in reversed(rig.log())] == ["retry", "failed"]
    rig.close()


def test_pagerduty_5xx_refused_and_timeouts_are_retried_with_backoff(tmp_path, pd):
    port = free_port()  # nothing listens here yet
    rig = Rig(tmp_path, pd_yaml(f"http://127.0.0.1:{port}/v2/enqueue").replace("url:", "url:"))
    rig.alert("a")
    rig.run(1)
    (row,) = outbox(rig.store)
    assert row.attempts == 1 and "ConnectError" in (row.last_error or "")
    # 1 s, 2 s, 4 s, 8 s ... between attempts: 5 attempts by t=1+1+2+4+8
    rig.run(15)
    assert outbox(rig.store)[0].attempts == 5
    rig.close()
    # 5xx then a hang past the timeout, then 202: three attempts, one delivery
    rig2 = Rig(sub(tmp_path, "b"), pd_yaml(pd.url_enqueue).replace(
        "url: '" + pd.url_enqueue + "'}", "url: '" + pd.url_enqueue + "'}, timeout: 500ms"))
    pd.script(Behaviour(503, {}, b"unavailable"), Behaviour(200, {}, b"", hang=1.5))
    rig2.alert("b")
    rig2.run(10)
    log = list(reversed(rig2.log()))
    assert [a["result"] for a in log] == ["retry", "retry", "delivered"]
    assert log[0]["status_code"] == 503 and "timed out" in log[1]["error"]
    assert pd.incident_count() == 1
    rig2.close()


def test_a_replay_after_a_crash_never_opens_a_second_incident(tmp_path, pd, monkeypatch):
    """The process dies after PagerDuty took the trigger and before the outcome was recorded: the
    next leader sends the row again, with the same dedup_key, and PagerDuty folds it in."""
    import vigil.alerting.outbox as alert_outbox

    rig = Rig(tmp_path, pd_yaml(pd.url_enqueue))
    rig.alert("a")
    real = alert_outbox.record

    class Crash(Exception):
        pass

    def die(*a, **k):
        raise Crash()

    monkeypatch.setattr(alert_outbox, "record", die)
    with pytest.raises(Crash):
        rig.run(1)
    monkeypatch.setattr(alert_outbox, "record", real)
    assert len(pd.events) == 1 and outbox(rig.store)[0].status == "pending"
    # a new dispatcher (the restarted process) over the same store
    rig.disp = Dispatcher(rig.store, rig.spec.alerting, rig.senders, rig.clock)
    rig.run(3)
    assert len(pd.events) == 2 and pd.events[0]["dedup_key"] == pd.events[1]["dedup_key"]
    assert pd.incident_count() == 1
    (row,) = outbox(rig.store)
    assert row.status == "delivered"
    rig.close()


def test_pagerduty_is_acknowledged_when_every_firing_alert_of_the_incident_is_silenced(tmp_path, pd):
    from vigil.alerting.silences import add_silence, parse_matchers

    rig = Rig(tmp_path, pd_yaml(pd.url_enqueue))
    rig.alert("a")
    rig.run(2)
    now = rig.clock.now()
    add_silence(rig.store, parse_matchers(['alertname="a"']), starts_at=now, ends_at=now + timedelta(hours=1),
                created_by="alice", reason="on it", now=now)
    rig.run(61)
    assert [e["event_action"] for e in pd.events] == ["trigger", "acknowledge"]
    assert pd.incidents[pd.events[0]["dedup_key"]][-1]["status"] == "acknowledged" and pd.incident_count() == 1
    rig.run(600)
    assert len(pd.events) == 2  # once
    rig.close()


# -- a receiver down for 10 minutes --------------------------------------------------------------------


def test_receiver_down_ten_minutes_then_back_every_notification_delivered_once(tmp_path, hook):
    rig = Rig(tmp_path, webhook_yaml(hook.url + "/alerts"))
    hook.default = Behaviour(503, {}, b"down")
    rig.alert("a")
    rig.run(60)
    rig.alert("b")
    rig.run(120)
    rig.alert("a", holds=False)
    rig.run(420)  # 10 minutes in all
    pending = outbox(rig.store, status="pending")
    assert len(pending) == 3 and rig.log(result="delivered") == []
    # the two triggers were tried again and again; a's resolve waits behind a's trigger (never overtakes it)
    by_action = sorted((r.action, r.attempts) for r in pending)
    assert by_action[0] == ("resolve", 0) and all(n >= 3 for _, n in by_action[1:])
    hook.default = Behaviour(200)
    rig.run(600)
    rows = outbox(rig.store)
    assert sorted(r.status for r in rows) == ["delivered"] * 3
    # every delivery id was accepted exactly once; a's resolve came after a's trigger
    accepted = hook.received[-3:]  # the three answered 200 (every earlier one was answered 503)
    ok_keys = [a["key"] for a in rig.log(result="delivered")]
    assert sorted(ok_keys) == sorted({r.key for r in rows}) and len(ok_keys) == 3
    a_events = [(r.json()["action"], r.json()["status"]) for r in accepted if r.json()["groupLabels"] == {"alertname": "a"}]
    assert a_events[-2:] == [("trigger", "firing"), ("resolve", "resolved")]
    # the backoff kept attempts few: 1 s doubling to 5 m over 10 minutes
    retries = rig.log(result="retry")
    assert 3 * 3 <= len(retries) <= 3 * 11
    rig.close()


# -- email with a fallback ---------------------------------------------------------------------------


def email_yaml(primary_port: int, fallback_port: int, ca: Path) -> str:
    return f"""\
  external_url: https://vigil.example.com
  receivers:
    - name: sre-email
      email: {{to: [sre@example.com], from: vigil@example.com, host: 127.0.0.1, port: {primary_port}, username: vigil, password_env: SMTP_PASSWORD, ca_file: '{ca}'}}
      fallback: backup-email
      fallback_after: 3
      retry: {{initial: 1s, max: 10s}}
    - name: backup-email
      email: {{to: [sre@example.com, oncall@example.com], from: vigil@example.com, host: 127.0.0.1, port: {fallback_port}, username: vigil, password_env: SMTP_PASSWORD, ca_file: '{ca}', subject_prefix: '[vigil backup]'}}
  route: {{receiver: sre-email, group_by: [alertname], group_wait: 0s, group_interval: 1m}}
"""


def test_primary_smtp_down_the_fallback_gets_it_and_the_switch_is_logged(tmp_path):
    with SmtpServer(tmp_path) as backup:
        dead = free_port()
        rig = Rig(tmp_path, email_yaml(dead, backup.port, backup.ca))
        rig.alert("outbox-backlog", value="1843", service="search")
        rig.run(10)
        assert len(backup.messages) == 1
        m = backup.messages[0]
        assert m["Subject"] == "[vigil backup] [FIRING:1] outbox-backlog (search)"
        body = m.get_payload()
        assert "outbox-backlog is at 1843" in body and "value 1843" in body
        assert "https://vigil.example.com/api/v1/alerts?group=" in body
        log = list(reversed(rig.log()))
        assert [(a["receiver"], a["result"]) for a in log] == [
            ("sre-email", "retry"), ("sre-email", "retry"), ("sre-email", "retry"), ("sre-email", "fallback"), ("backup-email", "delivered")]
        assert log[3]["detail"]["from"] == "sre-email" and log[3]["detail"]["to"] == "backup-email"
        (row,) = outbox(rig.store)
        assert row.status == "delivered" and row.target == "backup-email" and row.receiver == "sre-email"
        assert m["Message-ID"] == f"<{row.key}@example.com>"
        rig.close()


def test_email_over_starttls_with_auth_and_what_fails(tmp_path):
    with SmtpServer(tmp_path) as smtp:
        rig = Rig(tmp_path, email_yaml(smtp.port, smtp.port, smtp.ca))
        rig.alert("a")
        rig.run(1)
        assert len(smtp.messages) == 1 and smtp.messages[0]["To"] == "sre@example.com"
        rig.close()
        # a wrong password: 535, permanent: straight to the fallback (here the same server, same password: fails too)
        rig = Rig(sub(tmp_path, "wrong"), email_yaml(smtp.port, smtp.port, smtp.ca), environ={"SMTP_PASSWORD": "wrong"})
        rig.alert("b")
        rig.run(3)
        log = list(reversed(rig.log()))
        assert [a["result"] for a in log][:2] == ["failed", "fallback"] and log[0]["status_code"] == 535
        assert outbox(rig.store)[0].status == "failed"
        rig.close()
    # a server that does not offer STARTTLS: refused (the password is never sent in clear)
    with SmtpServer(sub(tmp_path, "plain"), starttls=False) as plain:
        rig = Rig(tmp_path / "plain", email_yaml(plain.port, plain.port, tmp_path / "ca.pem"))
        rig.alert("c")
        rig.run(1)
        assert plain.messages == [] and "does not offer STARTTLS" in rig.log()[-1]["error"]
        rig.close()


# -- webhook, slack, sns ---------------------------------------------------------------------------------


def test_webhook_is_signed_over_the_delivery_id_and_time(tmp_path, hook):
    from vigil.deploy.canary.receiver import verify

    rig = Rig(tmp_path, webhook_yaml(hook.url + "/alerts"))
    hook.script(Behaviour(500))
    rig.alert("api-5xx-spike")
    rig.run(3)
    first, second = hook.received[:2]
    for r in (first, second):
        assert verify(SECRET.encode(), r.body, r.headers["x-vigil-signature-256"])
        assert not verify(b"another secret", r.body, r.headers["x-vigil-signature-256"])
        assert not verify(SECRET.encode(), r.body.replace(b"firing", b"resolved"), r.headers["x-vigil-signature-256"])
    b1, b2 = first.json(), second.json()
    assert b1["delivery"] == b2["delivery"] == first.headers["x-vigil-delivery"]  # the same id on a retry
    assert b1["sent_at"] != b2["sent_at"] and first.headers["x-vigil-timestamp"] == b1["sent_at"]
    assert b1["version"] == "4" and b1["status"] == "firing" and b1["alerts"][0]["labels"]["alertname"] == "api-5xx-spike"
    assert b1["alerts"][0]["annotations"]["summary"] == "api-5xx-spike is at 12.5"
    rig.close()


def test_webhook_4xx_and_redirects_are_not_retried(tmp_path, hook):
    rig = Rig(tmp_path, webhook_yaml(hook.url + "/alerts"))
    hook.script(Behaviour(302, {"Location": "http://169.254.169.254/"}, b""))
    rig.alert("a")
    rig.run(30)
    assert len(hook.received) == 1 and outbox(rig.store)[0].status == "failed"
    rig.close()


def test_a_url_resolving_to_the_metadata_address_is_never_contacted(tmp_path, hook):
    def resolver(host, port, *a, **k):
        return [(2, 1, 6, "", ("169.254.169.254", port))]

    rig = Rig(tmp_path, webhook_yaml("http://hooks.example.com/alerts"), resolver=resolver)
    rig.alert("a")
    rig.run(5)
    (row,) = outbox(rig.store)
    assert row.status == "failed" and "169.254.169.254" in row.last_error and "link-local" in row.last_error
    rig.close()


def test_slack_url_from_a_private_file_and_never_echoed(tmp_path, hook):
    url_file = tmp_path / "slack-url"
    url_file.write_text(hook.url + "/services/T000/B000/XXXX\n")
    os.chmod(url_file, 0o600)
    yaml = """\
  receivers:
    - {name: chat, slack: {url_file: slack-url, channel: '#alerts'}}
  route: {receiver: chat, group_wait: 0s}
"""
    rig = Rig(tmp_path, yaml)
    hook.script(Behaviour(404, {}, b"no_service"))
    rig.alert("a", record=False)
    rig.alert("b")
    rig.run(2)
    (first, *_) = hook.received
    assert first.path == "/services/T000/B000/XXXX"
    msg = first.json()
    assert msg["channel"] == "#alerts" and msg["attachments"][0]["color"] == "#d00000" and "[FIRING:2]" in msg["text"]
    err = rig.log()[-1]["error"]
    assert err == "HTTP 404: no_service" and "XXXX" not in json.dumps(rig.log())
    rig.close()
    os.chmod(url_file, 0o644)  # a URL file others can read is refused: the receiver is broken, said so
    other = sub(tmp_path, "loose")
    (other / "slack-url").write_text(url_file.read_text())
    os.chmod(other / "slack-url", 0o644)
    from vigil.errors import UsageError

    with pytest.raises(UsageError, match="receiver chat: the Slack webhook URL .* is readable or writable by others"):
        Rig(other, yaml)
    rig = Rig(other, yaml, strict=False)  # as vigil serve builds them: the API stays up, the receiver is broken and says why
    assert "readable or writable by others" in rig.senders["chat"].error
    rig.alert("a")
    rig.run(1)
    assert rig.log()[0]["result"] == "failed" and "readable or writable by others" in rig.log()[0]["error"]
    assert stat.S_IMODE(url_file.stat().st_mode) == 0o644
    rig.close()


def test_sns_publishes_with_the_delivery_id_and_dedups_fifo(tmp_path, monkeypatch):
    import boto3
    from moto import mock_aws

    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        sns = boto3.client("sns", region_name="eu-west-1")
        sqs = boto3.client("sqs", region_name="eu-west-1")
        arn = sns.create_topic(Name="pages")["TopicArn"]
        q = sqs.create_queue(QueueName="pages")["QueueUrl"]
        qarn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=qarn)
        fifo = sns.create_topic(Name="pages.fifo", Attributes={"FifoTopic": "true"})["TopicArn"]
        yaml = f"""\
  receivers:
    - {{name: aws, sns: {{topic_arn: '{arn}'}}}}
    - {{name: aws-fifo, sns: {{topic_arn: '{fifo}'}}}}
    - {{name: gone, sns: {{topic_arn: 'arn:aws:sns:eu-west-1:123456789012:nope'}}}}
  route:
    receiver: aws
    group_wait: 0s
    routes:
      - {{matchers: ['alertname="f"'], receiver: aws-fifo}}
      - {{matchers: ['alertname="g"'], receiver: gone}}
"""
        rig = Rig(tmp_path, yaml)
        rig.alert("a", record=False)
        rig.alert("f", record=False)
        rig.alert("g")
        rig.run(2)
        msgs = sqs.receive_message(QueueUrl=q, MaxNumberOfMessages=10, MessageAttributeNames=["All"])["Messages"]
        body = json.loads(msgs[0]["Body"])
        assert body["Subject"] == "vigil [FIRING:1] a (api)"
        inner = json.loads(body["Message"])
        row_a = next(r for r in outbox(rig.store) if r.payload["group_labels"] == {} and r.target == "aws")
        assert inner["delivery"] == row_a.key and body["MessageAttributes"]["vigil_delivery"]["Value"] == row_a.key
        by = {a["receiver"]: a for a in rig.log()}
        assert by["aws"]["result"] == "delivered" and by["aws-fifo"]["result"] == "delivered"
        assert by["gone"]["result"] == "failed" and "NotFound" in by["gone"]["error"]
        rig.close()


# -- circuit, give up, heartbeat ------------------------------------------------------------------------


def test_an_open_circuit_sends_to_the_fallback_at_once(tmp_path, hook):
    with HttpReceiver() as backup:
        yaml = f"""\
  receivers:
    - name: primary
      webhook: {{url: '{hook.url}/a', secret_env: HOOK_SECRET}}
      fallback: backup
      fallback_after: 100
      circuit: {{failures: 3, open_for: 5m}}
      retry: {{initial: 1s, max: 1s}}
    - {{name: backup, webhook: {{url: '{backup.url}/b', secret_env: HOOK_SECRET}}}}
  route: {{receiver: primary, group_by: [alertname], group_wait: 0s}}
"""
        rig = Rig(tmp_path, yaml)
        hook.default = Behaviour(503)
        rig.alert("a")
        rig.run(3)  # three failures in a row open the circuit
        assert len(hook.received) == 3 and backup.received == []
        rig.run(1)  # a's next attempt finds the circuit open: switched at once
        assert len(backup.received) == 1
        rig.alert("b")
        rig.run(1)
        assert len(hook.received) == 3 and len(backup.received) == 2  # b never tried the open primary
        switches = rig.log(result="fallback")
        assert len(switches) == 2 and all(s["detail"]["why"] == "circuit open" for s in switches)
        rig.close()


def test_circuit_and_decisions_are_pure(tmp_path):
    sp = parse_spec(b"""version: 1
services: {api: {}}
alerting:
  receivers:
    - {name: r, webhook: {url: 'http://127.0.0.1/x', secret_env: S}, retry: {initial: 2s, max: 30s}, give_up_after: 1h,
       circuit: {failures: 2, open_for: 1m}}
  route: {receiver: r}
""", filename="x")
    r = sp.alerting.receivers[0]
    d = decide(Result("retry", 503), r, target_failures=0, created_ms=0, now_ms=1000)
    assert (d.status, d.next_attempt_ms) == ("pending", 3000)
    d = decide(Result("retry", 503), r, target_failures=5, created_ms=0, now_ms=1000)
    assert d.next_attempt_ms == 31000  # 2 s * 2^5 = 64 s, capped at 30 s
    d = decide(Result("retry", 429, retry_after=20.0), r, target_failures=0, created_ms=0, now_ms=1000)
    assert d.next_attempt_ms == 21000
    d = decide(Result("retry", 503), r, target_failures=0, created_ms=0, now_ms=3600_000)
    assert d.status == "failed" and "gave up" in d.why
    assert decide(Result("permanent", 400), r, target_failures=0, created_ms=0, now_ms=1).status == "failed"
    s = circuit_after(CircuitState(), Result("retry"), r, 0)
    s = circuit_after(s, Result("retry"), r, 10)
    assert s.open(10) and not s.open(60_010)
    assert circuit_after(s, Result("permanent"), r, 20) == s  # a bad payload says nothing of the receiver
    assert circuit_after(s, Result("delivered"), r, 20) == CircuitState()


def test_heartbeat_every_interval_and_no_backlog_while_down(tmp_path, hook):
    yaml = webhook_yaml(hook.url + "/alerts") + "  heartbeat: {receiver: hook, interval: 1m}\n"
    rig = Rig(tmp_path, yaml)
    rig.run(180)
    beats = [r for r in hook.received if r.headers["x-vigil-event"] == "heartbeat"]
    # 10:00:01 (the 10:00 slot), 10:01, 10:02 and 10:03: one per minute
    assert len(beats) == 4 and beats[0].json()["alerts"][0]["labels"]["alertname"] == "VigilHeartbeat"
    assert len({b.headers["x-vigil-delivery"] for b in beats}) == 4
    hook.default = Behaviour(503)
    rig.run(600)
    assert len(outbox(rig.store, status="pending")) == 1  # one heartbeat waiting, not ten
    rig.close()


# -- the log through the CLI and the API ------------------------------------------------------------


def test_vigil_alerts_log_lists_every_attempt(tmp_path, hook, cli):
    rig = Rig(tmp_path, webhook_yaml(hook.url + "/alerts"))
    hook.script(Behaviour(503))
    rig.alert("a")
    rig.run(3)
    rig.close()
    spec, db = tmp_path / "vigil.yaml", f"sqlite:///{tmp_path / 'state.db'}"
    r = cli("alerts", "log", "--spec", spec, "--db", db, "--json")
    assert r.code == 0, r.err
    got = r.json()["attempts"]
    assert [a["result"] for a in got] == ["delivered", "retry"]
    for a in got:
        assert {"at", "receiver", "result", "latency_ms", "key", "status_code", "error", "kind", "action"} <= set(a)
    t = cli("alerts", "log", "--spec", spec, "--db", db)
    assert t.code == 0 and "HTTP 503" in t.out and got[0]["key"] in t.out
    missing = cli("alerts", "log", "--spec", spec, "--db", f"sqlite:///{tmp_path / 'none.db'}")
    assert missing.code == 2 and not (tmp_path / "none.db").exists()


def test_retention_lets_old_deliveries_go_and_keeps_what_is_pending(tmp_path, hook):
    from vigil.alerting.outbox import all_groups

    rig = Rig(tmp_path, webhook_yaml(hook.url + "/alerts"))
    rig.alert("a")
    rig.run(1)
    rig.alert("a", holds=False)
    rig.run(61)
    assert [r.status for r in outbox(rig.store)] == ["delivered", "delivered"] and len(rig.log()) == 2
    (g,) = all_groups(rig.store)
    assert g.empty  # kept: its notification log still matters for a while
    hook.default = Behaviour(503)
    rig.clock.tick(timedelta(days=31))
    rig.alert("b")
    rig.run(2)
    rows = outbox(rig.store)
    assert [(r.payload["group_labels"]["alertname"], r.status) for r in rows] == [("b", "pending")]
    assert {a["key"] for a in rig.log()} == {rows[0].key}
    assert [x.labels for x in all_groups(rig.store)] == [{"alertname": "b"}]
    rig.close()


def _outgoing(alerts: list[dict], action: str = "trigger"):
    from vigil.alerting.receivers import Outgoing
    from vigil.clock import parse_time

    payload = {"key": "k-1", "group": "g" * 64, "group_key": "{}:{}", "receiver": "r", "dedup_key": "d" * 40, "action": action,
               "reason": "first notification", "at_ms": 0, "group_labels": {}, "alerts": alerts}
    return Outgoing("k-1", action, "d" * 40, payload, parse_time(T0), 1, "https://vigil.example.com", "r")


def _a(i: int, **labels: str) -> dict:
    lab = {"alertname": "a", "service": "api", "severity": "page", "instance": str(i), **labels}
    return {"fingerprint": f"{i:016x}", "rule": "a", "labels": lab, "annotations": {"summary": lab.get("summary", "s")},
            "state": "firing", "starts_ms": 1_700_000_000_000, "ends_ms": None, "value": "1", "seq": i}


def test_what_alerts_carry_cannot_break_out_of_a_message():
    """Labels and annotations are the alert's, not vigil's: a Slack mention or link is escaped, a line
    break cannot add an email header, and PagerDuty's event stays under its size limit."""
    from vigil.alerting.receivers.email import render as email
    from vigil.alerting.receivers.pagerduty import MAX_DETAILED
    from vigil.alerting.receivers.pagerduty import render as pagerduty
    from vigil.alerting.receivers.slack import render as slack

    evil = _a(1, service="api\r\nBcc: victim@example.com")
    evil["annotations"]["summary"] = "<!channel> see <https://evil.example|here> & more"
    msg = slack(_outgoing([evil]))
    text = msg["attachments"][0]["text"]
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text and "&amp; more" in text and "<https" not in text
    sp = parse_spec(b"""version: 1
services: {api: {}}
alerting:
  receivers:
    - {name: r, email: {to: [sre@example.com], from: vigil@example.com, host: 127.0.0.1, tls: none}}
    - {name: p, pagerduty: {routing_key_env: K}}
  route: {receiver: r}
""", filename="x")
    m = email(_outgoing([evil]), sp.alerting.receivers[0].email)
    headers = m.as_string().split("\n\n", 1)[0]
    assert m["Bcc"] is None and "\nBcc:" not in headers and m["Subject"].startswith("[vigil] [FIRING:1] a (api Bcc:")
    many = [_a(i) for i in range(5000)]
    ev = pagerduty(_outgoing(many), "key", sp.alerting.receivers[1].pagerduty)
    assert len(ev["payload"]["custom_details"]["firing"]) == MAX_DETAILED and ev["payload"]["custom_details"]["num_firing"] == 5000
    assert ev["payload"]["custom_details"]["truncated_alerts"] == 5000 - MAX_DETAILED
    assert len(json.dumps(ev)) < 512 * 1024


def test_without_a_fallback_an_open_circuit_makes_notifications_wait_until_it_closes(tmp_path, hook):
    with HttpReceiver() as backup:
        yaml = f"""\
  receivers:
    - name: primary
      webhook: {{url: '{hook.url}/a', secret_env: HOOK_SECRET}}
      fallback: backup
      fallback_after: 100
      circuit: {{failures: 2, open_for: 5m}}
      retry: {{initial: 1s, max: 1s}}
    - name: backup
      webhook: {{url: '{backup.url}/b', secret_env: HOOK_SECRET}}
      circuit: {{failures: 1, open_for: 1m}}
      retry: {{initial: 1s, max: 1s}}
  route: {{receiver: primary, group_by: [alertname], group_wait: 0s}}
"""
        rig = Rig(tmp_path, yaml)
        hook.default = backup.default = Behaviour(503)
        rig.alert("a")
        rig.run(3)  # primary fails twice (its circuit opens), then a switches to backup, which fails once (its circuit opens)
        assert (len(hook.received), len(backup.received)) == (2, 1)
        rig.alert("b")
        rig.run(50)  # both circuits open: b switches to backup and waits there with a; nobody is called
        assert (len(hook.received), len(backup.received)) == (2, 1)
        pending = outbox(rig.store, status="pending")
        assert {r.target for r in pending} == {"backup"} and len(pending) == 2
        assert len(rig.log(result="fallback")) == 2  # both switches recorded, the waiting one's too
        backup.default = Behaviour()
        rig.run(15)  # backup's circuit closes at 1m after its failure: both go out
        assert [r.status for r in outbox(rig.store)] == ["delivered", "delivered"]
        assert len(hook.received) == 2
        rig.close()
