"""The security banner: plain words about what protected a message, from its report only.

Theory of operation
-------------------
:func:`describe` turns a :class:`client.crypto.report.SecurityReport` into a
:class:`BannerSpec` (a level and a few sentences); :func:`describe_error` does the same for
a message that could not be opened at all. Nothing else feeds the banner: no header field
an attacker can write in the clear is ever read as a security fact (the *claimed* sender
is quoted only to say that it does not match the signature). :func:`protection_label` is
the short form used in the message list.

Levels and colours: ``verified`` green, ``info`` grey-blue (nothing proven, nothing wrong),
``warn`` amber (unknown or untrusted), ``bad`` red (changed, mismatch, revoked, failed).
"""

from __future__ import annotations

import email.utils
import enum
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from client.crypto.report import SecurityReport, SignatureResult
from client.errors import SealmailError
from ui.i18n import tr

__all__ = [
    "COLOURS",
    "BannerSpec",
    "Level",
    "SecurityBanner",
    "describe",
    "describe_error",
    "protection_label",
]

CTX = "Banner"


class Level(enum.IntEnum):
    INFO = 0
    VERIFIED = 1
    WARN = 2
    BAD = 3


#: (background, border/text) per level
COLOURS: dict[Level, tuple[str, str]] = {
    Level.VERIFIED: ("#e3f4e6", "#1b6e2d"),
    Level.INFO: ("#e8eef5", "#34506e"),
    Level.WARN: ("#fff3d6", "#8a5a00"),
    Level.BAD: ("#fde2e1", "#a1130f"),
}

_METHOD = {"smime": "S/MIME", "pgp": "OpenPGP"}


@dataclass(frozen=True)
class BannerSpec:
    level: Level
    headline: str
    details: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return "\n".join((self.headline, *self.details))


def _address(value: str | None) -> str | None:
    if not value:
        return None
    addrs = [a for _, a in email.utils.getaddresses([value]) if a]
    return addrs[0] if addrs else None


def _who(sig: SignatureResult) -> str:
    if sig.signer_emails:
        return sig.signer_emails[0]
    if sig.signer:
        return sig.signer
    if sig.fingerprint:
        return tr(CTX, "key {fpr}").format(fpr=sig.fingerprint[:16])
    return tr(CTX, "an unknown signer")


def _signature(sig: SignatureResult, claimed: str | None) -> tuple[Level, str]:
    who = _who(sig)
    status = sig.status
    if status == "good":
        return Level.VERIFIED, tr(CTX, "Signed by {who} — verified").format(who=who)
    if status == "bad":
        return Level.BAD, tr(CTX, "Signature does not match — the message was changed")
    if status == "signer-mismatch":
        return Level.BAD, tr(
            CTX,
            "Signed by {who} but the message says it is from {claimed} — do not trust the sender",
        ).format(who=who, claimed=claimed or tr(CTX, "someone else"))
    if status == "unknown-key":
        return Level.WARN, tr(CTX, "Signed with an unknown key — the sender cannot be verified")
    if status == "untrusted":
        return Level.WARN, tr(CTX, "Signed by {who} — but the certificate is not trusted").format(
            who=who
        )
    if status == "expired-key":
        return Level.WARN, tr(CTX, "Signed by {who} — but the key has expired").format(who=who)
    if status == "revoked-key":
        return Level.BAD, tr(CTX, "Signed by {who} — but the key was revoked").format(who=who)
    return Level.WARN, tr(CTX, "Signed, but the signature could not be checked")


def describe(report: SecurityReport, *, claimed_from: str | None = None) -> BannerSpec:
    """The banner for an opened message.

    ``claimed_from`` is the From field the reader shows; it is used only to name the
    claimed sender when a signature does not match it, never as a fact.
    """
    protected_from = [v for n, v in report.protected_headers if n.lower() == "from"]
    claimed = _address(protected_from[0] if protected_from else claimed_from)
    parts: list[str] = []
    details: list[str] = []
    level = Level.INFO
    for layer in report.layers:
        method = _METHOD.get(layer.method, layer.method)
        if layer.decrypted_with:
            parts.append(tr(CTX, "Encrypted with {method} to you").format(method=method))
        else:
            parts.append(tr(CTX, "Encrypted with {method}").format(method=method))
    whole = [s for s in report.signatures if s.part == "message"]
    partial = [s for s in report.signatures if s.part != "message"]
    for sig in whole:
        sig_level, text = _signature(sig, claimed)
        level = max(level, sig_level)
        parts.append(text)
    if report.layers and not whole:
        parts.append(tr(CTX, "Not signed — the sender is not verified"))
    if not report.layers and not report.signatures:
        parts.append(tr(CTX, "Not encrypted, not signed — protected at most by TLS on the way"))
    for sig in partial:
        sig_level, text = _signature(sig, claimed)
        level = max(level, Level.BAD if sig_level == Level.BAD else Level.WARN)
        details.append(tr(CTX, "Part {part}: {text}").format(part=sig.part, text=text))
    for warning in report.warnings:
        level = max(level, Level.WARN)
        details.append(warning)
    return BannerSpec(level, " · ".join(parts), tuple(details))


def describe_error(exc: BaseException) -> BannerSpec:
    """The banner for a message that could not be opened."""
    if isinstance(exc, SealmailError):
        from client.errors import TamperedMessage, UnauthenticatedCiphertext

        if isinstance(exc, TamperedMessage):
            headline = tr(CTX, "The message was changed after it was protected — do not trust it")
        elif isinstance(exc, UnauthenticatedCiphertext):
            headline = tr(CTX, "Refused: the encryption does not protect against changes (Efail)")
        else:
            headline = tr(CTX, "This message could not be opened: {what}").format(what=str(exc))
        return BannerSpec(Level.BAD, headline, (exc.hint,))
    return BannerSpec(
        Level.BAD, tr(CTX, "This message could not be opened (internal error)"), (repr(exc),)
    )


def protection_label(report: SecurityReport | None, *, envelope: bool = False) -> tuple[str, str]:
    """(kind, short text) for the message list; kind selects the icon and colour."""
    if report is None:
        return "unopened", tr(CTX, "Not yet opened")
    spec_level = describe(report).level
    if spec_level == Level.BAD:
        return "bad", tr(CTX, "Do not trust")
    if report.encrypted:
        return "encrypted", tr(CTX, "Encrypted")
    if envelope:
        return "envelope", tr(CTX, "Envelope")
    if report.signed:
        if spec_level == Level.VERIFIED:
            return "signed", tr(CTX, "Signed")
        return "warn", tr(CTX, "Signed (unverified)")
    return "tls", tr(CTX, "TLS only")


_STYLE = "".join(
    f'QFrame#securityBanner[level="{lvl.name}"] {{ background: {bg}; border: 1px solid {fg};'
    f" border-left: 6px solid {fg}; border-radius: 3px; }}"
    f' QFrame#securityBanner[level="{lvl.name}"] QLabel {{ color: {fg};'
    " background: transparent; border: none; }"
    for lvl, (bg, fg) in COLOURS.items()
)


class SecurityBanner(QFrame):
    """A coloured box with the headline in bold and details below it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("securityBanner")
        self.setAccessibleName(tr(CTX, "Security banner"))
        self.spec: BannerSpec | None = None
        self.headline = QLabel(self)
        self.headline.setWordWrap(True)
        self.headline.setTextFormat(Qt.TextFormat.PlainText)
        self.headline.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.headline.font()
        font.setBold(True)
        self.headline.setFont(font)
        self.details = QLabel(self)
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(2)
        layout.addWidget(self.headline)
        layout.addWidget(self.details)
        self.setStyleSheet(_STYLE)  # once: switching level only re-polishes (cheap)
        self.clear()

    def clear(self) -> None:
        self.set_spec(BannerSpec(Level.INFO, tr(CTX, "No message selected")))

    def set_spec(self, spec: BannerSpec) -> None:
        self.spec = spec
        if self.property("level") != spec.level.name:
            self.setProperty("level", spec.level.name)
            for widget in (self, self.headline, self.details):
                widget.style().unpolish(widget)
                widget.style().polish(widget)
        self.headline.setText(spec.headline)
        self.details.setText("\n".join(f"• {d}" for d in spec.details))
        self.details.setVisible(bool(spec.details))
        self.setAccessibleDescription(spec.text)
        self.headline.setAccessibleName(spec.headline)

    @property
    def level(self) -> Level | None:
        return self.spec.level if self.spec else None

    @property
    def colour(self) -> str:
        return COLOURS[self.spec.level][1] if self.spec else ""
