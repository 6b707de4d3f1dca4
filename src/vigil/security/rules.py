"""The secret rules: providers the platform uses, keyword context, and what is only a look-alike.

Pure data and pure functions (no I/O). :mod:`vigil.security.scanner` runs these rules beside
detect-secrets' plugins; everything a rule or a plugin finds goes through :func:`lookalike` before
it becomes a finding.

A rule finds a *value* (the secret) in a text; the finding's line and column are where the value
starts. Severities: ``critical`` for a credential that grants access to a provider or a database
(cloud keys, tokens, private keys, passwords inside connection URLs); ``high`` for a secret found by
keyword context and entropy, or a bearer token; ``medium`` for test-mode keys of a provider.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class SecretRule:
    id: str
    description: str
    severity: str
    pattern: re.Pattern[str]
    group: int = 1
    """The regex group holding the secret value."""
    context_check: bool = False
    """Whether the value must also pass :func:`plausible_value` (values found by context only)."""
    prefix: str | None = None
    """A fixed prefix that may be shown in the redacted form (``ghp_``, ``AKIA``)."""
    keyword: bool = False
    """Whether the rule needs a secret-sounding word on the line (then it only runs on such lines)."""
    needles: tuple[str, ...] = ()
    """Lowercase literals one of which a matching line holds (the rule runs only on such lines)."""


def _c(p: str, flags: int = 0) -> re.Pattern[str]:
    return re.compile(p, flags)


# What a secret's name looks like in an assignment: FOO_PASSWORD, apiKey, client-secret, ...
SECRET_NAME = (
    r"(?:[A-Za-z0-9_.-]*?(?:passw(?:or)?d|passwd|pwd|secret|token|api[_.-]?key|apikey|access[_.-]?key|auth[_.-]?key"
    r"|private[_.-]?key|client[_.-]?key|signing[_.-]?key|encryption[_.-]?key|session[_.-]?key|master[_.-]?key"
    r"|credentials?|db[_.-]?pass|conn(?:ection)?[_.-]?str(?:ing)?|routing[_.-]?key|integration[_.-]?key)[A-Za-z0-9_.-]*)"
)
# name, then an assignment in any of the common syntaxes (=, :, :=, =>, a Dockerfile's ENV NAME value,
# a command-line flag --name value), then the value, quoted or not
_VALUE = (
    r"(?:[rbuf]?[\"'`]([^\"'`\r\n]{4,400})[\"'`]|(?![-!&*@$])([^\s\"'`,;(){}\[\]<>|&#]{4,400}(?<![:.]))(?=$|[\s\"'`,;)}\]#&|<>]))"
)
_ASSIGN = r"(?im)(?<![A-Za-z0-9])(" + SECRET_NAME + r")[\"'\]]{0,2}[ \t]*(?::=|=>|==?|:)[ \t]*" + _VALUE
# a name and its value separated by blanks only where that is the syntax: a Dockerfile's ENV or
# ARG, a command-line flag (--password value), or a config line that starts with the name
_ASSIGN_BLANK = r"(?im)(?:^[ \t]*|\b(?:ENV|ARG)[ \t]+|--)(" + SECRET_NAME + r")[ \t]+" + _VALUE

RULES: tuple[SecretRule, ...] = (
    SecretRule("aws-access-key-id", "an AWS access key id", "critical",
         _c(r"(?<![A-Za-z0-9])((?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16})(?![A-Za-z0-9])"), prefix="AKIA",
         needles=("akia", "asia", "abia", "acca", "a3t")),
    SecretRule("aws-secret-access-key", "an AWS secret access key", "critical",
         _c(r"(?i)aws[_.-]?(?:secret[_.-]?(?:access[_.-]?)?key|secret)[\"']?\s*(?::=|=>|[:=]|\s)\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"),
         keyword=True),
    SecretRule("github-token", "a GitHub token", "critical",
         _c(r"(?<![A-Za-z0-9_])((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,251})(?![A-Za-z0-9_])"), needles=('gh',)),
    SecretRule("github-fine-grained-token", "a GitHub fine-grained personal access token", "critical",
         _c(r"(?<![A-Za-z0-9_])(github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})(?![A-Za-z0-9_])"), prefix="github_pat_", needles=('github_pat_',)),
    SecretRule("stripe-live-key", "a Stripe live secret or restricted key", "critical",
         _c(r"(?<![A-Za-z0-9_])((?:sk|rk)_live_[A-Za-z0-9]{24,247})(?![A-Za-z0-9_])"), needles=('_live_',)),
    SecretRule("stripe-test-key", "a Stripe test-mode secret key", "medium",
         _c(r"(?<![A-Za-z0-9_])((?:sk|rk)_test_[A-Za-z0-9]{24,247})(?![A-Za-z0-9_])"), needles=('_test_',)),
    SecretRule("stripe-webhook-secret", "a Stripe webhook signing secret", "high",
         _c(r"(?<![A-Za-z0-9_])(whsec_[A-Za-z0-9]{32,})(?![A-Za-z0-9_])"), prefix="whsec_", needles=('whsec_',)),
    SecretRule("pagerduty-routing-key", "a PagerDuty integration (routing) key", "critical",
         _c(r"(?i)(?:pagerduty|pager_duty|\bpd)[A-Za-z0-9_.-]{0,30}?(?:routing|integration|service)?[_.-]?key[\"']?\s*(?::=|=>|[:=]|\s)\s*[\"']?([a-f0-9]{32})(?![A-Za-z0-9])"), keyword=True),
    SecretRule("pagerduty-routing-key", "a PagerDuty integration (routing) key", "critical",
         _c(r"(?i)[\"']?(?:routing|integration)[_.-]?key[\"']?\s*(?::=|=>|[:=]|\s)\s*[\"']?([a-f0-9]{32})(?![A-Za-z0-9])"), keyword=True),
    SecretRule("pagerduty-api-token", "a PagerDuty REST API token", "critical",
         _c(r"(?i)(?:Token\s+token=|(?:pagerduty|pager_duty|\bpd)[A-Za-z0-9_.-]{0,30}?(?:api)?[_.-]?token[\"']?\s*(?::=|=>|[:=]|\s)\s*[\"']?)"
            r"((?:u\+)?[A-Za-z0-9_+-]{20})(?![A-Za-z0-9_+-])"), context_check=True, keyword=True),
    SecretRule("smtp-url-credentials", "SMTP credentials in a URL", "critical",
         _c(r"(?i)\bsmtps?(?:\+[a-z]+)?://[^:/\s@\"'<>]+:([^@\s/\"'<>]+)@[^\s/\"'<>]+"), context_check=True, needles=('smtp',)),
    SecretRule("smtp-password", "an SMTP password", "critical",
         _c(r"(?i)(?<![A-Za-z0-9])(?:smtp|mail|email)[A-Za-z0-9_.-]{0,20}?(?:passw(?:or)?d|pwd|pass|secret)[\"'\]]{0,2}\s*(?::=|=>|[:=]|\s)\s*"
            r"[\"'`]?([^\s\"'`,;]{6,200})"), context_check=True, keyword=True),
    SecretRule("private-key", "a private key", "critical",
         _c(r"-----BEGIN ((?:RSA |DSA |EC |OPENSSH |ENCRYPTED |PGP |SSH2 ENCRYPTED )?PRIVATE KEY(?: BLOCK)?)-----"
            r"((?:(?!-----)[\s\S]){40,20000}?)-----END \1-----"), group=2),
    SecretRule("database-url-password", "a database URL with a password", "critical",
         _c(r"(?i)\b(?:postgres(?:ql)?|pgsql|mysql|mariadb|mongodb(?:\+srv)?|redis|rediss|amqps?|mssql|sqlserver|cockroachdb"
            r"|clickhouse|oracle|couchdb|neo4j|cassandra)(?:\+[a-z0-9]+)?://[^:/\s@\"'<>]*:([^@\s/\"'<>]+)@[^\s/\"'<>]+"),
         context_check=True, needles=('://',)),
    SecretRule("jdbc-password", "a JDBC URL with a password", "critical",
         _c(r"(?i)\bjdbc:[a-z0-9:]+//[^\s\"'<>]*?[?&;]password=([^&;\s\"'<>]+)"), context_check=True, needles=('jdbc:',)),
    SecretRule("slack-webhook", "a Slack incoming webhook URL", "high",
         _c(r"(hooks\.slack\.com/services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}/[A-Za-z0-9]{20,32})"), needles=('hooks.slack.com',)),
    SecretRule("google-api-key", "a Google API key", "high", _c(r"(?<![A-Za-z0-9_-])(AIza[0-9A-Za-z_-]{35})(?![A-Za-z0-9_-])"), prefix="AIza", needles=('aiza',)),
    SecretRule("bearer-token", "a bearer token in an Authorization header", "high",
         _c(r"(?i)authorization[\"']?\s*[:=]\s*[\"']?(?:bearer|token)\s+([A-Za-z0-9._~+/=-]{16,})"), context_check=True, keyword=True),
    SecretRule("keyword-secret", "a secret assigned to a secret-sounding name", "high", _c(_ASSIGN), group=2, context_check=True, keyword=True),
    SecretRule("keyword-secret", "a secret assigned to a secret-sounding name", "high", _c(_ASSIGN_BLANK), group=2, context_check=True, keyword=True),
    SecretRule("keyword-secret", "a secret assigned to a secret-sounding name", "high",
         _c(r"(?i)<(" + SECRET_NAME + r")>([^<\s]{4,400})</"), group=2, context_check=True),
)
"""The rules, most specific first: where two rules find the same value the first one names it."""

# Rule ids of detect-secrets' plugins as vigil reports them, with their severities. Plugins that
# duplicate a vigil rule keep their own id; the finding names both engines.
DETECT_SECRETS_RULES: dict[str, tuple[str, str]] = {
    "AWS Access Key": ("aws-access-key-id", "critical"),
    "Artifactory Credentials": ("artifactory-token", "high"),
    "Azure Storage Account access key": ("azure-storage-key", "critical"),
    "Basic Auth Credentials": ("url-credentials", "high"),
    "Cloudant Credentials": ("cloudant-credentials", "high"),
    "Discord Bot Token": ("discord-bot-token", "high"),
    "GitHub Token": ("github-token", "critical"),
    "GitLab Token": ("gitlab-token", "critical"),
    "IBM Cloud IAM Key": ("ibm-cloud-iam-key", "high"),
    "IBM COS HMAC Credentials": ("ibm-cos-hmac", "high"),
    "JSON Web Token": ("jwt", "high"),
    "Mailchimp Access Key": ("mailchimp-key", "high"),
    "NPM tokens": ("npm-token", "high"),
    "OpenAI Token": ("openai-key", "high"),
    "Private Key": ("private-key", "critical"),
    "PyPI Token": ("pypi-token", "high"),
    "SendGrid API Key": ("sendgrid-key", "critical"),
    "Slack Token": ("slack-token", "high"),
    "SoftLayer Credentials": ("softlayer-credentials", "high"),
    "Square OAuth Secret": ("square-oauth-secret", "high"),
    "Stripe Access Key": ("stripe-live-key", "critical"),
    "Telegram Bot Token": ("telegram-bot-token", "high"),
    "Twilio API Key": ("twilio-key", "high"),
    "Secret Keyword": ("keyword-secret", "high"),
}

DESCRIPTIONS: dict[str, str] = {r.id: r.description for r in RULES} | {
    "artifactory-token": "an Artifactory token",
    "azure-storage-key": "an Azure storage account key",
    "url-credentials": "a password in a URL",
    "cloudant-credentials": "Cloudant credentials",
    "discord-bot-token": "a Discord bot token",
    "gitlab-token": "a GitLab token",
    "ibm-cloud-iam-key": "an IBM Cloud IAM key",
    "ibm-cos-hmac": "IBM COS HMAC credentials",
    "jwt": "a JSON web token",
    "mailchimp-key": "a Mailchimp key",
    "npm-token": "an npm token",
    "openai-key": "an OpenAI key",
    "pypi-token": "a PyPI token",
    "sendgrid-key": "a SendGrid key",
    "slack-token": "a Slack token",
    "softlayer-credentials": "SoftLayer credentials",
    "square-oauth-secret": "a Square OAuth secret",
    "telegram-bot-token": "a Telegram bot token",
    "twilio-key": "a Twilio key",
    "waiver-expired": "a baseline waiver that has expired",
}

SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}

# Values published in documentation as examples (AWS, Stripe, PagerDuty, jwt.io, RFC 7519 ...).
KNOWN_EXAMPLES = frozenset(
    {
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AKIAI44QH8DHBEXAMPLE",
        "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "pk_test_TYooMQauvdEDq54NiTphI7jx",
        "sk_test_BQokikJOvBiI2HlWgH4olfQ2",
        "y_NbAkKc66ryYTWUXYEu",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
        ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    }
)

PLACEHOLDER_WORDS = re.compile(
    r"(?i)(example|exemple|sample|dummy|fake|placeholder|changeme|change[_-]me|your[_-]?(?:own[_-]?)?(?:api|secret|token|key|pass|password)"
    r"|redacted|xxxx|\*\*\*|test[_-]?(?:key|token|secret|pass(?:word)?)|not[_-]?a[_-]?(?:real[_-]?)?(?:secret|key|token)|insert[_-]?here|replace[_-]?me"
    r"|<[^>]*>|\$\{|\{\{|%\(|%s\b|\.\.\.|…)"
)
_REFERENCE = re.compile(
    r"(?i)^(?:\$[A-Za-z_{(]|\{|<|--|%[A-Za-z_]+%$|os\.(?:environ|getenv)|process\.env|env\(|getenv|settings\.|config\.|self\.|this\.|"
    r"secrets?\.|vault:|arn:|ssm:|projects/[^/]+/secrets/|!(?:Ref|Sub|GetAtt)|\{\{|<%|#\{|@)"
)
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_IDENT = re.compile(r"^(?:[a-z][a-z0-9]*(?:[-_.][a-z0-9]+)*|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*|[a-z]+(?:[A-Z][a-z0-9]*)+)$")
_PATHLIKE = re.compile(r"^(?:~|\.{1,2})?/[\w.@-]+(?:/[\w.@-]+)*/?$|^[A-Za-z]:\\|\.(?:pem|key|crt|cer|json|ya?ml|txt|p12|pfx|jks|env|conf|ini)$")
_NUMERIC = re.compile(r"^[\d.:,_ -]+$|^v?\d+(?:\.\d+){1,3}(?:[-+][\w.]+)?$")
_SEQ = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456789012345678901234567890123456789"


def entropy(s: str) -> float:
    """Shannon entropy in bits per character."""
    if not s:
        return 0.0
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def char_classes(s: str) -> int:
    return sum(
        bool(x)
        for x in (
            re.search(r"[a-z]", s),
            re.search(r"[A-Z]", s),
            re.search(r"[0-9]", s),
            re.search(r"[^A-Za-z0-9]", s),
        )
    )


def placeholder(value: str) -> str | None:
    """Why ``value`` is a placeholder or a documented example, or None."""
    if value in KNOWN_EXAMPLES or (len(value) >= 16 and any(value in ex or ex in value for ex in KNOWN_EXAMPLES)):
        return "a documented example value"
    if PLACEHOLDER_WORDS.search(value):
        return "a placeholder or an example"
    low = value.lower()
    if low in _SEQ or low[::-1] in _SEQ:
        return "a sequence (abcdef..., 123456...)"
    core = re.sub(r"^[A-Za-z]+_(?:live_|test_)?", "", value)
    if len(core) >= 8 and len(set(core)) <= 3:
        return "a repeated character"
    return None


def plausible_value(value: str) -> str | None:
    """Why a value found only by its context (a secret-sounding name) is not a secret, or None.

    A secret is a literal of 8+ characters that is not a placeholder, a reference to somewhere else
    (``$VAR``, ``os.environ[...]``, ``${{ secrets.X }}``), a path, a URL, a number or version, a
    plain identifier (``my-app-db-credentials``), and that has some randomness (two character
    classes and 3 bits of entropy per character)."""
    v = value.strip()
    if len(v) < 8:
        return "shorter than 8 characters"
    why = placeholder(v)
    if why:
        return why
    if re.search(r"\s", v):
        return "text with spaces (prose, not a key)"
    if _REFERENCE.search(v):
        return "a reference to a value kept elsewhere"
    if "://" in v and "@" not in v:
        return "a URL without credentials"
    if _PATHLIKE.search(v):
        return "a path"
    if _NUMERIC.match(v):
        return "a number, a version or a date"
    if _IDENT.match(v):
        return "an identifier, not a random value"
    if re.search(r"\w\(", v) or v.endswith(")"):
        return "a function call"
    if char_classes(v) < 2:
        return "one character class only"
    if entropy(v) < 3.0:
        return "too little entropy"
    return None


_ID_NAME = re.compile(
    r"(?i)(?:[_.-]|\b|(?<=[a-z]))(?:id|ids|name|names|path|file|filename|dir|url|uri|arn|type|length|len|header|field|policy"
    r"|ttl|expiry|expires|expiration|format|version|hint|label|count|size|prefix|endpoint|hash|hasher|hashers|rotation|reset|regex)"
    r"[\"'\]]{0,2}\s*(?::=|=>|==?|:|\s)\s*[rbuf]?[\"'`]?$"
)


def names_something_else(before: str) -> bool:
    """Whether the name right before a value (the line up to it) names an id, a path, a URL, a
    length ... rather than the secret itself: ``private_key_id``, ``secret_name``, ``token_url``."""
    return bool(_ID_NAME.search(before[-120:]))


def lookalike(rule_id: str, value: str, line: str) -> str | None:
    """Why a value a rule or a plugin found is a look-alike and not a secret, or None.

    UUIDs and hex digests (git SHAs, checksums) are look-alikes unless a secret-sounding name
    holds them; documented example keys, placeholders and low-entropy test fixtures always are."""
    why = placeholder(value)
    if why:
        return why
    if rule_id == "private-key":
        return None
    if rule_id in ("keyword-secret", "url-credentials") and _UUID.match(value) and not re.search(SECRET_NAME, line, re.I):
        return "a UUID"
    body = re.sub(r"^(?:[A-Za-z]{2,4}_(?:live_|test_|pat_)?|AKIA|ASIA|ABIA|ACCA|A3T.|xox.-|AIza|SG\.)", "", value)
    if len(body) >= 12 and entropy(body) < 2.5:
        return "too little entropy for a generated key"
    if _HEX.match(value) and len(value) in (32, 40, 64, 128) and re.search(
        r"(?i)\b(?:sha\d*|md5|digest|checksum|hash|commit|rev(?:ision)?|etag|integrity|fingerprint)\b", line
    ):
        return "a hex digest"
    return None
