"""The envelope page in a real browser (Debian Chromium via Playwright), offline.

Covers: open from file:// with the network blocked, wrong then right password, every
attachment downloaded and compared by SHA-256, a tampered page refused, a secure reply
written in the page and opened by Sealmail, a 25 MB attachment, and screenshots of the
page before and after the password (written to /tmp/sealmail-envelope-*.png).
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from client.envelope import format as fmt
from client.envelope import open as env_open
from client.envelope import page as env_page
from client.envelope.create import create
from tests.browser.conftest import Browser

PASSWORD = "bazok-tifum-ruveg-nodal"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MESSAGE = "Dear Ms Example,\n\nyour lab results are attached.\n\n— Dr. Alice (Clinic) 🩺"


class _NoKeys:
    def pgp_secret_keys(self) -> list[tuple[bytes, bytes | None]]:
        return []


def _make(tmp_path: Path, files: list[fmt.Attachment], name: str = "env.html") -> Path:
    created = create(
        MESSAGE,
        files,
        PASSWORD.encode(),
        now=NOW,
        rng=os.urandom,
        sender="alice@clinic.example",
        recipient="patient@example.net",
        subject="Lab results",
    )
    path = tmp_path / name
    path.write_bytes(created.data)
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _unlock(page, password: str, *, timeout: float = 60_000):  # type: ignore[no-untyped-def]
    page.fill("#password", password)
    page.click("#open")
    page.wait_for_selector("#status.ok, #status.error", timeout=timeout)
    return page.text_content("#status")


def _downloads(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    out = {}
    for link in page.query_selector_all("a.file"):
        with page.expect_download() as info:
            link.click()
        out[info.value.suggested_filename] = _sha(Path(info.value.path()).read_bytes())
    return out


def _assert_offline(browser: Browser, path: Path) -> None:
    assert all(u.startswith(("file://", "blob:")) for u in browser.requests), browser.requests
    assert path.as_uri() in browser.requests
    assert not [c for c in browser.console if "Content Security Policy" in c], browser.console


def test_open_wrong_then_right_password_and_download(tmp_path: Path, browser: Browser) -> None:
    files = [
        fmt.Attachment("results.pdf", os.urandom(300_000)),
        fmt.Attachment("notes – März.txt", "Grüße\n".encode()),
        fmt.Attachment("empty.bin", b""),
    ]
    path = _make(tmp_path, files)
    page = browser.page()
    page.goto(path.as_uri())
    assert "secure message" in page.text_content("h1").lower()
    page.screenshot(path="/tmp/sealmail-envelope-before.png", full_page=True)

    status = _unlock(page, "wrong-words-typed-here")
    assert "not correct" in status
    assert page.is_hidden("#content")

    status = _unlock(page, PASSWORD)
    assert "unlocked" in status and "not been changed" in status
    assert page.text_content("#message") == MESSAGE
    assert "Lab results" in page.text_content("#meta")
    page.screenshot(path="/tmp/sealmail-envelope-after.png", full_page=True)
    assert _downloads(page) == {f.name: _sha(f.data) for f in files}
    _assert_offline(browser, path)


def test_csp_is_strict(tmp_path: Path) -> None:
    html = _make(tmp_path, []).read_text()
    marker = 'http-equiv="Content-Security-Policy" content="'
    start = html.index(marker) + len(marker)
    policy = html[start : html.index('"', start)]
    assert policy.startswith("default-src 'none'; script-src 'sha256-")
    assert "unsafe" not in policy and "http" not in policy and "*" not in policy
    assert "connect-src 'none'" in policy and "img-src 'none'" in policy
    assert "http://" not in html and "https://" not in html and " src=" not in html


def test_tampered_envelope_refused(tmp_path: Path, browser: Browser) -> None:
    path = _make(tmp_path, [fmt.Attachment("a.bin", os.urandom(5000))])
    html = path.read_bytes()
    head, _, rest = html.partition(b'id="sealmail-payload">')
    payload, _, tail = rest.partition(b"</script>")
    i = len(payload) - 40  # inside the last chunk's ciphertext
    flipped = b"A" if payload[i : i + 1] != b"A" else b"B"
    bad = tmp_path / "tampered.html"
    bad.write_bytes(
        head
        + b'id="sealmail-payload">'
        + payload[:i]
        + flipped
        + payload[i + 1 :]
        + b"</script>"
        + tail
    )
    page = browser.page()
    page.goto(bad.as_uri())
    status = _unlock(page, PASSWORD)
    assert "changed" in status and "not opened" in status
    assert page.is_hidden("#content")
    assert page.query_selector_all("a.file") == []


def test_truncated_envelope_refused(tmp_path: Path, browser: Browser) -> None:
    container = fmt.seal(
        "x",
        [fmt.Attachment("a", os.urandom(3000))],
        PASSWORD,
        now=NOW,
        rng=os.urandom,
        chunk_size=1024,
    )
    c = fmt.parse(container)
    cut = container[: len(c.prefix) + 2 * (1024 + 16)]  # drop the final chunk
    bad = tmp_path / "cut.html"
    bad.write_bytes(env_page.render(cut))
    page = browser.page()
    page.goto(bad.as_uri())
    assert "changed" in _unlock(page, PASSWORD)


def test_reply_made_in_page_opens_in_sealmail(tmp_path: Path, browser: Browser) -> None:
    path = _make(tmp_path, [fmt.Attachment("form.pdf", os.urandom(1000))])
    reply_file = tmp_path / "signed form.pdf"
    reply_file.write_bytes(os.urandom(2_500_000))
    page = browser.page()
    page.goto(path.as_uri())
    _unlock(page, PASSWORD)
    page.fill("#reply-text", "Thank you, the signed form is attached.")
    page.set_input_files("#reply-files", str(reply_file))
    page.click("#reply-make")
    page.wait_for_selector("#reply-done:not([hidden])", timeout=60_000)
    mailto = page.get_attribute("#reply-mailto", "href")
    assert mailto.startswith("mailto:alice@clinic.example?subject=Re%3A%20Lab%20results")
    assert PASSWORD not in mailto
    with page.expect_download() as info:
        page.click("#reply-download")
    assert info.value.suggested_filename == "secure-reply.html"
    reply = Path(info.value.path()).read_bytes()
    assert PASSWORD.encode() not in reply

    assert env_open.detect(reply) is env_open.OpenKind.SEALMAIL_REPLY
    opened = env_open.open_bytes(
        reply,
        keys=_NoKeys(),
        password=lambda: PASSWORD.encode(),
        now=NOW,  # type: ignore[arg-type]
    )
    assert opened.kind is env_open.OpenKind.SEALMAIL_REPLY
    assert opened.message == "Thank you, the signed form is attached."
    assert [(f.name, _sha(f.data)) for f in opened.files] == [
        ("signed form.pdf", _sha(reply_file.read_bytes()))
    ]
    assert opened.details["to"] == "alice@clinic.example"
    original = fmt.open_container(env_page.extract(path.read_bytes()), PASSWORD)
    assert opened.details["in_reply_to"] == original.envelope_id

    # the reply page itself opens in the browser too (same script, same CSP hash)
    reply_path = tmp_path / "secure-reply.html"
    reply_path.write_bytes(reply)
    page2 = browser.page()
    page2.goto(reply_path.as_uri())
    assert "secure reply" in page2.text_content("h1").lower()
    assert "unlocked" in _unlock(page2, PASSWORD)
    assert page2.is_hidden("#reply")
    assert _downloads(page2) == {"signed form.pdf": _sha(reply_file.read_bytes())}
    assert not [c for c in browser.console if "error" in c.lower()], browser.console


@pytest.mark.slow
def test_25_mb_attachment(tmp_path: Path, browser: Browser) -> None:
    big = fmt.Attachment("scan.tiff", os.urandom(25 * 1024 * 1024 - 4096))
    t0 = time.perf_counter()
    path = _make(tmp_path, [big])
    t_create = time.perf_counter() - t0
    page = browser.page()
    page.goto(path.as_uri())
    t0 = time.perf_counter()
    status = _unlock(page, PASSWORD, timeout=120_000)
    t_open = time.perf_counter() - t0
    assert "unlocked" in status
    t0 = time.perf_counter()
    assert _downloads(page) == {"scan.tiff": _sha(big.data)}
    t_download = time.perf_counter() - t0
    print(
        f"\n25 MB: sealmail create {t_create:.2f}s; chromium unlock {t_open:.2f}s, "
        f"download+hash {t_download:.2f}s"
    )
    assert t_open < 30
