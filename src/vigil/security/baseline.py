"""The secrets baseline: a file of waivers, each with a reason, an owner and an expiry.

A waiver names a finding by its fingerprint (``vigil secrets scan --json`` shows it). Through its
expiry day (UTC) the finding is reported as waived and does not fail the scan; after it, the waiver
itself is an error finding (``waiver-expired``) until someone renews or deletes it. Example::

    version: 1
    waivers:
      - fingerprint: 0c6f0a8c3b0e4f6f9d1e2a3b4c5d6e7f
        rule: keyword-secret
        path: tests/fixtures/app.env
        reason: password of the throwaway database the tests start
        owner: team-platform
        expires: 2026-12-31

:func:`load_baseline` reads and checks a file (every problem is a usage error naming the entry);
:func:`waiver_state` is pure.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from vigil.errors import UsageError

MAX_BASELINE_BYTES = 5 * 1024 * 1024
_FP = re.compile(r"^[0-9a-f]{16,64}$")


@dataclass(frozen=True)
class Waiver:
    fingerprint: str
    reason: str
    owner: str
    expires: date
    rule: str | None = None
    path: str | None = None

    def expires_at(self) -> datetime:
        """The first instant the waiver no longer holds: the day after ``expires``, 00:00 UTC."""
        return datetime.combine(self.expires + timedelta(days=1), time(0), tzinfo=timezone.utc)

    def expired(self, at: datetime) -> bool:
        return at >= self.expires_at()

    def to_dict(self) -> dict:
        out = {"fingerprint": self.fingerprint, "rule": self.rule, "path": self.path, "reason": self.reason, "owner": self.owner,
               "expires": self.expires.isoformat()}
        return out


def parse_expiry(value: object, where: str) -> date:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise UsageError(f"{where}: expires must be a date YYYY-MM-DD, got {value!r}")


def check_waiver_fields(fingerprint: object, reason: object, owner: object, expires: object, where: str) -> tuple[str, str, str, date]:
    """The fields of a waiver, checked: every waiver carries a reason, an owner and an expiry."""
    if not isinstance(fingerprint, str) or not _FP.match(fingerprint.strip().lower()):
        raise UsageError(f"{where}: fingerprint must be 16-64 hex digits, got {fingerprint!r}",
                         hint="copy it from `vigil secrets scan --json` (findings[].fingerprint)")
    for name, v in (("reason", reason), ("owner", owner)):
        if not isinstance(v, str) or not v.strip():
            raise UsageError(f"{where}: a waiver needs a {name}", hint="every waiver has a reason, an owner and an expiry")
        if len(v) > 2000:
            raise UsageError(f"{where}: {name} is longer than 2000 characters")
    if expires is None:
        raise UsageError(f"{where}: a waiver needs an expiry (expires: YYYY-MM-DD)", hint="a waiver without an end is a permanent hole")
    return fingerprint.strip().lower(), str(reason).strip(), str(owner).strip(), parse_expiry(expires, where)


def load_baseline(path: str | os.PathLike) -> list[Waiver]:
    """The waivers of a baseline file. A missing file is an error (a typo must not waive nothing
    silently); an empty file has no waivers."""
    p = Path(path)
    try:
        data = p.read_bytes()[: MAX_BASELINE_BYTES + 1]
    except FileNotFoundError:
        raise UsageError(f"baseline {path}: no such file", hint="create it with `vigil secrets waive ... --baseline FILE`") from None
    except OSError as e:
        raise UsageError(f"baseline {path}: {e.strerror or e}") from None
    if len(data) > MAX_BASELINE_BYTES:
        raise UsageError(f"baseline {path}: larger than 5 MiB")
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        doc = YAML(typ="safe", pure=True).load(io.StringIO(data.decode("utf-8")))
    except (YAMLError, UnicodeDecodeError, ValueError) as e:
        raise UsageError(f"baseline {path}: not valid YAML ({str(e).splitlines()[0][:200]})") from None
    if doc is None:
        return []
    if not isinstance(doc, dict) or doc.get("version") != 1 or not isinstance(doc.get("waivers", []), list):
        raise UsageError(f"baseline {path}: expected a mapping with `version: 1` and a list `waivers:`")
    unknown = set(doc) - {"version", "waivers"}
    if unknown:
        raise UsageError(f"baseline {path}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    out: list[Waiver] = []
    seen: dict[str, int] = {}
    for i, w in enumerate(doc.get("waivers") or []):
        where = f"baseline {path}: waivers[{i}]"
        if not isinstance(w, dict):
            raise UsageError(f"{where}: expected a mapping")
        extra = set(w) - {"fingerprint", "rule", "path", "reason", "owner", "expires"}
        if extra:
            raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(map(str, extra)))}")
        fp, reason, owner, expires = check_waiver_fields(w.get("fingerprint"), w.get("reason"), w.get("owner"), w.get("expires"), where)
        if fp in seen:
            raise UsageError(f"{where}: fingerprint {fp} is already waived by waivers[{seen[fp]}]")
        seen[fp] = i
        out.append(Waiver(fp, reason, owner, expires, w.get("rule"), w.get("path")))
    return out


def save_baseline(path: str | os.PathLike, waivers: list[Waiver]) -> None:
    """Write the baseline (atomically: a temporary file renamed over the old one)."""
    from ruamel.yaml import YAML

    doc = {"version": 1, "waivers": [
        {k: v for k, v in (("fingerprint", w.fingerprint), ("rule", w.rule), ("path", w.path), ("reason", w.reason),
                           ("owner", w.owner), ("expires", w.expires.isoformat())) if v is not None}
        for w in waivers
    ]}
    buf = io.StringIO()
    buf.write("# vigil secrets baseline: waivers with a reason, an owner and an expiry (vigil secrets waive)\n")
    YAML(typ="safe", pure=True).dump(doc, buf)
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(buf.getvalue(), encoding="utf-8")
        os.replace(tmp, p)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"cannot write baseline {path}: {e.strerror or e}") from None
