"""``client.mime.bulk`` writes the same bytes as the ``email`` generator, faster.

Each case builds one message twice — attachments added the stdlib way and through
:class:`Bulk` — with the generator's boundary randomness seeded alike, and compares the
bytes; then the message is read back and each attachment compared with what went in.
"""

from __future__ import annotations

import email
import email.policy
import random
from email.message import EmailMessage

import pytest

from client.mime.bulk import Bulk
from client.mime.raw import decoded_payload

SIZES = [0, 1, 56, 57, 58, 57 * 16384 - 1, 57 * 16384 + 5, 3 * 1024 * 1024 + 1]


def _message(policy: email.policy.Policy) -> EmailMessage:
    msg = EmailMessage(policy=policy)
    msg["From"] = "Dr. Müller <mueller@example.org>"
    msg["To"] = "a@example.net"
    msg["Subject"] = "Befund — scan attached"
    msg.set_content("Text with a line\nand another.\n")
    return msg


def _attachments(sizes: list[int]) -> list[tuple[str, bytes]]:
    rnd = random.Random(sum(sizes) + len(sizes))
    return [(f"scan-{i}-ä.dcm", rnd.randbytes(n)) for i, n in enumerate(sizes)]


@pytest.mark.parametrize(
    "policy", [email.policy.SMTP, email.policy.default], ids=["smtp", "default"]
)
@pytest.mark.parametrize("sizes", [[s] for s in SIZES] + [[5, 0, 200_000, 57]], ids=str)
def test_bulk_equals_the_generator(policy: email.policy.Policy, sizes: list[int]) -> None:
    files = _attachments(sizes)
    plain = _message(policy)
    for name, data in files:
        plain.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    random.seed(7)
    expected = plain.as_bytes()
    spliced = _message(policy)
    bulk = Bulk()
    for name, data in files:
        bulk.add_attachment(
            spliced, data, maintype="application", subtype="octet-stream", filename=name
        )
    random.seed(7)
    got = bulk.as_bytes(spliced)
    assert got == expected
    back = email.message_from_bytes(got, policy=email.policy.default)
    assert [decoded_payload(p) for p in back.iter_attachments()] == [d for _, d in files]


def test_identical_attachments_each_get_their_own_body() -> None:
    data = b"same bytes" * 1000
    msg = _message(email.policy.SMTP)
    bulk = Bulk()
    for name in ("a.bin", "b.bin"):
        bulk.add_attachment(msg, data, maintype="application", subtype="x", filename=name)
    back = email.message_from_bytes(bulk.as_bytes(msg), policy=email.policy.default)
    assert [decoded_payload(p) for p in back.iter_attachments()] == [data, data]
