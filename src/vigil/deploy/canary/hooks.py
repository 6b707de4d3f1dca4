"""How the canary loop changes traffic: command hooks and signed webhooks.

Every hook gets one call per action (``set_weight``, ``rollback``, ``promote``) and must be
idempotent: after a crash the loop may call it again with the same weight.

**Command** (``command: [argv...]``): run without a shell, from the spec's directory, with stdin
closed. ``{weight}``, ``{run_id}``, ``{action}`` and ``{service}`` in an argument are replaced, and
the environment carries ``VIGIL_CANARY_ACTION``, ``VIGIL_CANARY_WEIGHT``, ``VIGIL_CANARY_RUN_ID``,
``VIGIL_CANARY_SERVICE``, ``VIGIL_CANARY_BASELINE``, ``VIGIL_CANARY_CANARY``,
``VIGIL_CANARY_DELIVERY``. A non-zero exit, a missing program or the timeout (the whole process
group is killed) fails the hook, with the tail of its stderr. The command starts in its own session;
its process group is recorded in the action's ``started`` event before vigil waits for it, and it is
killed when the driver is interrupted. If the driver dies anyway (SIGKILL), the next invocation ends
that group before it acts (:mod:`vigil.deploy.canary.procs`), so no orphan undoes a rollback.

**Webhook** (``webhook: {url, secret_env | secret_file}``): ``POST`` of the JSON body
``{"action", "weight", "run_id", "service", "baseline", "canary", "step", "at", "delivery"}``
(keys sorted, compact), with the headers

- ``X-Vigil-Signature-256: sha256=<hex HMAC-SHA256 of the exact body with the secret>``,
- ``X-Vigil-Event: <action>`` and ``X-Vigil-Delivery: <run id>-<event id>`` (the same on a retry).

A receiver checks more than the signature: :class:`vigil.deploy.canary.receiver.DeliveryGuard`
refuses stale bodies (``at`` outside a tolerance window), repeated delivery ids and deliveries older
than one already accepted for the run, so a captured webhook cannot be replayed to move the weight.

The secret comes from the environment variable or file the spec names, never from the spec, and
is read when the hooks are built, so a missing secret stops a run before it starts. 2xx succeeds;
a refused connection, a timeout, 429 or 5xx is retried ``retries`` times (``Retry-After`` is
honoured up to 60 s, else 1 s, 2 s, 4 s ...), with the loop's injected sleep; any other status
fails at once, and redirects are not followed. Before each call the host's addresses are resolved
and a link-local or cloud metadata address (169.254.0.0/16, fe80::/10, fd00:ec2::254, ...) is
refused unless ``allow_link_local: true``. (The HTTP client resolves the name again when it
connects; a hostile DNS server could answer differently the second time. Use an IP address or a
name you control when that matters.)
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol
from urllib.parse import urlsplit

import httpx

from vigil import __version__
from vigil.deploy.canary import procs
from vigil.deploy.canary.receiver import sign, verify
from vigil.deploy.canary.spec import HookSpec, HooksSpec, WebhookSpec
from vigil.errors import ExternalError, UsageError
from vigil.netguard import addresses_problem, resolved_addresses

__all__ = ["CommandHook", "Hook", "HookCall", "HookError", "HookSet", "WebhookHook", "build_hook", "build_hooks",
           "read_secret", "sign", "verify"]

MAX_RETRY_AFTER = 60.0
TAIL = 2000


class HookError(ExternalError):
    """A hook failed: a command exited non-zero or timed out, a webhook was refused or answered an error."""

    code = "canary-hook"


@dataclass(frozen=True)
class HookCall:
    action: str  # set_weight | rollback | promote
    weight: int
    run_id: int
    service: str | None
    baseline: str
    canary: str
    step: int | None
    at: str
    delivery: str
    on_process: Callable[[dict], None] | None = field(default=None, compare=False, repr=False)
    """Told the started command's process group (:func:`vigil.deploy.canary.procs.describe`)
    before the hook is waited for, so the run's record names what a recovery must end."""

    def payload(self) -> dict:
        return {
            "action": self.action,
            "weight": self.weight,
            "run_id": self.run_id,
            "service": self.service,
            "baseline": self.baseline,
            "canary": self.canary,
            "step": self.step,
            "at": self.at,
            "delivery": self.delivery,
        }


class Hook(Protocol):
    def __call__(self, call: HookCall) -> dict:
        """Do the action; return details for the record. Raises :class:`HookError`."""


def _tail(b: bytes | str | None) -> str:
    if not b:
        return ""
    s = b.decode("utf-8", "replace") if isinstance(b, bytes) else b
    s = s.strip()
    return s if len(s) <= TAIL else "..." + s[-TAIL:]


_PLACEHOLDER = re.compile(r"\{(weight|run_id|action|service)\}")


class CommandHook:
    def __init__(self, argv: list[str], timeout: float, *, cwd: Path | None = None) -> None:
        self.argv = list(argv)
        self.timeout = timeout
        self.cwd = cwd

    def describe(self) -> str:
        return "command " + " ".join(self.argv)

    def __call__(self, call: HookCall) -> dict:
        values = {"weight": str(call.weight), "run_id": str(call.run_id), "action": call.action, "service": call.service or ""}
        args = [_PLACEHOLDER.sub(lambda m: values[m.group(1)], a) for a in self.argv]
        env = dict(os.environ)
        env.update(
            {
                "VIGIL_CANARY_ACTION": call.action,
                "VIGIL_CANARY_WEIGHT": str(call.weight),
                "VIGIL_CANARY_RUN_ID": str(call.run_id),
                "VIGIL_CANARY_SERVICE": call.service or "",
                "VIGIL_CANARY_BASELINE": call.baseline,
                "VIGIL_CANARY_CANARY": call.canary,
                "VIGIL_CANARY_DELIVERY": call.delivery,
            }
        )
        what = f"the {call.action} hook ({args[0]})"
        try:
            p = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=self.cwd, env=env, start_new_session=True,
            )
        except FileNotFoundError:
            raise HookError(f"{what}: command not found", hint="check canary.run.hooks: the program must exist and be on PATH or given by path") from None
        except PermissionError:
            raise HookError(f"{what}: permission denied", hint="make the program executable (chmod +x)") from None
        except OSError as e:
            raise HookError(f"{what}: cannot start: {e.strerror or e}") from None
        try:
            if call.on_process is not None:
                call.on_process(procs.describe(p.pid))
            out, err = p.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(p)
            out, err = p.communicate()
            raise HookError(
                f"{what} timed out after {self.timeout:g}s and was killed" + (f": {_tail(err)}" if _tail(err) else ""),
                hint="raise the hook's timeout in canary.run.hooks, or make the hook return sooner",
            ) from None
        except BaseException:
            # the driver is interrupted (Ctrl-C, SIGTERM) or its record failed: the hook must not
            # outlive the call that started it
            _kill_group(p)
            p.communicate()
            raise
        if p.returncode != 0:
            raise HookError(
                f"{what} exited with {p.returncode}" + (f": {_tail(err)}" if _tail(err) else ""),
                hint="the hook's stderr is above; the run's record keeps it (`vigil canary history`)",
            )
        return {"hook": "command", "argv": args, "exit_code": 0, "stdout": _tail(out)}


def _kill_group(p: subprocess.Popen) -> None:
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        p.kill()


def read_secret(spec: WebhookSpec, base_dir: Path | None, environ: dict | None = None) -> bytes:
    env = os.environ if environ is None else environ
    if spec.secret_env is not None:
        v = env.get(spec.secret_env, "")
        if not v:
            raise UsageError(
                f"the webhook secret: environment variable {spec.secret_env} is not set or empty",
                hint=f"export {spec.secret_env} (a CI secret) before `vigil canary run`",
            )
        return v.encode("utf-8")
    assert spec.secret_file is not None
    p = Path(spec.secret_file)
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    try:
        data = p.read_bytes().strip()
    except OSError as e:
        raise UsageError(f"the webhook secret: cannot read {p}: {e.strerror or e}", hint="check canary.run.hooks.*.webhook.secret_file") from None
    if not data:
        raise UsageError(f"the webhook secret file {p} is empty")
    return data


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(value)))
    except ValueError:
        return None  # an HTTP date: fall back to the backoff


class WebhookHook:
    def __init__(
        self,
        spec: WebhookSpec,
        timeout: float,
        *,
        secret: bytes,
        sleep: Callable[[float], None] = time.sleep,
        resolve: Callable[..., list] = socket.getaddrinfo,
    ) -> None:
        self.spec = spec
        self.url = spec.url
        self.timeout = timeout
        self.secret = secret
        self.sleep = sleep
        self.resolve = resolve

    def describe(self) -> str:
        return f"webhook {self.url}"

    def check_address(self) -> list[str]:
        """Resolve the URL's host; refuse link-local and metadata addresses (:mod:`vigil.netguard`). Returns the addresses."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            addrs = resolved_addresses(host, port, resolver=self.resolve)
        except (OSError, UnicodeError) as e:
            raise HookError(f"webhook {self.url}: cannot resolve {host}: {e}", hint="check the hook's url and DNS") from None
        why = None if self.spec.allow_link_local else addresses_problem(host, addrs)
        if why:
            raise HookError(
                f"webhook {self.url} refused: {why}",
                hint="a hook must not reach link-local or metadata addresses; set allow_link_local: true only if intended",
            )
        return addrs

    def __call__(self, call: HookCall) -> dict:
        body = json.dumps(call.payload(), sort_keys=True, separators=(",", ":")).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"vigil/{__version__}",
            "X-Vigil-Event": call.action,
            "X-Vigil-Delivery": call.delivery,
            "X-Vigil-Signature-256": sign(self.secret, body),
        }
        self.check_address()
        error = ""
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            for attempt in range(self.spec.retries + 1):
                delay: float | None = None
                try:
                    r = client.post(self.url, content=body, headers=headers)
                except httpx.TimeoutException:
                    error = f"timed out after {self.timeout:g}s"
                except httpx.HTTPError as e:
                    error = f"{type(e).__name__}: {e}"
                else:
                    if 200 <= r.status_code < 300:
                        return {"hook": "webhook", "url": self.url, "status": r.status_code, "attempts": attempt + 1, "response": _tail(r.text)[:500]}
                    error = f"answered HTTP {r.status_code}" + (f": {_tail(r.text)[:300]}" if r.text.strip() else "")
                    if r.status_code != 429 and r.status_code < 500:
                        raise HookError(
                            f"the {call.action} webhook {self.url} {error}",
                            hint="a 4xx is not retried: check the receiver's configuration (401/403: the signing secret)",
                        )
                    delay = _retry_after(r.headers.get("retry-after"))
                if attempt < self.spec.retries:
                    self.sleep(delay if delay is not None else float(min(2**attempt, 30)))
        raise HookError(
            f"the {call.action} webhook {self.url} failed after {self.spec.retries + 1} attempt(s): {error}",
            hint="is the receiver up? the call is retried on restart (`vigil canary run --resume` or --rollback)",
        )


@dataclass
class HookSet:
    set_weight: Hook
    rollback: Hook | None = None  # default: set_weight with weight 0
    promote: Hook | None = None  # default: set_weight with weight 100

    def for_action(self, action: str) -> Hook:
        if action == "rollback" and self.rollback is not None:
            return self.rollback
        if action == "promote" and self.promote is not None:
            return self.promote
        return self.set_weight


def build_hook(spec: HookSpec, *, base_dir: Path | None, sleep: Callable[[float], None], environ: dict | None = None) -> Hook:
    timeout = float(spec.timeout)
    if spec.command is not None:
        return CommandHook(spec.command, timeout, cwd=base_dir)
    assert spec.webhook is not None
    return WebhookHook(spec.webhook, timeout, secret=read_secret(spec.webhook, base_dir, environ), sleep=sleep)


def build_hooks(spec: HooksSpec, *, base_dir: Path | None, sleep: Callable[[float], None], environ: dict | None = None) -> HookSet:
    """The hooks of ``canary.run.hooks``; secrets are read now (a missing one is a UsageError)."""
    return HookSet(
        build_hook(spec.set_weight, base_dir=base_dir, sleep=sleep, environ=environ),
        None if spec.rollback is None else build_hook(spec.rollback, base_dir=base_dir, sleep=sleep, environ=environ),
        None if spec.promote is None else build_hook(spec.promote, base_dir=base_dir, sleep=sleep, environ=environ),
    )
