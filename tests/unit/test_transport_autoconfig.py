"""Autoconfiguration against a real HTTPS server on 127.0.0.1 (tests/servers/https.py).

The domain → host mapping is redirected with ``AutoconfigSources.resolve`` (and
``--resolve`` on the CLI); TLS still checks the real host names against the test CA.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.transport.autoconfig import (
    AutoconfigError,
    AutoconfigSources,
    autoconfig_urls,
    base_domain,
    discover,
    parse_config,
)
from client.transport.dns import DnsResolver
from tests.conftest import Cli
from tests.servers.dns import DnsServer
from tests.servers.https import HttpsController, TestCA
from tests.servers.rig import MailRig

EMAIL = "alice@example.test"
HOSTS = [
    "autoconfig.example.test",
    "example.test",
    "imap.example.test",
    "smtp.example.test",
    "mail.example.test",
    "autoconfig.provider.test",  # the MX host's base domain (MX-based autoconfig)
    "provider.test",
]
AUTO, WELL_KNOWN = autoconfig_urls(EMAIL)


def _xml(
    imap: tuple[str, int, str] = ("imap.example.test", 993, "SSL"),
    smtp: tuple[str, int, str] = ("smtp.example.test", 465, "SSL"),
    extra: str = "",
) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="example.test">
    <domain>example.test</domain>
    {extra}
    <incomingServer type="pop3">
      <hostname>pop.example.test</hostname><port>995</port><socketType>SSL</socketType>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>{imap[0]}</hostname><port>{imap[1]}</port><socketType>{imap[2]}</socketType>
      <username>%EMAILLOCALPART%</username><authentication>password-cleartext</authentication>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>{smtp[0]}</hostname><port>{smtp[1]}</port><socketType>{smtp[2]}</socketType>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
""".encode()


@pytest.fixture
def ca() -> TestCA:
    return TestCA()


@pytest.fixture
def ca_file(ca: TestCA, tmp_path: Path) -> Path:
    return ca.write_ca(tmp_path / "ca.pem")


@pytest.fixture
def server(tmp_path: Path, ca: TestCA) -> Iterator[HttpsController]:
    cert, key = ca.issue(HOSTS, tmp_path)
    ctl = HttpsController(cert, key).start()
    yield ctl
    ctl.stop()


def _sources(server: HttpsController, ca_file: Path, **kw: object) -> AutoconfigSources:
    resolve = {h: ("127.0.0.1", server.port) for h in HOSTS}
    kw.setdefault("dns", None)  # no MX step unless a test gives its loopback DNS server
    return AutoconfigSources(ca_file=str(ca_file), resolve=resolve, **kw)  # type: ignore[arg-type]


def test_autoconfig_subdomain_document_is_used(server: HttpsController, ca_file: Path) -> None:
    server.content[AUTO] = (200, _xml())
    found = discover(EMAIL, _sources(server, ca_file, probe=False))
    assert found.source == f"https://{AUTO[0]}{AUTO[1]}"
    assert (found.imap.host, found.imap.port, found.imap.security) == (
        "imap.example.test",
        993,
        "tls",
    )
    assert (found.smtp.host, found.smtp.port, found.smtp.security) == (
        "smtp.example.test",
        465,
        "tls",
    )
    assert found.imap.username == "alice" and found.smtp.username == EMAIL
    assert found.weaknesses == ()
    assert server.requests == [("autoconfig.example.test", AUTO[1])]
    assert "emailaddress=alice%40example.test" in AUTO[1]


def test_404_falls_back_to_the_well_known_document(server: HttpsController, ca_file: Path) -> None:
    server.content[WELL_KNOWN] = (200, _xml(smtp=("smtp.example.test", 587, "STARTTLS")))
    found = discover(EMAIL, _sources(server, ca_file, probe=False))
    assert found.source.endswith("/.well-known/autoconfig/mail/config-v1.1.xml")
    assert found.smtp.security == "starttls"
    assert any("HTTP 404" in t for t in found.tried)


def test_best_offer_wins_over_plaintext(server: HttpsController, ca_file: Path) -> None:
    extra = """<incomingServer type="imap"><hostname>imap.example.test</hostname>
      <port>143</port><socketType>plain</socketType></incomingServer>"""
    server.content[AUTO] = (200, _xml(extra=extra))
    found = discover(EMAIL, _sources(server, ca_file, probe=False))
    assert found.imap.security == "tls" and found.weaknesses == ()


def test_plaintext_only_config_is_returned_flagged(server: HttpsController, ca_file: Path) -> None:
    server.content[AUTO] = (
        200,
        _xml(imap=("imap.example.test", 143, "plain"), smtp=("smtp.example.test", 25, "plain")),
    )
    found = discover(EMAIL, _sources(server, ca_file, probe=False))
    assert found.imap.security == "plain" and found.smtp.security == "plain"
    assert len(found.weaknesses) == 2 and "without TLS" in found.weaknesses[0]


def test_bad_tls_is_never_accepted(server: HttpsController, tmp_path: Path) -> None:
    server.content[AUTO] = (200, _xml())
    server.content[WELL_KNOWN] = (200, _xml())
    other = TestCA(name="Not The Server's CA").write_ca(tmp_path / "other.pem")
    with pytest.raises(AutoconfigError) as err:
        discover(EMAIL, _sources(server, other))  # probes too: all fail verification
    assert "certificate not valid" in str(err.value)
    assert server.requests == []  # no HTTP request was sent over the unverified link


def test_xml_bomb_is_refused_without_expansion(server: HttpsController, ca_file: Path) -> None:
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<clientConfig><emailProvider><domain>&lol3;</domain></emailProvider></clientConfig>"""
    server.content[AUTO] = (200, bomb)
    with pytest.raises(AutoconfigError) as err:
        discover(EMAIL, _sources(server, ca_file, probe=False))
    assert "DTD" in str(err.value)
    with pytest.raises(AutoconfigError, match="DTD"):
        parse_config(b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><clientConfig/>', EMAIL)


def test_oversized_and_malformed_documents_are_refused(
    server: HttpsController, ca_file: Path
) -> None:
    server.content[AUTO] = (200, _xml() + b"<!-- " + b"x" * 70_000 + b" -->")
    server.content[WELL_KNOWN] = (200, b"<clientConfig><emailProvider>")
    with pytest.raises(AutoconfigError) as err:
        discover(EMAIL, _sources(server, ca_file, probe=False))
    assert "more than 65536 bytes" in str(err.value)
    assert "not well-formed" in str(err.value)


def test_bad_hostnames_in_the_document_are_ignored(ca_file: Path) -> None:
    body = _xml(imap=("imap.example.test;rm -rf", 993, "SSL"))
    with pytest.raises(AutoconfigError, match="no usable"):
        parse_config(body, EMAIL)


def test_well_known_names_are_probed_with_verified_tls(
    server: HttpsController, ca_file: Path, tmp_path: Path
) -> None:
    # no documents (404): the probes reach the TLS server as imap./smtp.example.test
    probe = {
        ("imap.example.test", 993): ("127.0.0.1", server.port),
        ("smtp.example.test", 465): ("127.0.0.1", server.port),
    }
    found = discover(EMAIL, _sources(server, ca_file, probe_resolve=probe))
    assert found.source == "well-known host names"
    assert (found.imap.host, found.imap.port, found.imap.security) == (
        "imap.example.test",
        993,
        "tls",
    )
    assert (found.smtp.host, found.smtp.port) == ("smtp.example.test", 465)
    other = TestCA(name="Other").write_ca(tmp_path / "other.pem")
    with pytest.raises(AutoconfigError, match="certificate not valid"):
        discover(EMAIL, _sources(server, other, probe_resolve=probe))


def _add(cli: Cli, server: HttpsController, ca_file: Path, password: str, *extra: str):  # type: ignore[no-untyped-def]
    r, w = os.pipe()
    os.write(w, password.encode() + b"\n")
    os.close(w)
    try:
        return cli(
            "account",
            "add",
            "--email",
            EMAIL,
            "--auto",
            "--ca-file",
            str(ca_file),
            "--password-fd",
            str(r),
            *[f"--resolve={h}:127.0.0.1:{server.port}" for h in HOSTS[:2]],
            *extra,
            pass_fds=(r,),
        )
    finally:
        os.close(r)


def test_cli_refuses_plaintext_unless_allowed_and_then_requires_starttls(
    server: HttpsController, ca_file: Path, cli: Cli
) -> None:
    server.content[AUTO] = (
        200,
        _xml(imap=("imap.example.test", 143, "plain"), smtp=("smtp.example.test", 587, "plain")),
    )
    res = _add(cli, server, ca_file, "pw")
    assert res.returncode == 9, res.stderr
    assert "weaker than verified TLS" in res.stderr
    assert json.loads(cli.ok("account", "list", "--json").text) == []
    _add(cli, server, ca_file, "pw", "--allow-insecure", "--json")
    (acc,) = json.loads(cli.ok("account", "list", "--json").text)
    assert acc["imap_security"] == "starttls" and acc["smtp_security"] == "starttls"
    assert (acc["imap_host"], acc["imap_port"]) == ("imap.example.test", 143)


def test_cli_auto_account_syncs_against_dovecot(
    mail_rig: MailRig, server: HttpsController, ca: TestCA, cli: Cli, tmp_path: Path
) -> None:
    both = tmp_path / "both.pem"  # one bundle: the autoconfig server's CA and the rig's CA
    both.write_bytes(ca.write_ca(tmp_path / "a.pem").read_bytes() + mail_rig.ca_file.read_bytes())
    server.content[AUTO] = (
        200,
        _xml(
            imap=("127.0.0.1", mail_rig.imaps_port, "SSL"),
            smtp=("127.0.0.1", mail_rig.smtps_port, "SSL"),
        ).replace(b"%EMAILLOCALPART%", b"%EMAILADDRESS%"),
    )
    res = _add(cli, server, both, mail_rig.password(EMAIL), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.text)["imap_port"] == mail_rig.imaps_port
    synced = json.loads(cli.ok("sync", "--json").text)
    assert synced, synced


# ------------------------------------------------------------ MX-based autoconfig

PROVIDER_AUTO, PROVIDER_WELL_KNOWN = autoconfig_urls(EMAIL, "provider.test")


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer(
        {("example.test", "MX"): ["20 mx2.mail.provider.test.", "10 mx1.mail.provider.test."]}
    ) as srv:
        yield srv


def _mx_sources(
    server: HttpsController, ca_file: Path, dns: DnsServer, **kw: object
) -> AutoconfigSources:
    return _sources(server, ca_file, dns=DnsResolver(["127.0.0.1"], dns.port, timeout=5), **kw)


def test_base_domain_uses_the_public_suffix_list() -> None:
    assert base_domain("mx1.mail.protection.outlook.com") == "outlook.com"
    assert base_domain("aspmx.l.google.com.") == "google.com"
    assert base_domain("mx.a.b.co.uk") == "b.co.uk"
    assert base_domain("co.uk") is None
    assert base_domain("mx1.mail.provider.test") == "provider.test"


def test_mx_base_domain_autoconfig_is_used(
    server: HttpsController, ca_file: Path, dns: DnsServer
) -> None:
    server.content[PROVIDER_AUTO] = (200, _xml())
    found = discover(EMAIL, _mx_sources(server, ca_file, dns, probe=False))
    assert found.source == f"https://autoconfig.provider.test{PROVIDER_AUTO[1]}"
    assert found.via_mx == "mx1.mail.provider.test -> provider.test"
    assert "emailaddress=alice%40example.test" in PROVIDER_AUTO[1]
    assert [h for h, _p in server.requests] == [
        "autoconfig.example.test",
        "example.test",
        "autoconfig.provider.test",
    ]
    assert ("example.test", "MX") in dns.queries
    assert found.to_json()["via_mx"] == "mx1.mail.provider.test -> provider.test"


def test_mx_base_domain_well_known_and_own_document_first(
    server: HttpsController, ca_file: Path, dns: DnsServer
) -> None:
    server.content[PROVIDER_WELL_KNOWN] = (200, _xml(smtp=("smtp.example.test", 587, "STARTTLS")))
    found = discover(EMAIL, _mx_sources(server, ca_file, dns, probe=False))
    assert found.source == "https://provider.test/.well-known/autoconfig/mail/config-v1.1.xml"
    assert found.via_mx and found.smtp.security == "starttls"
    server.content[AUTO] = (200, _xml())  # the domain's own document wins: no MX look-up
    dns.queries.clear()
    own = discover(EMAIL, _mx_sources(server, ca_file, dns, probe=False))
    assert own.source.startswith("https://autoconfig.example.test/") and not own.via_mx
    assert dns.queries == []


def test_mx_in_the_same_domain_or_missing_adds_nothing(
    server: HttpsController, ca_file: Path, dns: DnsServer
) -> None:
    dns.records[("example.test", "MX")] = ["10 mx.example.test."]
    with pytest.raises(AutoconfigError) as err:
        discover(EMAIL, _mx_sources(server, ca_file, dns, probe=False))
    assert "not in another registrable domain" in str(err.value)
    assert all(h.endswith("example.test") for h, _p in server.requests)
    del dns.records[("example.test", "MX")]
    dns.records[("example.test", "A")] = ["127.0.0.1"]
    with pytest.raises(AutoconfigError, match="no MX record"):
        discover(EMAIL, _mx_sources(server, ca_file, dns, probe=False))


def test_mx_found_plaintext_is_still_flagged_and_bad_tls_refused(
    server: HttpsController, ca_file: Path, dns: DnsServer, tmp_path: Path
) -> None:
    server.content[PROVIDER_AUTO] = (
        200,
        _xml(imap=("imap.provider.test", 143, "plain"), smtp=("smtp.provider.test", 25, "plain")),
    )
    found = discover(EMAIL, _mx_sources(server, ca_file, dns, probe=False))
    assert found.via_mx and len(found.weaknesses) == 2  # callers ask before using it
    other = TestCA(name="Other").write_ca(tmp_path / "other.pem")
    with pytest.raises(AutoconfigError, match="certificate not valid"):
        discover(EMAIL, _mx_sources(server, other, dns, probe=False))
