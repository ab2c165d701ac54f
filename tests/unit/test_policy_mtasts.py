"""MTA-STS (RFC 8461): strict parsing, and fetching over a real loopback DNS + HTTPS server.

DNS answers come from :class:`client.devrig.dnsserver.DnsServer` (real UDP on 127.0.0.1),
the policy file from :class:`tests.servers.https.HttpsController` with a test CA; host
names reach it through ``StsSources.resolve`` while TLS still checks the real names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from client.policy.mtasts import (
    MAX_POLICY_BYTES,
    BadStsPolicy,
    MtaStsRecord,
    NoStsRecord,
    StsFetchFailed,
    StsTimeout,
    StsTlsFailed,
    StsTooLarge,
    mx_matches,
    parse_sts_policy,
    parse_sts_txt,
)
from client.transport.dns import DnsResolver
from client.transport.tlsknowledge import StsSources, fetch_mta_sts, refresh_mta_sts
from tests.conftest import Cli
from tests.servers.dns import DnsServer
from tests.servers.https import HttpsController, TestCA

DOMAIN = "partner.test"
HOST = f"mta-sts.{DOMAIN}"
PATH = "/.well-known/mta-sts.txt"
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ENFORCE = b"version: STSv1\r\nmode: enforce\r\nmx: mx1.partner.test\r\nmx: *.mail.partner.test\r\nmax_age: 86400\r\n"


# ---------------------------------------------------------------------- sans-I/O


def test_txt_record_is_parsed_strictly() -> None:
    assert parse_sts_txt(["v=STSv1; id=20260601T1200"]) == "20260601T1200"
    assert parse_sts_txt(["v=spf1 -all", "v=STSv1;id=abc;ext=1;"]) == "abc"
    for bad in (
        [],
        ["v=spf1 -all"],
        ["v=STSv1; id=1", "v=STSv1; id=2"],  # two records: no policy
        ["v=STSv1"],
        ["v=STSv1; id=has-dash"],
        ["v=STSv1; id=" + "a" * 33],
        ["v=STSv1; id=1; broken"],
    ):
        with pytest.raises(NoStsRecord):
            parse_sts_txt(bad, DOMAIN)


def test_policy_file_crlf_and_lf() -> None:
    p = parse_sts_policy(ENFORCE)
    assert (p.mode, p.max_age) == ("enforce", 86400)
    assert p.mx == ("mx1.partner.test", "*.mail.partner.test")
    lf = parse_sts_policy(ENFORCE.replace(b"\r\n", b"\n") + b"ext_field: anything\n")
    assert lf == p
    assert parse_sts_policy(b"version: STSv1\nmode: none\nmax_age: 0").mode == "none"


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"mode: enforce\nmx: a.b.test\nmax_age: 1\n", "no version"),
        (b"version: STSv2\nmode: enforce\nmx: a.b.test\nmax_age: 1\n", "unknown version"),
        (b"version: STSv1\nmode: strict\nmx: a.b.test\nmax_age: 1\n", "unknown mode"),
        (b"version: STSv1\nmode: enforce\nmax_age: 1\n", "needs at least one mx"),
        (b"version: STSv1\nmode: enforce\nmx: a.b.test\nmax_age: 31557601\n", "max_age"),
        (b"version: STSv1\nmode: enforce\nmx: a.b.test\nmax_age: -1\n", "max_age"),
        (b"version: STSv1\nmode: enforce\nmode: testing\nmx: a.b.test\nmax_age: 1\n", "twice"),
        (b"version: STSv1\nmode: enforce\nmx: *.*.b.test\nmax_age: 1\n", "bad mx"),
        (b"version: STSv1\nmode enforce\nmx: a.b.test\nmax_age: 1\n", "not 'key: value'"),
        (b"version: STSv1\rmode: enforce\nmx: a.b.test\nmax_age: 1\n", "carriage return"),
        (b"version: STSv1\nmode: enforce\nmx: a.b.test\nmax_age: 1\xff\n", "not UTF-8"),
    ],
)
def test_bad_policy_files_are_refused(body: bytes, what: str) -> None:
    with pytest.raises(BadStsPolicy) as err:
        parse_sts_policy(body)
    assert what in str(err.value)


def test_too_large_policy_is_refused() -> None:
    body = ENFORCE + b"ext: " + b"x" * MAX_POLICY_BYTES + b"\n"
    with pytest.raises(StsTooLarge):
        parse_sts_policy(body)


def test_mx_wildcard_matches_one_label_only() -> None:
    assert mx_matches("*.mail.partner.test", "a.mail.partner.test")
    assert not mx_matches("*.mail.partner.test", "a.b.mail.partner.test")
    assert not mx_matches("*.mail.partner.test", "mail.partner.test")
    assert mx_matches("mx1.partner.test", "MX1.Partner.Test.")


def test_record_expiry_and_enforcing() -> None:
    rec = MtaStsRecord.from_policy(DOMAIN, "id1", parse_sts_policy(ENFORCE), NOW)
    assert rec.expires == NOW + timedelta(days=1)
    assert rec.enforcing(NOW + timedelta(hours=23))
    assert not rec.enforcing(NOW + timedelta(days=1, seconds=1))
    assert MtaStsRecord.from_json(json.loads(json.dumps(rec.to_json()))) == rec
    testing = MtaStsRecord.from_policy(
        DOMAIN, "id1", parse_sts_policy(ENFORCE.replace(b"enforce", b"testing")), NOW
    )
    assert testing.valid(NOW) and not testing.enforcing(NOW)


# --------------------------------------------------------- real DNS + real HTTPS


@pytest.fixture
def ca() -> TestCA:
    return TestCA()


@pytest.fixture
def ca_file(ca: TestCA, tmp_path: Path) -> Path:
    return ca.write_ca(tmp_path / "ca.pem")


@pytest.fixture
def https(tmp_path: Path, ca: TestCA) -> Iterator[HttpsController]:
    cert, key = ca.issue([HOST, "mta-sts.other.test"], tmp_path)
    ctl = HttpsController(cert, key).start()
    yield ctl
    ctl.stop()


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer({(f"_mta-sts.{DOMAIN}", "TXT"): ['"v=STSv1; id=20260601"']}) as server:
        yield server


def _serve(https: HttpsController, body: bytes = ENFORCE, ctype: str = "text/plain") -> None:
    https.content[(HOST, PATH)] = (200, body)
    https.content_types[(HOST, PATH)] = ctype


def _sources(
    dns: DnsServer, https: HttpsController, ca_file: Path, timeout: float = 5.0
) -> StsSources:
    return StsSources(
        dns=DnsResolver(["127.0.0.1"], dns.port, timeout=timeout),
        ca_file=str(ca_file),
        resolve={HOST: ("127.0.0.1", https.port), "mta-sts.other.test": ("127.0.0.1", https.port)},
        timeout=timeout,
    )


def test_fetch_enforce_policy(dns: DnsServer, https: HttpsController, ca_file: Path) -> None:
    _serve(https, ctype="text/plain; charset=utf-8")
    rec = fetch_mta_sts(DOMAIN, _sources(dns, https, ca_file), now=NOW)
    assert (rec.policy_id, rec.mode, rec.max_age) == ("20260601", "enforce", 86400)
    assert rec.enforcing(NOW) and "MTA-STS enforce (id 20260601, until 2026-06-02" in (
        rec.describe()
    )
    assert https.requests == [(HOST, PATH)]
    assert (f"_mta-sts.{DOMAIN}", "TXT") in dns.queries


def test_refresh_keeps_record_while_id_unchanged(
    dns: DnsServer, https: HttpsController, ca_file: Path
) -> None:
    _serve(https)
    sources = _sources(dns, https, ca_file)
    first = fetch_mta_sts(DOMAIN, sources, now=NOW)
    later = NOW + timedelta(hours=1)
    assert refresh_mta_sts(DOMAIN, first, sources, now=later) is first
    assert len(https.requests) == 1  # id unchanged: no second HTTPS fetch
    dns.records[(f"_mta-sts.{DOMAIN}", "TXT")] = ['"v=STSv1; id=20260602"']
    _serve(https, ENFORCE.replace(b"enforce", b"testing"))
    second = refresh_mta_sts(DOMAIN, first, sources, now=later)
    assert (second.policy_id, second.mode, second.fetched) == ("20260602", "testing", later)
    assert refresh_mta_sts(DOMAIN, second, sources, now=later, force=True) == second
    assert len(https.requests) == 3


def test_no_txt_record(dns: DnsServer, https: HttpsController, ca_file: Path) -> None:
    _serve(https)
    with pytest.raises(NoStsRecord) as err:
        fetch_mta_sts("other.test", _sources(dns, https, ca_file), now=NOW)
    assert err.value.hint and https.requests == []  # no HTTPS without a TXT record


@pytest.mark.parametrize(
    ("status", "ctype", "what"),
    [
        (301, "text/plain", "HTTP 301"),
        (404, "text/plain", "HTTP 404"),
        (200, "text/html", "Content-Type text/html"),
        (200, "application/octet-stream", "Content-Type application/octet-stream"),
    ],
)
def test_http_answers_other_than_200_text_plain_are_refused(
    dns: DnsServer, https: HttpsController, ca_file: Path, status: int, ctype: str, what: str
) -> None:
    https.content[(HOST, PATH)] = (status, ENFORCE)
    https.content_types[(HOST, PATH)] = ctype
    with pytest.raises(StsFetchFailed) as err:
        fetch_mta_sts(DOMAIN, _sources(dns, https, ca_file), now=NOW)
    assert what in str(err.value)


def test_bad_tls_is_refused_before_any_request(
    dns: DnsServer, https: HttpsController, tmp_path: Path
) -> None:
    _serve(https)
    other = TestCA(name="Not the server's CA").write_ca(tmp_path / "other.pem")
    with pytest.raises(StsTlsFailed) as err:
        fetch_mta_sts(DOMAIN, _sources(dns, https, other), now=NOW)
    assert "certificate not valid" in str(err.value)
    assert https.requests == []


def test_wrong_host_certificate_is_refused(
    dns: DnsServer, https: HttpsController, ca_file: Path, ca: TestCA, tmp_path: Path
) -> None:
    dns.records[("_mta-sts.third.test", "TXT")] = ['"v=STSv1; id=1"']
    sources = _sources(dns, https, ca_file)
    sources = StsSources(
        dns=sources.dns,
        ca_file=sources.ca_file,
        resolve={"mta-sts.third.test": ("127.0.0.1", https.port)},
    )
    with pytest.raises(StsTlsFailed):
        fetch_mta_sts("third.test", sources, now=NOW)


def test_too_large_and_bad_policy_from_server(
    dns: DnsServer, https: HttpsController, ca_file: Path
) -> None:
    _serve(https, ENFORCE + b"ext: " + b"x" * MAX_POLICY_BYTES)
    with pytest.raises(StsTooLarge):
        fetch_mta_sts(DOMAIN, _sources(dns, https, ca_file), now=NOW)
    _serve(https, b"<html>not a policy</html>")
    with pytest.raises(BadStsPolicy):
        fetch_mta_sts(DOMAIN, _sources(dns, https, ca_file), now=NOW)


def test_dns_and_https_timeouts(dns: DnsServer, https: HttpsController, ca_file: Path) -> None:
    _serve(https)
    dns.silent.add(f"_mta-sts.{DOMAIN}")
    with pytest.raises(StsTimeout):
        fetch_mta_sts(DOMAIN, _sources(dns, https, ca_file, timeout=0.5), now=NOW)
    dns.silent.clear()
    release = https.hold_responses()
    try:
        with pytest.raises(StsTimeout):
            fetch_mta_sts(DOMAIN, _sources(dns, https, ca_file, timeout=0.5), now=NOW)
    finally:
        release.set()


# ------------------------------------------------------------------------- CLI


def _cli_args(dns: DnsServer, https: HttpsController, ca_file: Path) -> list[str]:
    return [
        f"--dns=127.0.0.1:{dns.port}",
        f"--resolve={HOST}:127.0.0.1:{https.port}",
        f"--ca-file={ca_file}",
    ]


def test_cli_policy_tls_shows_and_stores_the_record(
    dns: DnsServer, https: HttpsController, ca_file: Path, cli: Cli, tmp_path: Path
) -> None:
    _serve(https)
    dns.records[(DOMAIN, "MX")] = ["10 a.mail.partner.test.", "20 mx9.partner.test."]
    res = cli.ok("policy", "tls", DOMAIN, "--refresh", "--json", *_cli_args(dns, https, ca_file))
    out = json.loads(res.text)
    assert out["mta_sts"]["mode"] == "enforce" and out["mta_sts"]["id"] == "20260601"
    assert out["meets_tls_required"] and out["basis"].startswith("MTA-STS enforce (id 20260601")
    assert out["mx_hosts"] == [
        {"host": "a.mail.partner.test", "preference": 10, "matches_policy": True},
        {"host": "mx9.partner.test", "preference": 20, "matches_policy": False},
    ]
    # stored: shown again without any network look-up
    before = len(https.requests)
    again = json.loads(cli.ok("policy", "tls", DOMAIN, "--json").text)
    assert again["mta_sts"] == out["mta_sts"] and len(https.requests) == before
    # a partner on the organisation's list: the reason says so
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"version": 1, "partner_tls_domains": [DOMAIN]}))
    listed = json.loads(cli.ok("policy", "tls", DOMAIN, "--json", f"--policy={policy}").text)
    assert listed["basis"] == "partner list"


def test_cli_policy_tls_errors_are_typed_with_hints(
    dns: DnsServer, https: HttpsController, ca_file: Path, cli: Cli
) -> None:
    _serve(https, ctype="text/html")
    res = cli("policy", "tls", DOMAIN, "--refresh", "--json", *_cli_args(dns, https, ca_file))
    assert res.returncode == 12, res.stderr
    assert "Content-Type text/html" in res.stderr and "hint:" in res.stderr
    res = cli("policy", "tls", "other.test", "--json", *_cli_args(dns, https, ca_file))
    assert res.returncode == 12 and "no TXT record" in res.stderr


def test_cli_partner_domains_need_policy_permission(cli: Cli, tmp_path: Path) -> None:
    strict = tmp_path / "strict.json"  # explicit files: independent of a managed policy
    strict.write_text(json.dumps({"version": 1}))
    res = cli("policy", "partner", "add", "lab.test", f"--policy={strict}")
    assert res.returncode == 12 and "does not let users add partner domains" in res.stderr
    allowed = tmp_path / "allowed.json"
    allowed.write_text(json.dumps({"version": 1, "user_may": {"add_partner_domains": True}}))
    out = cli.ok("policy", "partner", "add", "Lab.Test", f"--policy={allowed}", "--json")
    assert json.loads(out.text) == {"user_partner_domains": ["lab.test"], "counted_by_policy": True}
    shown = json.loads(cli.ok("policy", "partner", "list", "--json", f"--policy={allowed}").text)
    assert shown["user_partner_domains"] == ["lab.test"]
    cli.ok("policy", "partner", "remove", "lab.test", f"--policy={allowed}")
    shown = json.loads(cli.ok("policy", "partner", "list", "--json", f"--policy={strict}").text)
    assert shown == {"user_partner_domains": [], "counted_by_policy": False}


def test_session_refreshes_recipient_domains_best_effort(
    dns: DnsServer,
    https: HttpsController,
    ca_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from client.policy.orgpolicy import DEFAULT_POLICY
    from client.policy.plan import tls_basis
    from client.services import Session
    from keystore.store import Keystore

    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    session = Session(Keystore.open(tmp_path / "p", passphrase="profile passphrase"))
    try:
        _serve(https)
        found = session.tls_refresh_recipients(
            ["a@partner.test", "b@Partner.test", "c@other.test"],
            sources=_sources(dns, https, ca_file),
            now=NOW,
        )
        assert isinstance(found["partner.test"], MtaStsRecord)
        assert isinstance(found["other.test"], NoStsRecord)  # returned, not raised
        assert session.tls_store().last_error("other.test")["error"] == "NoStsRecord"  # type: ignore[index]
        knowledge = session.tls_knowledge(["x@partner.test", "y@other.test"])
        assert set(knowledge.mta_sts) == {"partner.test"}
        assert (tls_basis("x@partner.test", DEFAULT_POLICY, knowledge, NOW) or "").startswith(
            "MTA-STS enforce"
        )
        assert tls_basis("y@other.test", DEFAULT_POLICY, knowledge, NOW) is None
        assert (session.tls_store().path.stat().st_mode & 0o777) == 0o600
    finally:
        session.close()
