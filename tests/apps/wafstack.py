"""Real WAFs on loopback for the tests: Apache with ModSecurity 2 and the Core Rule Set 3.3.4 from
Debian's packages, and an nginx ``limit_req`` front, each in front of a small backend that answers
200 to everything. Everything lives in a temp dir, listens on 127.0.0.1 and is stopped at the end.

Root-safe and not: started as root, Apache's children run as ``nobody`` (Apache refuses to serve as
root) and nginx's workers too; as another user both run as that user. Every wait is bounded.

* :class:`Backend`: ThreadingHTTPServer on 127.0.0.1:0; ``seen`` counts requests that got through.
* :class:`ApacheCrs`: one Apache, two ports: ``crs_url`` (CRS alone) and ``custom_url`` (CRS plus
  ``examples/platform/waf/vigil-custom-rules.conf``); ModSecurity messages go to ``error_log``,
  and CRS's test rule 999999 logs the ``X-CRS-Test`` marker header (go-ftw's log markers).
* :class:`NginxRateLimit`: nginx with ``limit_req zone=... rate=R burst=B nodelay`` answering 429.
"""

from __future__ import annotations

import http.server
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CUSTOM_RULES = ROOT / "examples" / "platform" / "waf" / "vigil-custom-rules.conf"
APACHE = "/usr/sbin/apache2"
MODULES = "/usr/lib/apache2/modules"
NGINX = "/usr/sbin/nginx"


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port: int, proc: subprocess.Popen, what: str, log: Path | None = None, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text()[-2000:] if log and log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)  # a bounded wait for a real external process to listen
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s")


class _Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _any(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.server.seen += 1  # type: ignore[attr-defined]
        b = b'{"ok": true}\n'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _any  # noqa: N815

    def do_HEAD(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a: object) -> None:
        pass


class Backend:
    def __init__(self) -> None:
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
        self.srv.daemon_threads = True
        self.srv.seen = 0  # type: ignore[attr-defined]
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    @property
    def seen(self) -> int:
        return self.srv.seen  # type: ignore[attr-defined]

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()


def _unprivileged() -> tuple[str, str] | None:
    """(user, group) for workers when running as root."""
    if os.geteuid() != 0:
        return None
    pw = pwd.getpwnam("nobody")
    import grp

    return pw.pw_name, grp.getgrgid(pw.pw_gid).gr_name


APACHE_CONF = """\
ServerRoot "{dir}"
ServerName localhost
Listen 127.0.0.1:{crs_port}
Listen 127.0.0.1:{custom_port}
PidFile {dir}/httpd.pid
ErrorLog {dir}/error.log
LogLevel warn
DefaultRuntimeDir {dir}
Mutex file:{dir}
LoadModule mpm_event_module {mods}/mod_mpm_event.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule unique_id_module {mods}/mod_unique_id.so
LoadModule proxy_module {mods}/mod_proxy.so
LoadModule proxy_http_module {mods}/mod_proxy_http.so
LoadModule security2_module {mods}/mod_security2.so
{user}
ServerLimit 1
StartServers 1
ThreadsPerChild 25
MaxRequestWorkers 25
# ModSecurity: the parts of Debian's modsecurity.conf-recommended that matter here
SecRuleEngine On
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "^(?:application(?:/soap\\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 131072
SecRequestBodyLimitAction Reject
SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.'"
SecPcreMatchLimit 100000
SecPcreMatchLimitRecursion 100000
SecResponseBodyAccess Off
SecTmpDir {dir}/modsec
SecDataDir {dir}/modsec
SecAuditEngine Off
SecUnicodeMapFile /etc/modsecurity/unicode.mapping 20127
Include /etc/modsecurity/crs/crs-setup.conf
# go-ftw's log marker (CRS's test setup)
SecRule REQUEST_HEADERS:X-CRS-Test "@rx ^.*$" "id:999999,phase:1,log,msg:'X-CRS-Test %{{MATCHED_VAR}}',pass,t:none"
Include /usr/share/modsecurity-crs/rules/*.conf
ProxyPass / http://127.0.0.1:{backend}/
<VirtualHost 127.0.0.1:{crs_port}>
  ProxyPass / http://127.0.0.1:{backend}/
</VirtualHost>
<VirtualHost 127.0.0.1:{custom_port}>
  Include {custom}
  ProxyPass / http://127.0.0.1:{backend}/
</VirtualHost>
"""


class ApacheCrs:
    def __init__(self, custom_rules: Path = CUSTOM_RULES) -> None:
        self.backend = Backend()
        self.dir = Path(tempfile.mkdtemp(prefix="vigil-apache-"))
        (self.dir / "modsec").mkdir()
        self.crs_port, self.custom_port = free_port(), free_port()
        up = _unprivileged()
        user = f"User {up[0]}\nGroup {up[1]}" if up else ""
        if up:
            shutil.chown(self.dir / "modsec", up[0], up[1])
            os.chmod(self.dir, 0o755)
        self.conf = self.dir / "httpd.conf"
        self.conf.write_text(APACHE_CONF.format(dir=self.dir, crs_port=self.crs_port, custom_port=self.custom_port, mods=MODULES,
                                                user=user, backend=self.backend.port, custom=custom_rules))
        self.error_log = self.dir / "error.log"
        check = subprocess.run([APACHE, "-f", str(self.conf), "-t"], capture_output=True, text=True, timeout=60)
        if check.returncode != 0:
            raise RuntimeError(f"apache2 -t: {check.stderr[-3000:]}")
        self.proc = subprocess.Popen([APACHE, "-f", str(self.conf), "-DFOREGROUND"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        wait_port(self.crs_port, self.proc, "apache2", self.error_log, timeout=60)
        wait_port(self.custom_port, self.proc, "apache2", self.error_log, timeout=60)

    @property
    def crs_url(self) -> str:
        return f"http://127.0.0.1:{self.crs_port}"

    @property
    def custom_url(self) -> str:
        return f"http://127.0.0.1:{self.custom_port}"

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.backend.close()
        shutil.rmtree(self.dir, ignore_errors=True)


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {dir}/tmp/body;
  proxy_temp_path {dir}/tmp/proxy;
  fastcgi_temp_path {dir}/tmp/fastcgi;
  uwsgi_temp_path {dir}/tmp/uwsgi;
  scgi_temp_path {dir}/tmp/scgi;
{zones}
  limit_req_status 429;
  server {{
    listen 127.0.0.1:{port};
{locations}
  }}
}}
"""


class NginxRateLimit:
    """nginx answering 429 past ``rate`` (nginx syntax: ``10r/s``, ``600r/m``) with ``burst``.
    Each of ``buckets`` locations ``/b0/``, ``/b1/``, ... has a zone of its own (a full bucket per
    test), ``/`` the first."""

    def __init__(self, rate: str, burst: int, buckets: int = 1) -> None:
        self.backend = Backend()
        self.dir = Path(tempfile.mkdtemp(prefix="vigil-nginx-"))
        (self.dir / "tmp").mkdir()
        self.port = free_port()
        up = _unprivileged()
        user = f"user {up[0]} {up[1]};" if up else ""
        if up:
            os.chmod(self.dir, 0o755)
            shutil.chown(self.dir / "tmp", up[0], up[1])
        self.conf = self.dir / "nginx.conf"
        zones = "\n".join(f"  limit_req_zone $binary_remote_addr zone=b{i}:1m rate={rate};" for i in range(buckets))
        locs = "\n".join(
            f"    location {'/' if i == 0 else f'/b{i}/'} {{\n      limit_req zone=b{i} burst={burst} nodelay;\n"
            f"      proxy_pass http://127.0.0.1:{self.backend.port};\n    }}"
            for i in range(buckets)
        )
        self.conf.write_text(NGINX_CONF.format(dir=self.dir, user=user, port=self.port, zones=zones, locations=locs))
        self.proc = subprocess.Popen([NGINX, "-p", str(self.dir), "-c", str(self.conf), "-e", str(self.dir / "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        wait_port(self.port, self.proc, "nginx", self.dir / "error.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGQUIT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.backend.close()
        shutil.rmtree(self.dir, ignore_errors=True)
