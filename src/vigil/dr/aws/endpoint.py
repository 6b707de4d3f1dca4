"""The SSRF rule for a user-given endpoint URL (an S3-compatible store).

A spec is code review's business, but a URL in it must not turn vigil into a way to reach the
cloud metadata service (which hands out the machine's credentials) or other link-local services.
Two checks:

- :func:`check_endpoint_url` (pure, at spec load): http or https, a host, no user:password (a secret
  never lives in the spec), no query or fragment, and the host is not a link-local or metadata
  address, written in any form (``169.254.169.254``, ``[fe80::1]``, ``[::ffff:169.254.169.254]``,
  the integer and hex spellings the C resolver accepts, ``metadata.google.internal``...).
- :func:`check_endpoint_resolves` (at connect time): every address the host name resolves to passes
  the same test, so a DNS name pointing at 169.254.169.254 is refused too. (A resolver that
  answers differently the second time, DNS rebinding, is outside what a pre-check can stop; the
  metadata service's IMDSv2 session tokens are the defence there.)

Loopback and private addresses are allowed: a local MinIO is a normal S3-compatible store.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Callable
from urllib.parse import urlsplit

METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.internal",
    }
)
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, DigitalOcean
        ipaddress.ip_address("169.254.170.2"),  # ECS task credentials
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("168.63.129.16"),  # Azure wire server
    }
)

_HINT = (
    "endpoint_url is for an S3-compatible store such as MinIO (http://127.0.0.1:9000 or https://s3.example.net); "
    "leave it out for AWS S3. If a link-local address really is your store, set endpoint_allow_link_local: true"
)


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified or ip.is_multicast:
        return "not a host address"
    return None


def _numeric_host(host: str) -> bool:
    """A host the C resolver would read as an IPv4 address: ``2852039166``, ``0xa9fea9fe``, ``0251.0376.0251.0376``."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return False
    for p in parts:
        q = p.lower()
        if q.startswith("0x"):
            q = q[2:]
            if not q or any(c not in "0123456789abcdef" for c in q):
                return False
        elif not q.isdigit():
            return False
    return True


def check_endpoint_url(url: str, *, allow_link_local: bool = False) -> str:
    """Return ``url`` if it may be used as an endpoint, else raise ``ValueError`` saying why."""
    if len(url) > 2048:
        raise ValueError("endpoint_url is longer than 2048 characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ValueError(f"endpoint_url {url!r} is not a URL: {e}") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"endpoint_url {url!r} must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "endpoint_url must not carry a user or password; credentials come from the AWS environment "
            "(AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), never from the spec"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"endpoint_url {url!r} must not have a query or fragment")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise ValueError(f"endpoint_url {url!r} has no host")
    if port == 0:
        raise ValueError(f"endpoint_url {url!r} has port 0")
    if allow_link_local:
        return url
    why = host_problem(host)
    if why:
        raise ValueError(f"endpoint_url {url!r} points at {why}; refused. {_HINT}")
    return url


def host_problem(host: str) -> str | None:
    """Why ``host`` (a name or an address literal) must not be an endpoint, or None."""
    host = host.strip("[]").rstrip(".").lower()
    if host in METADATA_HOSTS:
        return "a cloud metadata service"
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        if _numeric_host(host):
            return "an IPv4 address in a non-standard spelling (write it as a.b.c.d)"
        return None
    return _forbidden(ip)


Resolver = Callable[..., list]


def check_endpoint_resolves(url: str, *, allow_link_local: bool = False, resolver: Resolver = socket.getaddrinfo) -> None:
    """Resolve the endpoint's host and refuse it if any address is link-local or a metadata address.

    Raises ``ValueError`` for a refused address and ``OSError`` when the name does not resolve.
    """
    if allow_link_local:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    for info in resolver(host, port, proto=socket.IPPROTO_TCP):
        addr = info[4][0]
        why = host_problem(str(addr))
        if why:
            raise ValueError(f"endpoint_url host {host!r} resolves to {addr}, {why}; refused. {_HINT}")
