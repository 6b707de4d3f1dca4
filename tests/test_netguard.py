"""The house rule on user-given URLs (:mod:`vigil.netguard`): nothing vigil runs follows one to a
link-local or cloud metadata address unless the spec allows it.

The rule used to be written three times (the S3 endpoint, Typesense, canary webhooks); these tests
pin the union of what the three refused, in every spelling any of them refused, and check that each
capability's entry points still refuse all of it (each with its own error type).
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vigil import netguard
from vigil.deploy.canary.hooks import HookError, WebhookHook
from vigil.deploy.canary.spec import WebhookSpec
from vigil.dr.aws.endpoint import check_endpoint_resolves, check_endpoint_url
from vigil.netguard import address_problem, addresses_problem, host_problem, resolve_problem, resolved_addresses, url_problem
from vigil.search.engine import SearchError
from vigil.search.spec import SearchBackupSpec
from vigil.search.typesense import TypesenseEngine

LINK_LOCAL_V4 = ipaddress.ip_network("169.254.0.0/16")
METADATA = ["169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "168.63.129.16"]


# --- addresses ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "addr, why",
    [
        ("169.254.169.254", "cloud metadata address"),
        ("169.254.169.254", "link-local"),
        ("169.254.170.2", "cloud metadata address"),
        ("fd00:ec2::254", "cloud metadata address"),
        ("100.100.100.200", "cloud metadata address"),
        ("168.63.129.16", "cloud metadata address"),
        ("169.254.0.1", "link-local"),
        ("169.254.255.255", "link-local"),
        ("fe80::1", "link-local"),
        ("febf:ffff::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("[fe80::1]", "link-local"),
        ("::ffff:169.254.169.254", "cloud metadata address"),
        ("::ffff:a9fe:a9fe", "IPv4-mapped"),
        ("::ffff:169.254.1.1", "link-local"),
        ("::ffff:100.100.100.200", "cloud metadata address"),
        ("64:ff9b::a9fe:a9fe", "NAT64"),
        ("64:ff9b::169.254.169.254", "cloud metadata address"),
        ("64:ff9b::169.254.3.4", "link-local"),
        ("0.0.0.0", "not a unicast"),
        ("::", "not a unicast"),
        ("224.0.0.1", "not a unicast"),
        ("239.255.255.250", "not a unicast"),
        ("ff02::1", "not a unicast"),
        ("::ffff:0.0.0.0", "not a unicast"),
    ],
)
def test_refused_addresses(addr: str, why: str) -> None:
    reason = address_problem(addr)
    assert reason is not None and why in reason
    assert address_problem(ipaddress.ip_address(addr.strip("[]").split("%")[0])) == reason
    assert host_problem(addr) == reason


@pytest.mark.parametrize(
    "addr",
    ["127.0.0.1", "10.0.0.5", "192.168.1.10", "172.16.0.1", "100.64.0.1", "8.8.8.8", "::1", "fd00::1", "2001:db8::1",
     "::ffff:10.0.0.1", "64:ff9b::808:808", "169.253.255.255", "169.255.0.0", "fec0::1"],
)
def test_ordinary_addresses_pass(addr: str) -> None:
    assert address_problem(addr) is None and host_problem(addr) is None


def test_address_problem_wants_an_address() -> None:
    with pytest.raises(ValueError):
        address_problem("metadata.google.internal")


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_every_ipv4_address_and_its_ipv6_wrappings_get_one_verdict(n: int) -> None:
    ip = ipaddress.IPv4Address(n)
    forbidden = ip in LINK_LOCAL_V4 or str(ip) in METADATA or ip.is_unspecified or ip.is_multicast
    for spelling in (str(ip), f"::ffff:{ip}", f"[::ffff:{ip}]", f"64:ff9b::{ip}", f"64:ff9b::{n >> 16:x}:{n & 0xFFFF:x}"):
        assert (host_problem(spelling) is not None) == forbidden, spelling


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**54 - 1))
def test_every_ipv6_link_local_address_is_refused(low: int) -> None:
    ip = ipaddress.IPv6Address((0xFE80 << 112) | low)
    assert "link-local" in address_problem(ip)
    assert "link-local" in host_problem(f"[{ip}%eth0]")


# --- hosts: names and spellings ----------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["metadata", "metadata.google.internal", "METADATA.Google.Internal.", "metadata.goog", "instance-data",
     "instance-data.ec2.internal", "metadata.azure.internal"],
)
def test_metadata_host_names(host: str) -> None:
    assert "metadata" in host_problem(host)


def _part(v: int, radix: str) -> str:
    return {"d": str(v), "o": "0" + format(v, "o"), "x": "0x" + format(v, "x"), "X": "0X" + format(v, "X")}[radix]


@st.composite
def numeric_spellings(draw, n: int) -> str:
    """One of the spellings of ``n`` the C resolver (inet_aton) accepts: 1 to 4 parts, each decimal, octal or hex."""
    parts = draw(st.integers(1, 4))
    radices = draw(st.lists(st.sampled_from("doxX"), min_size=parts, max_size=parts))
    b = n.to_bytes(4, "big")
    values = list(b[: parts - 1]) + [int.from_bytes(b[parts - 1 :], "big")]
    return ".".join(_part(v, r) for v, r in zip(values, radices))


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from([*range(0xA9FE0000, 0xA9FE0000 + 0x10000, 257), 0xA9FEA9FE, 0xA9FEAA02, 0x646464C8]))
def test_link_local_and_metadata_ipv4_refused_in_every_spelling(data, n: int) -> None:
    spelling = data.draw(numeric_spellings(n))
    assert socket.inet_aton(spelling) == n.to_bytes(4, "big")  # the C resolver reads it as n
    assert host_problem(spelling) is not None, spelling
    assert host_problem(spelling + ".") is not None
    assert url_problem(f"http://{spelling}:9000/") is not None


@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(0, 2**32 - 1))
def test_non_standard_numeric_spellings_are_refused_whatever_they_spell(data, n: int) -> None:
    spelling = data.draw(numeric_spellings(n))
    ip = ipaddress.IPv4Address(n)
    if spelling == str(ip):
        return  # the one standard spelling: judged as the address
    why = host_problem(spelling)
    assert why is not None and ("non-standard" in why or "link-local" in why or "metadata" in why or "unicast" in why)
    if "non-standard" in why:
        assert f"reads as {ip}" in why


@pytest.mark.parametrize(
    "host",
    [
        "2852039166", "0xa9fea9fe", "0XA9FEA9FE", "0251.0376.0251.0376", "0xa9.0xfe.0xa9.0xfe", "169.254.43518",
        "169.16689662", "0x0a9.0xfe.0251.254", "0x00000000a9.254.169.254", "169.254.169.0254",
        "2130706433", "10.1", "0", "089", "999999999999",  # refused as spellings even when they are not link-local
    ],
)
def test_non_standard_ipv4_spellings(host: str) -> None:
    assert "non-standard" in host_problem(host)


@pytest.mark.parametrize(
    "host",
    [
        "169.254.169.254.", "[169.254.169.254]", " 169.254.169.254 ",
        "169\u3002254\u3002169\u3002254", "169\uff0e254\uff0e169\uff0e254", "169\uff61254\uff61169\uff61254",
        "\uff11\uff16\uff19.\uff12\uff15\uff14.\uff11\uff16\uff19.\uff12\uff15\uff14", "1\u200b69.254.169.254",
        "169.254.169.254\u00ad", "[fe80::1%25eth0]", "169.254.169.254%00.example",
    ],
)
def test_other_spellings_of_forbidden_addresses(host: str) -> None:
    assert host_problem(host) is not None


@pytest.mark.parametrize(
    "host",
    ["169\u3002254\u3002169\u3002254", "\uff11\uff16\uff19.\uff12\uff15\uff14.\uff11\uff16\uff19.\uff12\uff15\uff14", "1\u200b69.254.169.254"],
)
def test_unicode_spellings_are_what_the_resolver_sees(host: str) -> None:
    # socket.getaddrinfo IDNA-encodes a str host; a literal needs no DNS, so this runs offline
    assert {i[4][0] for i in socket.getaddrinfo(host, 80, proto=socket.IPPROTO_TCP)} == {"169.254.169.254"}


@pytest.mark.parametrize("host", ["minio", "minio.local", "s3.example.net", "search.internal", "bücher.example", "metadata.example",
                                  "instance-data.example.com", "1.2.3.4.example", "0x.example", "a.b.c.d.e"])
def test_ordinary_names_pass_until_resolved(host: str) -> None:
    assert host_problem(host) is None


# --- URLs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, why",
    [
        ("ftp://minio.local", "must be an http:// or https:// URL"),
        ("file:///etc/passwd", "must be an http:// or https:// URL"),
        ("gopher://169.254.169.254/", "must be an http:// or https:// URL"),
        ("http:///nohost", "has no host"),
        ("http://[::1/", "is not a URL"),
        ("http://h:99999/", "is not a URL"),
        ("http://169.254.169.254/latest/meta-data", "points at a link-local address and a cloud metadata address"),
        ("http://user:pw@169.254.169.254/", "points at"),
        ("http://example.com\\@169.254.169.254/", "points at"),
        ("http://a@b@169.254.169.254/", "points at"),
        ("http://169.254.169.254#@example.com/", "points at"),
        ("http://[::ffff:169.254.169.254]:8108/", "points at"),
        ("http://metadata.google.internal/computeMetadata/v1/", "points at a cloud metadata service"),
        ("HTTPS://0xA9FEA9FE/", "non-standard"),
    ],
)
def test_url_problem(url: str, why: str) -> None:
    assert why in url_problem(url)


def test_url_problem_allowance_checks_the_shape_alone() -> None:
    assert url_problem("http://169.254.169.254/", allow_link_local=True) is None
    assert url_problem("ftp://169.254.169.254/", allow_link_local=True) == "must be an http:// or https:// URL"
    for ok in ("http://127.0.0.1:9000", "https://s3.example.net", "http://[::1]:8108/x?y#z", "http://u:p@10.0.0.1/"):
        assert url_problem(ok) is None  # credentials are the caller's rule, not this one


# --- after DNS ---------------------------------------------------------------------------------


def _dns(*addrs: str):
    def resolver(host, port, *args, **kwargs):
        return [((socket.AF_INET6 if ":" in a else socket.AF_INET), socket.SOCK_STREAM, 6, "", (a, port)) for a in addrs]

    return resolver


RESOLVED_FORBIDDEN = ["169.254.169.254", "169.254.170.2", "169.254.7.7", "100.100.100.200", "168.63.129.16", "fd00:ec2::254",
                      "fe80::1", "fe80::1%eth0", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "0.0.0.0", "224.0.0.1"]


@pytest.mark.parametrize("addr", RESOLVED_FORBIDDEN)
def test_resolve_problem_names_the_address(addr: str) -> None:
    why = resolve_problem("innocent.example", 443, resolver=_dns("10.0.0.1", addr))
    assert why is not None and why.startswith(f"innocent.example resolves to {addr.split('%')[0]}, ")


def test_resolve_problem_passes_private_names_and_lets_dns_errors_through() -> None:
    assert resolve_problem("minio.internal", 9000, resolver=_dns("10.1.2.3", "::1")) is None
    assert resolved_addresses("h", 80, resolver=_dns("fe80::1%eth0", "10.0.0.1", "10.0.0.1")) == ["10.0.0.1", "fe80::1"]
    assert "not an IP address" in resolve_problem("h", 80, resolver=_dns("garbage"))  # fail closed

    def nxdomain(host, port, *a, **kw):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(OSError):
        resolve_problem("no-such-host.invalid", 80, resolver=nxdomain)


def test_resolve_problem_with_the_real_resolver_on_a_literal() -> None:
    assert "metadata" in resolve_problem("169.254.169.254", 80)
    assert "reads as 169.254.169.254" in resolve_problem("0xa9fea9fe", 80)  # refused before any DNS
    assert resolve_problem("127.0.0.1", 80) is None
    assert resolved_addresses("::ffff:169.254.169.254", 80) == ["::ffff:169.254.169.254"]
    assert "IPv4-mapped" in addresses_problem("innocent.example", resolved_addresses("::ffff:169.254.169.254", 80))


# --- every caller refuses the union ------------------------------------------------------------

# What each of the three old implementations refused in a URL, now refused by all of them.
UNION_URLS = [
    "http://169.254.169.254/latest/meta-data", "http://169.254.170.2:8108", "http://169.254.10.1:9000",
    "http://[fd00:ec2::254]:8108", "http://[fe80::1]:8108", "http://[fe80::1%25eth0]/", "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/", "http://[64:ff9b::a9fe:a9fe]/", "http://100.100.100.200/", "http://168.63.129.16/",
    "http://0.0.0.0:8108/", "http://[::]:8108/", "http://224.0.0.1/", "http://[ff02::1]/",
    "http://2852039166:8108", "http://0xa9fea9fe/", "http://0251.0376.0251.0376/", "http://169.254.43518/",
    "http://metadata.google.internal/", "http://metadata/", "http://instance-data/", "http://169.254.169.254./",
    "http://169\u3002254\u3002169\u3002254/",
]


@pytest.mark.parametrize("url", UNION_URLS)
def test_every_capability_refuses_the_union(url: str) -> None:
    # at spec load
    with pytest.raises(ValueError):
        check_endpoint_url(url)
    with pytest.raises(ValueError):
        SearchBackupSpec(engine="typesense", url=url)
    with pytest.raises(ValueError):
        WebhookSpec(url=url, secret_env="S")
    # at connect time, even if the spec was bypassed, and even if DNS answers an ordinary address
    with pytest.raises(ValueError):
        check_endpoint_resolves(url, resolver=_dns("10.0.0.1"))
    with pytest.raises(SearchError):
        TypesenseEngine(url, "k", resolve=_dns("10.0.0.1"))
    spec = WebhookSpec.model_construct(url=url, secret_env="S", secret_file=None, retries=0, allow_link_local=False)
    with pytest.raises(HookError, match="refused"):
        WebhookHook(spec, 5.0, secret=b"s", resolve=_dns("10.0.0.1")).check_address()


@pytest.mark.parametrize("addr", RESOLVED_FORBIDDEN)
def test_every_capability_refuses_a_name_resolving_to_the_union(addr: str) -> None:
    url = "http://innocent.example:8108/x"
    with pytest.raises(ValueError, match="resolves to"):
        check_endpoint_resolves(url, resolver=_dns(addr))
    with pytest.raises(SearchError, match="resolves to"):
        TypesenseEngine(url, "k", resolve=_dns(addr))
    hook = WebhookHook(WebhookSpec(url=url, secret_env="S"), 5.0, secret=b"s", resolve=_dns(addr))
    with pytest.raises(HookError, match="resolves to"):
        hook.check_address()
    # the spec's allowance lets it through everywhere
    check_endpoint_resolves(url, resolver=_dns(addr), allow_link_local=True)
    TypesenseEngine(url, "k", resolve=_dns(addr), allow_link_local=True).close()
    hook = WebhookHook(WebhookSpec(url=url, secret_env="S", allow_link_local=True), 5.0, secret=b"s", resolve=_dns(addr))
    assert hook.check_address() == [addr.split("%")[0]]


def test_the_allowance_at_spec_load() -> None:
    url = "http://169.254.169.254/"
    assert check_endpoint_url(url, allow_link_local=True) == url
    assert SearchBackupSpec(engine="typesense", url=url, allow_link_local=True).url == url.rstrip("/")
    assert WebhookSpec(url=url, secret_env="S", allow_link_local=True).url == url


def test_the_callers_share_one_list() -> None:
    import vigil.dr.aws.endpoint as endpoint

    assert endpoint.METADATA_ADDRESSES is netguard.METADATA_ADDRESSES and endpoint.host_problem is netguard.host_problem
    assert {str(a) for a in netguard.METADATA_ADDRESSES} == set(METADATA)


@pytest.mark.parametrize(
    "addr",
    ["2002:a9fe:a9fe::", "2002:a9fe:a9fe::1", "::a9fe:a9fe", "::169.254.169.254", "64:ff9b:1::a9fe:a9fe"],
)
def test_other_ipv6_forms_that_carry_a_metadata_address_are_refused(addr):
    why = address_problem(addr)
    assert why is not None and "169.254.169.254" in why


@pytest.mark.parametrize("addr", ["2002:0808:0808::", "2001:db8::1", "64:ff9b:1::808:808"])
def test_those_forms_carrying_an_ordinary_address_are_judged_by_it(addr):
    assert address_problem(addr) is None
