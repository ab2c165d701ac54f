"""Opening a file the user double-clicked (``sealmail-gui FILE``): message or envelope.

Theory of operation
-------------------
:func:`open_file` decides how a file is opened, so that every S/MIME or OpenPGP *message*
gets a real :class:`~client.crypto.report.SecurityReport` (and thus the same security
banner as mail in the inbox), while password envelopes, ``gpg -c`` files and bare OpenPGP
files go through :meth:`client.services.Session.envelope_open`:

* a MIME message (``.eml``, a PGP/MIME or S/MIME mail saved to disk) -> ``message_open``
* a bare CMS enveloped/signed blob (``smime.p7m``)  -> wrapped as S/MIME, ``message_open``
* anything else (Sealmail envelope, CMS password, OpenPGP file, vendor portal)
  -> ``envelope_open`` (asks for a password through the callback when needed)

Everything stays in memory; nothing is written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from client.crypto.report import SecurityReport
from client.envelope import open as env_open
from client.mime.render import Attachment, Readable, readable

if TYPE_CHECKING:
    from client.services import Session

__all__ = ["FileView", "open_file"]


@dataclass(frozen=True)
class FileView:
    kind: str  # an OpenKind value, or "message"
    report: SecurityReport | None
    view: Readable
    message: bytes | None = field(default=None, repr=False)  # the opened RFC 5322 message
    details: dict[str, Any] = field(default_factory=dict)


def _is_mime(data: bytes) -> bool:
    return env_open._mime(data) is not None


def open_file(
    session: Session,
    data: bytes,
    *,
    filename: str | None,
    password: Callable[[], bytes | None],
    now: datetime,
) -> FileView:
    kind = env_open.detect(data, filename)
    raw: bytes | None = None
    if kind in (env_open.OpenKind.SMIME, env_open.OpenKind.PGP) and _is_mime(data):
        raw = data
    elif kind is env_open.OpenKind.SMIME:
        der = env_open._cms_der(data)
        if der is not None:
            raw = env_open._smime_wrap(der)
    elif kind is env_open.OpenKind.UNKNOWN and _is_mime(data):
        raw = data  # a plain or signed mail saved to disk
    if raw is not None:
        opened = session.message_open(raw, now=now)
        return FileView(
            kind.value if kind is not env_open.OpenKind.UNKNOWN else "message",
            opened.report,
            readable(opened.message),
            opened.message,
        )
    result = session.envelope_open(data, password=password, filename=filename, now=now)
    files = tuple(
        Attachment(f.name, f.media_type or "application/octet-stream", f.data) for f in result.files
    )
    return FileView(
        result.kind.value,
        None,
        Readable(result.message, None, {}, files),
        None,
        dict(result.details),
    )
