"""Drafts on the server: saved by IMAP APPEND, replaced, reopened, deleted — never leaked.

Theory of operation
-------------------
A draft is the user's RFC 5322 message (Bcc and the chosen level included) tagged with a
random ``X-Sealmail-Draft`` token that stays the same across versions. :func:`draft_form`
decides what is stored on the server:

* the policy plan of the draft (the same :meth:`Session.policy_plan` the composer and the
  send path use) encrypts, or the scanner found something (or could not read a part), or
  planning failed (fail closed) → the draft is **protected**: it travels inside a small
  wrapper message (``From``/``To`` = the sender, the draft as the attachment
  ``sealmail-draft.eml``) encrypted with :func:`client.crypto.recipes.protect` to the
  sender's *own* key — OpenPGP when the sender has an own OpenPGP key, else their own
  S/MIME certificate, exactly as Sent copies are encrypted to self. The wrapper is opened
  once before it is stored (a draft nobody can read never replaces a good one). Outside,
  only the token, the sender and an obscured subject are visible.
* no own key for a protected draft → :class:`DraftNeedsOwnKey`: nothing is stored and
  the caller keeps the draft in memory only.
* otherwise the draft is stored as written (a normal IMAP draft any client can open).

:func:`save` APPENDs the new version with ``\\Draft`` first, then deletes and expunges
every older UID carrying the same token (UIDPLUS), so a crash between the two leaves two
versions, never none. :func:`reopen` undoes :func:`draft_form` (decrypting in memory).
The IMAP functions take an open :class:`~client.transport.imap.ImapSession`; the crypto
and the decision are sans-I/O (``now``, ``rng`` are parameters).
"""

from __future__ import annotations

import email
import email.header
import email.policy
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid
from typing import TYPE_CHECKING, Any

from client.crypto.recipes import protect
from client.errors import MalformedMessage, NoKeyForRecipient, SealmailError, UsageError
from client.mime.raw import decoded_payload
from client.transport.imap import ImapSession, imap_errors

if TYPE_CHECKING:
    from client.policy.orgpolicy import OrgPolicy
    from client.services import Session

__all__ = [
    "DRAFT_FILE",
    "DRAFT_HEADER",
    "DraftInfo",
    "DraftNeedsOwnKey",
    "SavedDraft",
    "delete",
    "draft_form",
    "draft_id_of",
    "list_drafts",
    "needs_protection",
    "own_key_kind",
    "reopen",
    "save",
    "with_draft_id",
]

DRAFT_HEADER = "X-Sealmail-Draft"
DRAFT_FILE = "sealmail-draft.eml"
_NOTE = (
    "This is a Sealmail draft, encrypted to your own key.\r\n"
    "Open it in Sealmail (Drafts) to continue writing.\r\n"
)
_TOKEN = re.compile(r"^[0-9a-f]{32}$")
Rng = Callable[[int], bytes]


class DraftNeedsOwnKey(NoKeyForRecipient):
    """A protected draft cannot be stored: the sender has no own key to encrypt it to."""


@dataclass(frozen=True)
class SavedDraft:
    draft_id: str
    uid: int | None  # the new version's UID (APPENDUID)
    folder: str
    encrypted: bool
    replaced: tuple[int, ...]  # older versions deleted

    def to_json(self) -> dict[str, Any]:
        return {
            "draft_id": self.draft_id,
            "uid": self.uid,
            "folder": self.folder,
            "encrypted": self.encrypted,
            "replaced": list(self.replaced),
        }


@dataclass(frozen=True)
class DraftInfo:
    uid: int
    draft_id: str | None  # None: a draft another program saved
    subject: str  # "" for an encrypted draft (the real subject is inside)
    date: str
    encrypted: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "draft_id": self.draft_id,
            "subject": self.subject,
            "date": self.date,
            "encrypted": self.encrypted,
        }


# ------------------------------------------------------------------ headers (sans-I/O)


def _split(raw: bytes) -> tuple[bytes, bytes, bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = raw.find(sep)
        if i >= 0:
            return raw[:i], sep, raw[i + len(sep) :]
    return raw, b"\r\n\r\n", b""


def _headers(raw: bytes) -> email.message.Message:
    head, _sep, _body = _split(raw)
    return email.message_from_bytes(head + b"\r\n\r\n", policy=email.policy.compat32)


def draft_id_of(raw: bytes) -> str | None:
    value = _headers(raw).get(DRAFT_HEADER)
    token = str(value).strip().lower() if value is not None else ""
    return token if _TOKEN.match(token) else None


def with_draft_id(raw: bytes, draft_id: str) -> bytes:
    """``raw`` with exactly one ``X-Sealmail-Draft: draft_id`` field."""
    if not _TOKEN.match(draft_id):
        raise UsageError("a draft id is 32 hexadecimal digits")
    head, sep, body = _split(raw)
    eol = b"\r\n" if b"\r\n" in head or not head else b"\n"
    field = re.compile(
        rb"(?im)^" + re.escape(DRAFT_HEADER.encode()) + rb":[^\n]*\n?(?:[ \t][^\n]*\n?)*"
    )
    head = field.sub(b"", head + eol).rstrip(b"\r\n")
    return head + eol + f"{DRAFT_HEADER}: {draft_id}".encode() + sep + body


def _sender(raw: bytes) -> str | None:
    pairs = getaddresses([str(v) for v in (_headers(raw).get_all("From") or [])])
    found = [a.strip().lower() for _, a in pairs if "@" in a]
    return found[0] if found else None


def _subject(raw: bytes) -> str:
    value = str(_headers(raw).get("Subject") or "")
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (ValueError, LookupError):
        return value


# ------------------------------------------------------------------- the decision


def needs_protection(
    session: Session, raw: bytes, policy: OrgPolicy | None, *, now: datetime
) -> bool:
    """True when the plan encrypts, the scanner found something, or planning failed."""
    from client.policy.decide import requested_level

    try:
        org = policy if policy is not None else session.current_org_policy()
        p = session.policy_plan(raw, org, level=requested_level(raw), now=now)
    except (SealmailError, ValueError):
        return True  # fail closed: a draft we cannot judge is kept encrypted
    return p.level.encrypts or any(r.rule in ("finding", "unreadable") for r in p.reasons)


def own_key_kind(session: Session, sender: str, *, now: datetime) -> str | None:
    """ "pgp" or "smime" when the sender has a usable own key of that kind (PGP first)."""
    kinds: set[str] = set()
    for info in session.store.list():
        if (
            info.secret
            and sender in info.emails
            and not info.revoked
            and (info.expires is None or info.expires > now)
        ):
            kinds.add("pgp" if info.kind == "pgp" else "smime")
    for kind in ("pgp", "smime"):
        if kind in kinds:
            return kind
    return None


def _wrapper(raw: bytes, sender: str, draft_id: str, *, now: datetime) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = sender
    msg["Subject"] = _subject(raw) or "(draft)"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "sealmail.invalid")
    msg[DRAFT_HEADER] = draft_id
    msg.set_content(_NOTE)
    msg.add_attachment(raw, maintype="application", subtype="octet-stream", filename=DRAFT_FILE)
    return msg.as_bytes(policy=email.policy.SMTP)


def draft_form(
    session: Session,
    raw: bytes,
    draft_id: str,
    *,
    policy: OrgPolicy | None = None,
    protect_always: bool = False,
    now: datetime,
    rng: Rng,
) -> tuple[bytes, bool]:
    """What goes to the server for this draft: (bytes, encrypted)."""
    raw = with_draft_id(raw, draft_id)
    if not protect_always and not needs_protection(session, raw, policy, now=now):
        return raw, False
    sender = _sender(raw)
    kind = own_key_kind(session, sender, now=now) if sender else None
    if sender is None or kind is None:
        raise DraftNeedsOwnKey(
            "this draft needs protection, but you have no own key or certificate to "
            "encrypt it to; it was not saved on the server",
            hint="It stays in this window only. Create or import your own key "
            "(Keys and certificates) to save protected drafts.",
        )
    stored = protect(
        _wrapper(raw, sender, draft_id, now=now),
        session.keys,
        encrypt_to=[sender],
        sender=sender,
        sign=False,
        encrypt=True,
        method=kind,
        now=now,
        rng=rng,
    ).message
    if _unwrap(session, stored, now=now) != raw:  # never store what we cannot read back
        raise DraftNeedsOwnKey(
            "the draft could not be read back with your own key; it was not saved",
            hint="Check your own key in Keys and certificates (it may lack an encryption key).",
        )
    return stored, True


def _is_encrypted(raw: bytes) -> bool:
    ctype = str(_headers(raw).get("Content-Type") or "").lower()
    return ctype.startswith(
        ("multipart/encrypted", "application/pkcs7-mime", "application/x-pkcs7-mime")
    )


def _unwrap(session: Session, stored: bytes, *, now: datetime) -> bytes:
    opened = session.message_open(stored, now=now, require="encrypted")
    inner = email.message_from_bytes(opened.message, policy=email.policy.default)
    for part in inner.walk():
        if part.get_filename() == DRAFT_FILE:
            payload = decoded_payload(part)
            if isinstance(payload, bytes):
                return payload
    raise MalformedMessage("the encrypted draft holds no draft")


def reopen(session: Session, stored: bytes, *, now: datetime) -> bytes:
    """The draft as the user wrote it (decrypted in memory when it was stored encrypted)."""
    if _is_encrypted(stored) and draft_id_of(stored) is not None:
        return _unwrap(session, stored, now=now)
    return stored


# ----------------------------------------------------------------------- IMAP shell


def _find(imap: ImapSession, folder: str, draft_id: str) -> list[int]:
    imap.select(folder)
    return sorted(imap.uids(["HEADER", DRAFT_HEADER, draft_id]))


def save(imap: ImapSession, folder: str, stored: bytes, *, encrypted: bool) -> SavedDraft:
    """APPEND ``stored`` (a :func:`draft_form` result), then remove its older versions."""
    draft_id = draft_id_of(stored)
    if draft_id is None:
        raise UsageError("a draft to store must carry its draft id")
    imap.create_folder(folder)
    uid = imap.append(folder, stored, flags=["\\Draft", "\\Seen"])
    found = _find(imap, folder, draft_id)
    keep = uid if uid is not None else (found[-1] if found else None)
    old = [u for u in found if u != keep]
    if old:
        imap.delete(old)
    return SavedDraft(draft_id, keep, folder, encrypted, tuple(old))


def list_drafts(imap: ImapSession, folder: str) -> list[DraftInfo]:
    imap.create_folder(folder)
    imap.select(folder, readonly=True)
    uids = imap.uids()
    if not uids:
        return []
    item = f"BODY.PEEK[HEADER.FIELDS (SUBJECT DATE CONTENT-TYPE {DRAFT_HEADER.upper()})]"
    out: list[DraftInfo] = []
    with imap_errors(imap.host):
        data = imap.client.fetch(uids, [item])
    for uid in sorted(data):
        fields = data[uid]
        head = next((bytes(v) for k, v in fields.items() if k.startswith(b"BODY[HEADER")), b"")
        encrypted = _is_encrypted(head)
        out.append(
            DraftInfo(
                uid=int(uid),
                draft_id=draft_id_of(head),
                subject="" if encrypted else _subject(head),
                date=str(_headers(head).get("Date") or ""),
                encrypted=encrypted,
            )
        )
    return out


def fetch(imap: ImapSession, folder: str, draft_id: str) -> bytes:
    found = _find(imap, folder, draft_id)
    if not found:
        raise UsageError(
            f"no draft {draft_id} in {folder}", hint="List the drafts with `sealmail draft list`."
        )
    return imap.fetch_body(found[-1])


def delete(imap: ImapSession, folder: str, draft_ids: Sequence[str]) -> list[int]:
    gone: list[int] = []
    for draft_id in draft_ids:
        found = _find(imap, folder, draft_id)
        if found:
            imap.delete(found)
            gone.extend(found)
    return gone
