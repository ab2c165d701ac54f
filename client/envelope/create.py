"""Create password-protected files for recipients without keys -- sans I/O.

Theory of operation
-------------------
:func:`create` makes one of three formats from a message text and files:

* ``"html"`` (the default): a Sealmail envelope page (``format.seal`` + ``page.render``)
  that opens in any browser, offline, and lets the recipient reply securely;
* ``"gpg"``: an OpenPGP password-encrypted file (SKESK v4 + SEIPDv1 with MDC, AES-256),
  what ``gpg -c`` makes and ``gpg -d`` opens; exactly one file, no message text;
* ``"cms"``: a CMS EnvelopedData with a PasswordRecipientInfo (RFC 3211, PBKDF2-SHA-256,
  AES-256-CBC) in DER, which ``openssl cms -decrypt -pwri_password`` opens; one file.

The password is never put in the file in any form but the KDF's output, and a message
text that contains the password is refused, so it is not sent in the same mail.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from client.crypto import cms, pgpstream
from client.envelope import format as fmt
from client.envelope import page
from client.errors import UsageError

__all__ = ["MAX_ATTACHMENTS", "Created", "OutputFormat", "create"]

OutputFormat = Literal["html", "gpg", "cms"]
MAX_ATTACHMENTS = 25 * 1024 * 1024
Rng = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class Created:
    data: bytes
    format: OutputFormat
    suggested_name: str


def _check_password(password: bytes, message: str, files: Sequence[fmt.Attachment]) -> None:
    pw = fmt.normalize_password(password).decode("utf-8")
    if len(pw) < 8:
        raise UsageError(
            "the password is too short",
            hint="Use `sealmail envelope password` to get a strong speakable password.",
        )
    if pw.casefold() in message.casefold():
        raise UsageError(
            "the message text contains the password",
            hint="Never send the password in the same mail; give it by phone or SMS.",
        )
    if any(pw.casefold() in f.name.casefold() for f in files):
        raise UsageError("a file name contains the password")


def create(
    message: str,
    files: Sequence[fmt.Attachment],
    password: bytes,
    *,
    now: datetime,
    rng: Rng = os.urandom,
    output: OutputFormat = "html",
    sender: str | None = None,
    recipient: str | None = None,
    subject: str | None = None,
    iterations: int = fmt.DEFAULT_ITERATIONS,
) -> Created:
    """Encrypt ``message`` and ``files`` under ``password`` in the chosen format."""
    _check_password(password, message, files)
    total = sum(len(f.data) for f in files)
    if total > MAX_ATTACHMENTS:
        raise UsageError(
            f"the attachments add up to {total / 2**20:.1f} MiB; an envelope holds at most 25 MiB"
        )
    if output == "html":
        container = fmt.seal(
            message,
            files,
            password,
            now=now,
            rng=rng,
            sender=sender,
            recipient=recipient,
            subject=subject,
            iterations=iterations,
        )
        return Created(page.render(container), "html", "secure-message.html")
    if len(files) != 1 or message.strip():
        raise UsageError(f"--format {output} holds exactly one file and no message text")
    (only,) = files
    if output == "gpg":
        literal = pgpstream.literal_packet(
            only.data, only.name.encode("utf-8")[:255], b"b", int(now.timestamp())
        )
        data = pgpstream.encrypt(literal, passwords=[password], cipher="AES-256", rng=rng, now=now)
        return Created(data, "gpg", f"{only.name}.gpg")
    if output == "cms":
        der = cms.encrypt_password(only.data, password, cipher="aes256-cbc", rng=rng)
        return Created(der, "cms", f"{only.name}.p7m")
    raise UsageError(f"unknown output format {output!r}")
