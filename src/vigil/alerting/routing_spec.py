"""The ``alerting:`` section of the spec: receivers, the route tree, inhibition, the heartbeat.

Routing follows Alertmanager's configuration, so a user of Alertmanager reads it at once::

    alerting:
      evaluation_interval: 30s
      external_url: https://vigil.example.com
      receivers:
        - name: oncall
          pagerduty: {routing_key_env: PAGERDUTY_ROUTING_KEY}
          fallback: sre-email
        - name: sre-email
          email: {to: [sre@example.com], from: vigil@example.com, host: smtp.example.com, password_env: SMTP_PASSWORD, username: vigil}
      route:
        receiver: sre-email
        group_by: [alertname, service]
        routes:
          - {matchers: ['severity="page"'], receiver: oncall}
      inhibit_rules:
        - {source_matchers: ['alertname="search-down"'], target_matchers: ['slo="search-freshness"'], equal: [service]}
      heartbeat: {receiver: deadman, interval: 1m}

Secrets are never in the spec: a receiver names an environment variable (``*_env``) or a private
file (``*_file``). Matchers are Alertmanager's: ``name="value"``, ``name!="value"``,
``name=~"regex"``, ``name!~"regex"`` (regular expressions fully anchored, RE2), the value quoted or
bare.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, PlainSerializer, field_validator, model_validator

from vigil.model import Duration, SpecModel
from vigil.selector import Matcher, SelectorError
from vigil.units import format_duration

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
RECEIVER_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$")
EMAIL = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+$")
HOSTNAME = re.compile(
    r"^(\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f]*:[0-9A-Fa-f:.]+"
    r"|[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?)$"
)
SNS_ARN = re.compile(r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,256}(\.fifo)?)$")
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_EU_URL = "https://events.eu.pagerduty.com/v2/enqueue"
KINDS = ("pagerduty", "email", "webhook", "slack", "sns")

_MATCHER = re.compile(r"^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.S)


def _unquote(s: str) -> str:
    """A double-quoted string with Go's common escapes (\\" \\\\ \\n \\t)."""
    if len(s) < 2 or not s.endswith('"'):
        raise SelectorError(f"unterminated quoted value {s!r}")
    out, i, body = [], 0, s[1:-1]
    while i < len(body):
        c = body[i]
        if c == "\\":
            if i + 1 >= len(body):
                raise SelectorError(f"a lone backslash ends {s!r}")
            e = body[i + 1]
            out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(e, "\\" + e))
            i += 2
            continue
        if c == '"':
            raise SelectorError(f"an unescaped quote inside {s!r}")
        out.append(c)
        i += 1
    return "".join(out)


def parse_matcher(text: Any) -> Matcher:
    """One Alertmanager matcher: ``severity="page"``, ``service=~"api|web"``, ``team!=sre``."""
    if isinstance(text, Matcher):
        return text
    if not isinstance(text, str):
        raise SelectorError(f'a matcher is a string like severity="page", got {type(text).__name__}')
    if len(text) > 1024:
        raise SelectorError("a matcher is at most 1024 characters")
    m = _MATCHER.match(text)
    if not m:
        raise SelectorError(f'cannot read matcher {text!r}: write it like severity="page", service=~"api|web" or team!="sre"')
    name, op, raw = m.groups()
    value = _unquote(raw) if raw.startswith('"') else raw
    if not raw.startswith('"') and any(c in raw for c in ' ,{}"'):
        raise SelectorError(f"cannot read matcher {text!r}: quote a value with spaces, commas or braces")
    return Matcher.make(name, op, value)


def _matcher(v: Any) -> Matcher:
    try:
        return parse_matcher(v)
    except SelectorError as e:
        raise ValueError(str(e)) from None


MatcherField = Annotated[Matcher, BeforeValidator(_matcher), PlainSerializer(str, return_type=str)]
"""An Alertmanager matcher, parsed when the spec loads; written back as ``name="value"``."""


def matches_all(matchers: "tuple[Matcher, ...] | list[Matcher]", labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def _env(v: str | None, what: str) -> None:
    if v is not None and not ENV_NAME.match(v):
        raise ValueError(f"{what} {v!r} is not an environment variable name")


def _one_secret(env: str | None, file: str | None, what: str, *, required: bool = True) -> None:
    if env is not None and file is not None:
        raise ValueError(f"give one of {what}_env or {what}_file, not both")
    if required and env is None and file is None:
        raise ValueError(f"the {what} is a secret: name an environment variable ({what}_env) or a private file ({what}_file); never put it in the spec")


def _http_url(url: str, allow_link_local: bool, what: str) -> None:
    from vigil.netguard import url_problem

    shape = url_problem(url, allow_link_local=True)
    if shape:
        raise ValueError(f"{what} {url!r} {shape}")
    parts = urlsplit(url)
    if parts.username or parts.password:
        raise ValueError(f"{what} must not carry credentials")
    why = None if allow_link_local else url_problem(url)
    if why:
        raise ValueError(f"{what} {url!r} {why}; set allow_link_local: true if this is intended")


class Backoff(SpecModel):
    """How long to wait between attempts: ``initial``, doubled (``factor``) up to ``max``. A 429's
    Retry-After is honoured up to ``max``."""

    initial: Duration = Field(Decimal(1), description="the first wait (default 1s)")
    max: Duration = Field(Decimal(300), description="the longest wait (default 5m)")
    factor: Decimal = Field(Decimal(2), description="each wait is this many times the one before (default 2)")

    @model_validator(mode="after")
    def _sane(self) -> "Backoff":
        if self.initial <= 0 or self.max < self.initial:
            raise ValueError("retry: initial must be above 0 and max at least initial")
        if not 1 <= self.factor <= 10:
            raise ValueError("retry: factor must be between 1 and 10")
        return self

    def delay(self, failures: int) -> Decimal:
        """The wait after the ``failures``-th failure in a row (1 = the first)."""
        d = self.initial
        for _ in range(max(0, failures - 1)):
            d *= self.factor
            if d >= self.max:
                return self.max
        return min(d, self.max)


class Circuit(SpecModel):
    """A receiver failing this many deliveries in a row is skipped (its circuit is open) for
    ``open_for``: notifications with a fallback go there at once, the others wait."""

    failures: int = Field(5, description="consecutive failed attempts that open the circuit (default 5)")
    open_for: Duration = Field(Decimal(60), description="how long the circuit stays open (default 1m)")

    @model_validator(mode="after")
    def _sane(self) -> "Circuit":
        if not 1 <= self.failures <= 1000:
            raise ValueError("circuit.failures must be between 1 and 1000")
        if self.open_for <= 0:
            raise ValueError("circuit.open_for must be above 0")
        return self


PdSeverity = Literal["critical", "error", "warning", "info"]
DEFAULT_PD_SEVERITY: dict[str, PdSeverity] = {"page": "critical", "ticket": "warning"}


class PagerDutyReceiver(SpecModel):
    """PagerDuty Events API v2: trigger, acknowledge and resolve, one incident per alert group
    (``dedup_key``)."""

    routing_key_env: str | None = Field(None, description="environment variable holding the integration's routing key")
    routing_key_file: str | None = Field(None, description="private file holding the routing key (relative to the spec)")
    url: str = Field(PAGERDUTY_URL, description=f"the Events API endpoint (default {PAGERDUTY_URL}; EU: {PAGERDUTY_EU_URL})")
    severity: dict[str, PdSeverity] = Field(
        default_factory=lambda: dict(DEFAULT_PD_SEVERITY),
        description="PagerDuty severity for each vigil `severity` label (default page: critical, ticket: warning; others: error)",
    )
    source: str | None = Field(None, description="the event's `source` (default: the alert's service)")
    allow_link_local: bool = Field(False, description="allow a link-local or metadata address (default false)")

    @model_validator(mode="after")
    def _check(self) -> "PagerDutyReceiver":
        _one_secret(self.routing_key_env, self.routing_key_file, "routing_key")
        _env(self.routing_key_env, "routing_key_env")
        _http_url(self.url, self.allow_link_local, "pagerduty url")
        return self


class EmailReceiver(SpecModel):
    """Email over SMTP: STARTTLS (default), implicit TLS or plain; AUTH when a username is given."""

    to: list[str] = Field(description="recipients")
    from_: str = Field(alias="from", description="the sender address")
    host: str = Field(description="the SMTP server (a host name or address)")
    port: int = Field(587, description="its port (default 587; 465 for tls: ssl)")
    tls: Literal["starttls", "ssl", "none"] = Field(
        "starttls", description="`starttls` (default: upgrade, refuse a server that cannot), `ssl` (implicit TLS) or `none`"
    )
    ca_file: str | None = Field(None, description="a CA bundle to verify the server's certificate (default: the system's)")
    username: str | None = Field(None, description="AUTH user name (then password_env or password_file is needed)")
    password_env: str | None = Field(None, description="environment variable holding the password")
    password_file: str | None = Field(None, description="private file holding the password (relative to the spec)")
    subject_prefix: str = Field("[vigil]", description="the start of every subject")
    allow_link_local: bool = Field(False, description="allow a link-local or metadata address (default false)")

    model_config = SpecModel.model_config | {"populate_by_name": True}

    @field_validator("to")
    @classmethod
    def _to(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("email needs at least one recipient in `to`")
        for a in v:
            if not EMAIL.match(a):
                raise ValueError(f"{a!r} is not an email address")
        return v

    @model_validator(mode="after")
    def _check(self) -> "EmailReceiver":
        from vigil.netguard import host_problem

        if not EMAIL.match(self.from_):
            raise ValueError(f"from {self.from_!r} is not an email address")
        if len(self.host) > 253 or not HOSTNAME.match(self.host):
            port = " (the port goes in `port:`)" if re.match(r"^[^:\[\]]+:\d+$", self.host) else ""
            raise ValueError(f"host {self.host!r} is not a host name or an IP address{port}")
        if not 1 <= self.port <= 65535:
            raise ValueError("port must be between 1 and 65535")
        why = None if self.allow_link_local else host_problem(self.host)
        if why:
            raise ValueError(f"host {self.host!r} is {why}; set allow_link_local: true if this is intended")
        _env(self.password_env, "password_env")
        if self.username is not None:
            _one_secret(self.password_env, self.password_file, "password")
        elif self.password_env or self.password_file:
            raise ValueError("a password without a username: add `username`")
        if self.username is not None and self.tls == "none":
            raise ValueError("AUTH over a plain connection would send the password in clear: use tls: starttls or ssl")
        return self

    @property
    def starttls(self) -> bool:
        return self.tls == "starttls"


class WebhookReceiver(SpecModel):
    """A JSON POST signed with HMAC-SHA256 (``X-Vigil-Signature-256``) over a body holding the
    delivery id and the time it was sent."""

    url: str = Field(description="http:// or https:// URL")
    secret_env: str | None = Field(None, description="environment variable holding the signing secret")
    secret_file: str | None = Field(None, description="private file holding the signing secret (relative to the spec)")
    allow_link_local: bool = Field(False, description="allow a link-local or metadata address (default false)")

    @model_validator(mode="after")
    def _check(self) -> "WebhookReceiver":
        _http_url(self.url, self.allow_link_local, "webhook url")
        _one_secret(self.secret_env, self.secret_file, "secret")
        _env(self.secret_env, "secret_env")
        return self


class SlackReceiver(SpecModel):
    """A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat). Its URL is a secret."""

    url_env: str | None = Field(None, description="environment variable holding the incoming webhook URL")
    url_file: str | None = Field(None, description="private file holding the URL (relative to the spec)")
    channel: str | None = Field(None, description="override the webhook's channel (where the service allows it)")
    allow_link_local: bool = Field(False, description="allow a link-local or metadata address (default false)")

    @model_validator(mode="after")
    def _check(self) -> "SlackReceiver":
        _one_secret(self.url_env, self.url_file, "url")
        _env(self.url_env, "url_env")
        return self


class SnsReceiver(SpecModel):
    """AWS SNS through boto3 (credentials from the usual AWS chain). A FIFO topic (``.fifo``) gets
    the delivery id as its deduplication id."""

    topic_arn: str = Field(description="the topic's ARN")
    region: str | None = Field(None, description="the region (default: the ARN's)")
    endpoint_url: str | None = Field(None, description="a different SNS endpoint (a VPC endpoint, LocalStack)")
    allow_link_local: bool = Field(False, description="allow a link-local or metadata address (default false)")

    @model_validator(mode="after")
    def _check(self) -> "SnsReceiver":
        if not SNS_ARN.match(self.topic_arn):
            raise ValueError(f"topic_arn {self.topic_arn!r} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)")
        if self.endpoint_url is not None:
            _http_url(self.endpoint_url, self.allow_link_local, "endpoint_url")
        return self

    @property
    def region_name(self) -> str:
        m = SNS_ARN.match(self.topic_arn)
        assert m is not None
        return self.region or m.group(1)

    @property
    def fifo(self) -> bool:
        return self.topic_arn.endswith(".fifo")


class Receiver(SpecModel):
    """A named destination: exactly one of pagerduty, email, webhook, slack, sns; how to retry it,
    and where to go when it keeps failing."""

    name: str = Field(description="unique name, used by routes, fallbacks and the heartbeat")
    pagerduty: PagerDutyReceiver | None = Field(None, description="PagerDuty Events API v2")
    email: EmailReceiver | None = Field(None, description="email over SMTP")
    webhook: WebhookReceiver | None = Field(None, description="a JSON webhook signed with HMAC")
    slack: SlackReceiver | None = Field(None, description="a Slack-compatible incoming webhook")
    sns: SnsReceiver | None = Field(None, description="an AWS SNS topic")
    send_resolved: bool = Field(True, description="send resolutions too (default true; PagerDuty needs them to close incidents)")
    timeout: Duration = Field(Decimal(10), description="how long one attempt may take (default 10s)")
    retry: Backoff = Field(default_factory=Backoff, description="waits between attempts (default 1s doubling to 5m)")
    give_up_after: Duration = Field(
        Decimal(86400), description="a notification not delivered this long after it was written is marked failed (default 24h)"
    )
    fallback: str | None = Field(None, description="the receiver a notification switches to after `fallback_after` failures or an open circuit")
    fallback_after: int = Field(3, description="failed attempts before switching to the fallback (default 3)")
    circuit: Circuit = Field(default_factory=Circuit, description="when to stop trying this receiver for a while")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not RECEIVER_NAME.match(v):
            raise ValueError(f"receiver name {v!r} must be 1-64 letters, digits, '.', '_' or '-', starting and ending with a letter or digit")
        return v

    @model_validator(mode="after")
    def _one(self) -> "Receiver":
        given = [k for k in KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "a receiver has exactly one of pagerduty, email, webhook, slack, sns" + (f" (got {', '.join(given)})" if given else "")
            )
        if not 1 <= self.fallback_after <= 100:
            raise ValueError("fallback_after must be between 1 and 100")
        if self.timeout <= 0 or self.timeout > 300:
            raise ValueError("timeout must be above 0 and at most 5m")
        if self.give_up_after < 60:
            raise ValueError("give_up_after must be at least 1m")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, k) is not None)

    @property
    def config(self) -> Any:
        return getattr(self, self.kind)


def _group_by(v: Any) -> Any:
    if isinstance(v, list):
        for x in v:
            if not isinstance(x, str) or (x != "..." and not LABEL_NAME.match(x)):
                raise ValueError(f"group_by: {x!r} is not a label name (or '...' for every label)")
        if "..." in v and len(v) > 1:
            raise ValueError("group_by: '...' (every label) stands alone")
    return v


class Route(SpecModel):
    """A node of the routing tree. A child inherits what it does not set (receiver, group_by,
    timers). An alert goes down the first matching child (and on to the next ones while the
    matched child has ``continue: true``); a node none of whose children match takes it."""

    receiver: str | None = Field(None, description="the receiver (inherited when not set; the root must set it)")
    matchers: list[MatcherField] = Field(default_factory=list, description='labels the alert must match, like severity="page" (the root matches all)')
    group_by: Annotated[list[str] | None, BeforeValidator(_group_by)] = Field(
        None, description="labels whose values make a group (['...']: every label; default: one group per route)"
    )
    group_wait: Duration | None = Field(None, description="wait this long for more alerts before the first notification of a group (default 30s)")
    group_interval: Duration | None = Field(None, description="wait this long before notifying about changes to a group (default 5m)")
    repeat_interval: Duration | None = Field(None, description="send the same notification again after this long (default 4h)")
    continue_: bool = Field(False, alias="continue", description="keep matching the next siblings after this route matched")
    routes: list["Route"] = Field(default_factory=list, description="child routes")

    model_config = SpecModel.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _timers(self) -> "Route":
        if self.group_wait is not None and self.group_wait < 0:
            raise ValueError("group_wait cannot be negative")
        for k in ("group_interval", "repeat_interval"):
            v = getattr(self, k)
            if v is not None and v <= 0:
                raise ValueError(f"{k} must be above 0")
        return self


class InhibitRule(SpecModel):
    """While an alert matching ``source_matchers`` fires, alerts matching ``target_matchers`` with
    the same values of the ``equal`` labels are muted (an alert matching both is never muted by
    itself or its kind)."""

    source_matchers: list[MatcherField] = Field(description="the muting alert, like alertname=\"search-down\"")
    target_matchers: list[MatcherField] = Field(description="the muted alerts, like slo=\"search-freshness\"")
    equal: list[str] = Field(default_factory=list, description="labels that must have the same value in both, like [service]")

    @field_validator("equal")
    @classmethod
    def _equal(cls, v: list[str]) -> list[str]:
        for x in v:
            if not LABEL_NAME.match(x):
                raise ValueError(f"equal: {x!r} is not a label name")
        return v

    @model_validator(mode="after")
    def _some(self) -> "InhibitRule":
        if not self.source_matchers or not self.target_matchers:
            raise ValueError("an inhibit rule needs source_matchers and target_matchers")
        return self


class Heartbeat(SpecModel):
    """A dead man's switch: a notification every ``interval`` to ``receiver``, whatever else
    happens (no routing, silences or inhibition). The receiver (a heartbeat monitor such as a
    PagerDuty heartbeat, healthchecks.io or Cronitor) pages when it stops arriving."""

    receiver: str = Field(description="the receiver of the heartbeat")
    interval: Duration = Field(Decimal(60), description="how often (default 1m)")

    @field_validator("interval")
    @classmethod
    def _interval(cls, v: Decimal) -> Decimal:
        if v < 1:
            raise ValueError("heartbeat interval must be at least 1s")
        return v


class Leader(SpecModel):
    """The leader lease of ``vigil serve`` replicas: one evaluates and dispatches. A replica that
    stops renewing is replaced within ``lease`` plus ``poll`` (see README, More than one replica)."""

    lease: Duration = Field(Decimal(15), description="how long a lease lasts without renewal (default 15s)")
    poll: Duration | None = Field(None, description="how often a replica renews or tries to take the lease (default lease/3)")

    @model_validator(mode="after")
    def _sane(self) -> "Leader":
        if self.lease < 1:
            raise ValueError("leader.lease must be at least 1s")
        if self.poll is not None and not (Decimal("0.1") <= self.poll < self.lease):
            raise ValueError("leader.poll must be at least 100ms and less than the lease")
        return self

    @property
    def poll_seconds(self) -> Decimal:
        return self.poll if self.poll is not None else self.lease / 3


class AlertingSpec(SpecModel):
    """Routing and delivery of the alerts: receivers, the route tree, inhibition, the heartbeat."""

    evaluation_interval: Duration = Field(Decimal(60), description="how often vigil serve's leader evaluates the rules (default 1m; seconds allowed)")
    external_url: str | None = Field(None, description="the URL vigil serve is reached at, for links in notifications")
    receivers: list[Receiver] = Field(description="the receivers, by name")
    route: Route = Field(description="the root of the routing tree")
    inhibit_rules: list[InhibitRule] = Field(default_factory=list, description="alerts that mute others while they fire")
    heartbeat: Heartbeat | None = Field(None, description="a dead man's switch to a receiver of your choice")
    leader: Leader = Field(default_factory=Leader, description="the leader lease of vigil serve replicas")

    @field_validator("evaluation_interval")
    @classmethod
    def _interval(cls, v: Decimal) -> Decimal:
        if v < 1 or v > 3600:
            raise ValueError("evaluation_interval must be between 1s and 1h")
        return v

    @field_validator("external_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^\s/]+(/\S*)?$", v):
            raise ValueError(f"external_url {v!r} must be an http(s) URL")
        return v.rstrip("/") if v else v

    def receiver(self, name: str) -> Receiver:
        for r in self.receivers:
            if r.name == name:
                return r
        raise KeyError(name)


DEFAULT_GROUP_WAIT = Decimal(30)
DEFAULT_GROUP_INTERVAL = Decimal(300)
DEFAULT_REPEAT_INTERVAL = Decimal(14400)


def cross_check(spec: Any) -> list[tuple[tuple, str]]:
    """Spec paths and messages for names the section uses: receivers of routes, fallbacks and the
    heartbeat; duplicate names; fallback cycles; a root with matchers or without a receiver."""
    a: AlertingSpec | None = getattr(spec, "alerting", None)
    if a is None:
        return []
    out: list[tuple[tuple, str]] = []
    names: dict[str, int] = {}
    for i, r in enumerate(a.receivers):
        if r.name in names:
            out.append((("alerting", "receivers", i, "name"), f"duplicate receiver name {r.name!r} (first at receivers[{names[r.name]}])"))
        else:
            names[r.name] = i
    known = ", ".join(sorted(names)) or "none"

    def unknown(name: str) -> str:
        import difflib

        close = difflib.get_close_matches(name, list(names), n=1)
        return f"unknown receiver {name!r}" + (f"; did you mean {close[0]!r}?" if close else f" (receivers: {known})")

    root = a.route
    if root.receiver is None:
        out.append((("alerting", "route", "receiver"), "the root route needs a receiver: it takes every alert no child route takes"))
    if root.matchers:
        out.append((("alerting", "route", "matchers"), "the root route matches every alert; put matchers on its child routes"))
    if root.continue_:
        out.append((("alerting", "route", "continue"), "the root route has no siblings: continue does not apply"))

    def walk(r: Route, loc: tuple) -> None:
        if r.receiver is not None and r.receiver not in names:
            out.append(((*loc, "receiver"), unknown(r.receiver)))
        for j, c in enumerate(r.routes):
            walk(c, (*loc, "routes", j))

    walk(root, ("alerting", "route"))
    for i, r in enumerate(a.receivers):
        if r.fallback is None:
            continue
        if r.fallback not in names:
            out.append((("alerting", "receivers", i, "fallback"), unknown(r.fallback)))
            continue
        seen = [r.name]
        nxt: str | None = r.fallback
        while nxt is not None and nxt in names:
            if nxt in seen:
                out.append((("alerting", "receivers", i, "fallback"), f"fallbacks go round in a circle: {' -> '.join(seen + [nxt])}"))
                break
            seen.append(nxt)
            nxt = a.receivers[names[nxt]].fallback
    if a.heartbeat is not None and a.heartbeat.receiver not in names:
        out.append((("alerting", "heartbeat", "receiver"), unknown(a.heartbeat.receiver)))
    if a.evaluation_interval > 0 and a.leader.lease < a.leader.poll_seconds * 2:
        out.append((("alerting", "leader", "poll"), "poll at most half the lease, so a live leader renews before it expires"))
    return out


def describe_timers(group_wait: Decimal, group_interval: Decimal, repeat_interval: Decimal) -> str:
    return f"group_wait {format_duration(group_wait)}, group_interval {format_duration(group_interval)}, repeat_interval {format_duration(repeat_interval)}"


Route.model_rebuild()
