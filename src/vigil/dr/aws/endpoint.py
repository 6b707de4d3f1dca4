"""The SSRF rule for a user-given endpoint URL (an S3-compatible store).

The rule itself (which hosts and addresses are refused, in every spelling) lives in
:mod:`vigil.netguard`; this module words it for ``backups.s3.endpoint_url`` and adds what is
particular to an S3 endpoint. Two checks:

- :func:`check_endpoint_url` (pure, at spec load): http or https, a host, no user:password (a secret
  never lives in the spec), no query or fragment, not port 0, and the host is not a link-local or
  metadata address, written in any form (``169.254.169.254``, ``[fe80::1]``, ``[::ffff:169.254.169.254]``,
  the integer and hex spellings the C resolver accepts, ``metadata.google.internal``...).
- :func:`check_endpoint_resolves` (at connect time): the host, and every address it resolves to,
  passes the same test, so a DNS name pointing at 169.254.169.254 is refused too.

Loopback and private addresses are allowed: a local MinIO is a normal S3-compatible store.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from vigil.netguard import METADATA_ADDRESSES, METADATA_HOSTS, Resolver, host_problem, resolve_problem, url_problem

__all__ = [
    "METADATA_ADDRESSES",
    "METADATA_HOSTS",
    "check_endpoint_resolves",
    "check_endpoint_url",
    "host_problem",
]

_HINT = (
    "endpoint_url is for an S3-compatible store such as MinIO (http://127.0.0.1:9000 or https://s3.example.net); "
    "leave it out for AWS S3. If a link-local address really is your store, set endpoint_allow_link_local: true"
)


def check_endpoint_url(url: str, *, allow_link_local: bool = False) -> str:
    """Return ``url`` if it may be used as an endpoint, else raise ``ValueError`` saying why."""
    if len(url) > 2048:
        raise ValueError("endpoint_url is longer than 2048 characters")
    shape = url_problem(url, allow_link_local=True)
    if shape:
        raise ValueError(f"endpoint_url {url!r} {shape}")
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "endpoint_url must not carry a user or password; credentials come from the AWS environment "
            "(AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), never from the spec"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"endpoint_url {url!r} must not have a query or fragment")
    if parts.port == 0:
        raise ValueError(f"endpoint_url {url!r} has port 0")
    if allow_link_local:
        return url
    why = url_problem(url)
    if why:
        raise ValueError(f"endpoint_url {url!r} {why}; refused. {_HINT}")
    return url


def check_endpoint_resolves(url: str, *, allow_link_local: bool = False, resolver: Resolver = socket.getaddrinfo) -> None:
    """Refuse the endpoint's host if it, or any address it resolves to, is link-local or a metadata address.

    Raises ``ValueError`` for a refused address and ``OSError`` when the name does not resolve.
    """
    if allow_link_local:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    why = resolve_problem(host, port, resolver=resolver)
    if why:
        raise ValueError(f"endpoint_url host {why}; refused. {_HINT}")
