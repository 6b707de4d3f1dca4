#!/usr/bin/env python3
"""A tiny receiver for vigil's signed alert webhooks, for `make demo` (standard library only).

Listens on 127.0.0.1:PORT, checks ``X-Vigil-Signature-256`` (HMAC-SHA256 of the body with the
secret in $VIGIL_BRIDGE_SECRET), answers 401 to a bad signature, drops a delivery id it has seen
(answering 200: vigil may send again after a crash), and prints one line per notification:

    2026-11-26T11:07:12Z trigger  [FIRING:1] api-availability-burn (api)  delivery 3f2a...-1  signature ok
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=9099)
    args = ap.parse_args()
    secret = os.environ.get("VIGIL_BRIDGE_SECRET", "").encode()
    if not secret:
        print("alert_sink: set VIGIL_BRIDGE_SECRET", file=sys.stderr)
        return 2
    seen: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            return None

        def answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(want, self.headers.get("x-vigil-signature-256", "")):
                print(f"{now()} refused: the signature does not match", flush=True)
                return self.answer(401)
            doc = json.loads(body)
            delivery = doc.get("delivery", "?")
            if delivery in seen:
                print(f"{now()} repeat of delivery {delivery}: dropped", flush=True)
                return self.answer(200)
            seen.add(delivery)
            alerts = doc.get("alerts", [])
            firing = [a for a in alerts if a.get("status") == "firing"]
            name = doc.get("commonLabels", {}).get("alertname") or doc.get("groupLabels", {}).get("alertname", "")
            svc = doc.get("commonLabels", {}).get("service", "")
            head = "HEARTBEAT" if doc.get("action") == "heartbeat" else (f"FIRING:{len(firing)}" if firing else "RESOLVED")
            summary = (alerts[0].get("annotations", {}).get("summary", "") if alerts else "")
            print(f"{now()} {doc.get('action', '?'):<8} [{head}] {name}" + (f" ({svc})" if svc else "")
                  + f"  delivery {delivery}  signature ok" + (f"\n    {summary}" if summary and head != "HEARTBEAT" else ""), flush=True)
            return self.answer(200)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"{now()} alert sink listening on http://127.0.0.1:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


if __name__ == "__main__":
    sys.exit(main())
