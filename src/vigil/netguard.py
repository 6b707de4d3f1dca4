"""The house rule for user-given URLs: nothing vigil runs follows one to a link-local or cloud
metadata address unless the spec allows it.

A URL in a spec must not turn vigil into a way to reach the cloud metadata service (which hands out
the machine's credentials) or other link-local services. This module is the one implementation of
that rule; every capability that contacts a URL from the spec (the S3-compatible endpoint of
``backups.s3``, Typesense in ``backups.search``, canary webhooks) asks it, and keeps its own error
type, wording and hint. Each function answers *why* something is refused, or None:

- :func:`address_problem`: an IP address. Cloud metadata addresses (:data:`METADATA_ADDRESSES`),
  link-local networks (169.254.0.0/16, fe80::/10), the unspecified address and multicast; and the
  same for the IPv4 address inside an IPv4-mapped (``::ffff:a.b.c.d``) or NAT64 (``64:ff9b::/96``)
  address.
- :func:`host_problem`: a host as written in a URL. Metadata host names (:data:`METADATA_HOSTS`),
  address literals (``[fe80::1%eth0]``, a trailing dot, the Unicode dots and digits the resolver's
  IDNA encoding maps to ASCII), and the IPv4 spellings the C resolver accepts that nobody writes on
  purpose (``2852039166``, ``0xa9fea9fe``, ``0251.0376.0251.0376``, ``169.254.43518``): those are
  refused whatever address they spell.
- :func:`url_problem`: an ``http://`` or ``https://`` URL with a host that :func:`host_problem`
  accepts. User and password are the caller's business (where the secret belongs differs).
- :func:`resolve_problem` (with :func:`resolved_addresses` and :func:`addresses_problem` for a
  caller that keeps the addresses): the host passes :func:`host_problem` and, after DNS, every
  address it resolves to passes :func:`address_problem`, so a name pointing at 169.254.169.254 is
  refused too. (A resolver that answers differently the second time, DNS rebinding, is outside
  what a pre-check can stop; the metadata service's IMDSv2 session tokens are the defence there.)

Loopback and private addresses are allowed: a local MinIO, Typesense or deploy hook is normal.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., Any]

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
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address
LOCAL_NAT64_PREFIX = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215; read as a /96 (IPv4 in the last 32 bits)

_IDNA_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def _parse_address(ip: IPAddress | str) -> IPAddress:
    if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return ip
    return ipaddress.ip_address(str(ip).strip().strip("[]").split("%", 1)[0])


def _plain_problem(ip: IPAddress) -> str | None:
    metadata = ip in METADATA_ADDRESSES
    if ip.is_link_local:
        return "a link-local address and a cloud metadata address" if metadata else "a link-local address"
    if metadata:
        return "a cloud metadata address"
    if ip.is_unspecified or ip.is_multicast:
        return "not a unicast host address"
    return None


def _embedded_ipv4(ip: IPAddress) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, NAT64, 6to4 or the deprecated
    IPv4-compatible form) and what form it is, or None."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped, "an IPv4-mapped IPv6 address"
        if ip in NAT64_PREFIX or ip in LOCAL_NAT64_PREFIX:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "a NAT64 address"
        if ip.sixtofour is not None:
            return ip.sixtofour, "a 6to4 address"
        if 1 < int(ip) < 2**32:  # ::a.b.c.d, which getaddrinfo still accepts
            return ipaddress.IPv4Address(int(ip)), "an IPv4-compatible IPv6 address"
    return None


def address_problem(ip: IPAddress | str) -> str | None:
    """Why vigil must not contact the IP address ``ip``, or None.

    ``ip`` is an address object or a literal (``169.254.169.254``, ``[fe80::1%eth0]``); anything else
    raises ``ValueError``. The answer is a phrase such as ``"a link-local address"``.
    """
    addr = _parse_address(ip)
    inner = _embedded_ipv4(addr)
    if inner is not None:
        why = _plain_problem(inner[0])
        if why:
            return f"{why} ({inner[0]} inside {inner[1]})"
    return _plain_problem(addr)


def _normalise_host(host: str) -> str:
    """The host as the resolver sees it: no brackets, lower case, no trailing dot, IDNA-mapped."""
    h = host.strip().strip("[]")
    if not h.isascii():
        try:  # what socket.getaddrinfo does with a str host: nameprep (NFKC, zero-width chars dropped), U+3002 dots
            h = h.encode("idna").decode("ascii")
        except UnicodeError:
            import unicodedata

            h = unicodedata.normalize("NFKC", h).translate(_IDNA_DOTS)
    return h.rstrip(".").lower()


def _inet_aton(host: str) -> ipaddress.IPv4Address | None:
    """The address the C resolver reads from a numeric host (1 to 4 decimal, octal or hex parts), or None."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = []
    for p in parts:
        try:
            if p[:2] in ("0x", "0X"):
                values.append(int(p[2:], 16))
            elif len(p) > 1 and p.startswith("0"):
                values.append(int(p, 8))
            else:
                values.append(int(p, 10))
        except ValueError:
            return None
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        return None
    n = last
    for i, v in enumerate(head):
        n |= v << (24 - 8 * i)
    return ipaddress.IPv4Address(n)


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


def host_problem(host: str) -> str | None:
    """Why vigil must not contact ``host`` (a name or an address literal, as written in a URL), or None.

    Names other than the metadata services' pass here; check them again after DNS with
    :func:`resolve_problem`.
    """
    h = _normalise_host(host)
    if h in METADATA_HOSTS:
        return "a cloud metadata service"
    try:
        return address_problem(h)
    except ValueError:
        pass
    if _numeric_host(h):
        reads = _inet_aton(h)
        spelled = f"it reads as {reads}; " if reads is not None else ""
        return f"an IPv4 address in a non-standard spelling ({spelled}write it as a.b.c.d)"
    return None


def url_problem(url: str, *, allow_link_local: bool = False) -> str | None:
    """Why vigil must not follow ``url``, or None: phrased to follow the URL in a message.

    ``"is not a URL (...)"``, ``"must be an http:// or https:// URL"``, ``"has no host"``, or (unless
    ``allow_link_local``) ``"points at <why>"`` with :func:`host_problem`'s reason.
    ``url_problem(url, allow_link_local=True)`` checks the URL's shape alone.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as e:
        return f"is not a URL ({e})"
    if parts.scheme.lower() not in ("http", "https"):
        return "must be an http:// or https:// URL"
    host = parts.hostname or ""
    if not _normalise_host(host):
        return "has no host"
    if allow_link_local:
        return None
    why = host_problem(host)
    return f"points at {why}" if why else None


def resolved_addresses(host: str, port: int, *, resolver: Resolver = socket.getaddrinfo) -> list[str]:
    """The addresses ``host`` resolves to (sorted, no duplicates, no IPv6 zone).

    ``resolver`` is called as ``resolver(host, port)`` (``socket.getaddrinfo``'s shape). Raises
    ``OSError`` (``socket.gaierror``) when the name does not resolve and ``UnicodeError`` when it
    cannot be IDNA-encoded.
    """
    return sorted({str(info[4][0]).split("%", 1)[0] for info in resolver(host, port)})


def addresses_problem(host: str, addresses: Iterable[str]) -> str | None:
    """Why vigil must not contact ``host``, which resolved to ``addresses``, or None.

    ``"<host> is <why>"`` when the host itself is refused (:func:`host_problem`), else
    ``"<host> resolves to <address>, <why>"`` for the first refused address. An address that is not
    an IP address is refused.
    """
    why = host_problem(host)
    if why:
        return f"{host} is {why}"
    for addr in addresses:
        try:
            why = address_problem(addr)
        except ValueError:
            why = "not an IP address"
        if why:
            return f"{host} resolves to {addr}, {why}"
    return None


def resolve_problem(host: str, port: int, *, resolver: Resolver = socket.getaddrinfo) -> str | None:
    """Why vigil must not contact ``host`` given what it is and what it resolves to, or None.

    A host :func:`host_problem` refuses is refused before any DNS query; otherwise the name is
    resolved and judged by :func:`addresses_problem`. Errors as :func:`resolved_addresses`.
    """
    why = host_problem(host)
    if why:
        return f"{host} is {why}"
    return addresses_problem(host, resolved_addresses(host, port, resolver=resolver))
