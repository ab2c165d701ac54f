"""The composer: To/Cc/Bcc, subject, plain or rich text, attachments, drafts, protection, send.

Theory of operation
-------------------
Everything the window says about protection comes from the policy planner, through one
small adapter, :class:`Reachability` (it runs on the worker funnel, never on the GUI
thread):

* :meth:`Reachability.assess` builds nothing itself: it takes the RFC 5322 draft the
  window built and asks :meth:`Session.policy_plan` (the content scanner
  :func:`client.policy.scan.scan_text` over subject, body and attachments, then
  :func:`client.policy.plan.plan`) for a :class:`~client.policy.plan.Plan`. The window
  shows the plan's level and *why* (the rule, or the type of what the scanner found — never
  the value), and for each recipient how they will be reached.
* Typing in the subject or the body re-plans after 300 ms of quiet (one debounced funnel
  job); as soon as a plan carries a scanner finding the **PHI banner** appears ("This
  message contains a Social Security number; it will be encrypted").
* The protection control has three buttons, TLS → Signed → Encrypted, and **Raise
  protection** moves one step up with one click. The user's choice is only ever a floor:
  the planner keeps the policy's level when the choice is lower, and buttons below the
  policy's level are disabled.
* **Send** re-plans the exact bytes to send; if the plan holds (someone cannot be reached
  at the level required) nothing is sent and the fixes are listed. Otherwise
  :meth:`Session.send` queues and sends it (through the funnel) and the outcome is shown;
  a one-time envelope password the send result carries is shown once with a Copy button.

Around that: To, Cc and Bcc complete addresses from the address book
(:func:`client.outgoing.address_book`: contacts' keys, addresses seen in the cache); the
body is plain text, or rich text when "Rich text" is ticked (sent as nh3-sanitised HTML
with the plain text as alternative, :func:`client.outgoing.build_message`); files are
attached by dialog or by dropping them on the list. **Save draft** (Ctrl+S, and an
autosave while there are changes) goes through :meth:`Session.drafts_save` on the funnel:
a draft the plan protects is stored encrypted to your own key, and without one it is
refused and stays in this window only — nothing is ever written locally.

Coordination with the send path (client/services.py, being wired by the transport/policy
work): :func:`send_capabilities` is the one place that decides whether ``Session.send``
applies the policy and makes password envelopes; :func:`envelope_passwords_of` is the one
place that reads one-time passwords from a send result. Until ``Session.send`` applies the
policy, the composer refuses to send anything the plan wants above TLS (fail closed).

The user's preferences (Settings, :meth:`Session.preferences`) apply where the policy's
``user_may`` lets the user choose: the plan starts from the preferred default level when
the user picked none (never below the policy's minimum; it travels with the message as
the chosen level), and subject tags or password envelopes are off when the user turned
them off (:meth:`Session.policy_for_user`). When the recipients change, their domains'
MTA-STS policies are looked up off the GUI thread (:mod:`ui.tlsrefresh`) and the message is
planned again, so a domain that enforces MTA-STS shows it as its reason.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import getaddresses, parseaddr
from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QFont,
    QGuiApplication,
    QKeySequence,
    QShortcut,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from client.drafts import DraftNeedsOwnKey, SavedDraft
from client.errors import SealmailError
from client.outgoing import DraftFields, address_book, build_message, parse_draft
from client.policy.levels import Level
from client.policy.orgpolicy import OrgPolicy
from client.policy.plan import Fix, Plan, Reason, RecipientPlan
from client.services import Session
from ui.banner import BannerSpec, SecurityBanner
from ui.banner import Level as BannerLevel
from ui.completion import AddressCompleter, address_model
from ui.fileopen import open_files, read_files
from ui.i18n import tr
from ui.reader import human_size
from ui.tlsrefresh import StsRefresher
from ui.workers import Funnel

if TYPE_CHECKING:
    from client.transport.tlsknowledge import StsSources

__all__ = [
    "LEVELS",
    "Assessment",
    "ComposerWindow",
    "EnvelopePassword",
    "Reachability",
    "SendCapabilities",
    "SendOutcome",
    "envelope_passwords_of",
    "finding_words",
    "send_capabilities",
]

CTX = "Composer"
#: The three steps of the protection control (the planner's own levels, weakest first).
LEVELS: tuple[Level, ...] = (Level.TLS, Level.SIGNED, Level.ENCRYPTED)

# finding types in plain words (never the value)
_FINDINGS: dict[str, str] = {
    "us-ssn": "a Social Security number",
    "credit-card": "a credit card number",
    "aba-routing": "a bank routing number",
    "ndc": "a drug code (NDC)",
    "icd-9-cm": "a diagnosis code (ICD-9)",
    "icd-10-cm": "a diagnosis code (ICD-10)",
    "cpt": "a procedure code (CPT)",
    "hcpcs": "a medical supply code (HCPCS)",
}


def finding_words(kind: str) -> str:
    return tr(CTX, _FINDINGS.get(kind, "sensitive data ({kind})")).format(kind=kind)


def level_words(level: Level) -> str:
    return {
        Level.TLS: tr(CTX, "TLS only"),
        Level.TLS_REQUIRED: tr(CTX, "TLS on every hop"),
        Level.SIGNED: tr(CTX, "Signed"),
        Level.ENCRYPTED: tr(CTX, "Encrypted"),
        Level.ENCRYPTED_SIGNED: tr(CTX, "Encrypted and signed"),
    }[level]


def _will_be(level: Level) -> str:
    return {
        Level.TLS: tr(CTX, "it will be sent over TLS"),
        Level.TLS_REQUIRED: tr(CTX, "it will travel over TLS on every hop"),
        Level.SIGNED: tr(CTX, "it will be signed"),
        Level.ENCRYPTED: tr(CTX, "it will be encrypted"),
        Level.ENCRYPTED_SIGNED: tr(CTX, "it will be encrypted and signed"),
    }[level]


def _join(words: Sequence[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return tr(CTX, "{first} and {last}").format(first=", ".join(words[:-1]), last=words[-1])


def reason_words(r: Reason) -> str:
    """One reason of the plan in plain words (the type of a finding, never its value)."""
    if r.rule == "finding":
        return tr(CTX, "the message contains {what}").format(what=finding_words(r.type or ""))
    if r.rule == "minimum-level":
        return tr(CTX, "the organisation's minimum")
    if r.rule == "user-level":
        return tr(CTX, "you raised it")
    if r.rule == "user-level-ignored":
        return tr(CTX, "your lower choice was ignored: {detail}").format(detail=r.detail)
    if r.rule == "subject-tag":
        return tr(CTX, "the subject carries {tags}").format(tags=r.detail)
    if r.rule == "unreadable":
        return tr(CTX, "an attachment could not be scanned")
    return r.detail or r.rule


_METHODS = {"smime": "S/MIME", "pgp": "OpenPGP"}


def recipient_words(rp: RecipientPlan, *, envelopes: bool = True) -> str:
    a = rp.address
    if rp.method is None and not envelopes:  # do not suggest what the policy forbids
        return tr(CTX, "{address}: cannot be reached securely — import their key").format(address=a)
    if rp.method is None:
        return tr(
            CTX, "{address}: cannot be reached securely — import a key or use an envelope"
        ).format(address=a)
    if rp.method == "envelope":
        return tr(CTX, "{address}: password envelope").format(address=a)
    if rp.method == "tls":
        return tr(CTX, "{address}: TLS to your mail server only (not end-to-end)").format(address=a)
    if rp.method == "tls-required":  # why: partner list, internal domain, MTA-STS enforce
        return tr(CTX, "{address}: TLS on every hop ({why})").format(address=a, why=rp.why)
    method = _METHODS.get(rp.method, rp.method)
    if rp.level.encrypts:
        return tr(CTX, "{address}: {method}").format(address=a, method=method)
    return tr(CTX, "{address}: signed with {method}, readable on the way").format(
        address=a, method=method
    )


def fix_words(f: Fix) -> str:
    return {
        "import-key": tr(CTX, "Import {who}'s certificate or OpenPGP key (Keys and certificates)"),
        "use-envelope": tr(CTX, "Send {who} a password envelope instead"),
        "remove-recipient": tr(CTX, "Remove {who} from the recipients"),
        "create-own-key": tr(CTX, "Create or import your own signing key"),
    }[f.action].format(who=f.recipient)


# --------------------------------------------------------------------- the send-path seam


class NotBuilt(Exception):
    """The fields do not make a message (a bad address, a line break in the subject...)."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class SendCapabilities:
    applies_policy: bool  # Session.send protects the message as the plan says
    makes_envelopes: bool  # Session.send creates password envelopes for keyless recipients
    takes_level: bool  # Session.send accepts the user's level (``level=``)


def send_capabilities(session: Session) -> SendCapabilities:
    """HOOK — what ``Session.send`` does today (read from client/services.py as it evolves).

    ``Session.send`` applies the policy when it takes the user's ``level`` or when the
    outbox's policy hook is no longer the transport-only placeholder. It makes password
    envelopes when the session says so (``send_makes_envelopes``) or when the hook in
    force is the session's own ``protection_policy`` (scan, plan, protect, envelopes).
    """
    from client.transport import outbox

    params = inspect.signature(session.send).parameters
    takes_level = "level" in params
    placeholder = getattr(outbox, "transport_only_policy", None)
    applies = takes_level or (placeholder is not None and session.policy_hook is not placeholder)
    own = getattr(session, "protection_policy", None)
    envelopes = bool(getattr(session, "send_makes_envelopes", False)) or (
        own is not None and session.policy_hook == own
    )
    return SendCapabilities(applies, applies and envelopes, takes_level)


@dataclass(frozen=True)
class EnvelopePassword:
    address: str
    password: str
    new: bool = True  # False: the password they were given before is used again


def envelope_passwords_of(result: object) -> list[EnvelopePassword]:
    """HOOK — the envelope passwords a send result carries (``result.envelope_passwords``).

    Accepts the send path's list of ``{"recipient", "password", "new"}`` records, or a
    mapping address → password; an empty list when the result carries none.
    """
    found = getattr(result, "envelope_passwords", None)
    if not found:
        return []
    out: list[EnvelopePassword] = []
    records = (
        [{"recipient": a, "password": p} for a, p in found.items()]
        if isinstance(found, Mapping)
        else list(found)
    )
    for rec in records:
        password = rec.get("password", "")
        if isinstance(password, bytes):
            password = password.decode("utf-8")
        out.append(
            EnvelopePassword(
                str(rec.get("recipient", "")), str(password), bool(rec.get("new", True))
            )
        )
    return out


@dataclass(frozen=True)
class Assessment:
    plan: Plan
    policy: str  # the organisation policy's name
    envelopes_available: bool
    #: the user's default level (Settings) the plan started from, when the user chose none
    default_level: Level | None = None

    @property
    def findings(self) -> tuple[str, ...]:
        """Finding types that decided the level (each once, in order)."""
        out: list[str] = []
        for r in self.plan.reasons:
            if r.rule == "finding" and r.type and r.type not in out:
                out.append(r.type)
        return tuple(out)

    @property
    def unreadable(self) -> bool:
        return any(r.rule == "unreadable" for r in self.plan.reasons)

    @property
    def floor(self) -> Level:
        """The level the policy and the content demand (without the user's choice)."""
        level = Level.TLS
        for r in self.plan.reasons:
            if r.rule not in ("user-level", "user-level-ignored"):
                level = level.raise_to(r.level)
        return level


@dataclass(frozen=True)
class SendOutcome:
    assessment: Assessment
    entry: object | None = None  # the outbox record (client.transport.outbox.Entry)
    refused: str | None = None  # why nothing was sent
    passwords: tuple[EnvelopePassword, ...] = ()

    @property
    def sent(self) -> bool:
        return self.entry is not None


class Reachability:
    """The one adapter between the composer and the services: policy, planner, send."""

    def __init__(
        self,
        session: Session,
        *,
        org_policy: OrgPolicy | None = None,
        capabilities: Callable[[Session], SendCapabilities] = send_capabilities,
    ) -> None:
        self.session = session
        self._policy = org_policy
        self._capabilities = capabilities

    def organisation_policy(self) -> OrgPolicy:
        """The organisation's policy as IT set it (no user preference applied)."""
        if self._policy is not None:
            return self._policy
        current = getattr(self.session, "current_org_policy", None)
        if current is not None:  # the very policy Session.send will apply
            policy: OrgPolicy = current()
            return policy
        from client.store.policyfile import load_org_policy

        return load_org_policy()  # the managed file (or the defaults); errors are shown

    def policy(self) -> OrgPolicy:
        """The policy with the user's preferences applied where ``user_may`` allows."""
        return self.session.policy_for_user(self.organisation_policy())

    def assess(self, raw: bytes, user_level: Level | None, *, now: datetime) -> Assessment:
        policy = self.policy()
        caps = self._capabilities(self.session)
        if policy.envelopes_allowed and not caps.makes_envelopes:
            # promise no envelope the send path cannot make: the planner then holds such a
            # recipient and offers the other fixes (import a key, remove the recipient)
            policy = replace(policy, password_envelopes=False)
        default = None
        if user_level is None:  # the user's default (Settings): a floor above the minimum
            default = user_level = self.session.preferred_level(policy)
        p = self.session.policy_plan(raw, policy, level=user_level, now=now)
        return Assessment(p, policy.name, policy.envelopes_allowed, default)

    def send(
        self, raw: bytes, user_level: Level | None, *, account: str | None, now: datetime
    ) -> SendOutcome:
        assessment = self.assess(raw, user_level, now=now)
        if assessment.plan.hold:
            return SendOutcome(assessment, refused="hold")
        caps = self._capabilities(self.session)
        if assessment.plan.level > Level.TLS and not caps.applies_policy:
            return SendOutcome(
                assessment,
                refused=tr(
                    CTX,
                    "this version cannot yet protect outgoing mail as the policy requires "
                    "({level}); nothing was sent",
                ).format(level=level_words(assessment.plan.level)),
            )
        kwargs: dict[str, Any] = {"email": account}
        level = user_level or assessment.default_level
        if caps.takes_level and level is not None:
            kwargs["level"] = level
        entry = self.session.send(raw, **kwargs)
        return SendOutcome(assessment, entry=entry, passwords=tuple(envelope_passwords_of(entry)))


# --------------------------------------------------------------------------- the window


class _DropList(QListWidget):
    dropped = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dragMoveEvent(self, event: Any) -> None:
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        event.acceptProposedAction()
        self.dropped.emit(paths)


class ComposerWindow(QWidget):
    plan_updated = Signal(object)  # Assessment
    tls_refreshed = Signal(list)  # domains with an MTA-STS record after a look-up
    send_done = Signal(object)  # SendOutcome or exception
    draft_saved = Signal(object)  # SavedDraft or exception
    draft_loaded = Signal(object)  # DraftFields or exception
    addresses_loaded = Signal(list)

    #: autosave interval (ms) while there are unsaved changes
    AUTOSAVE_MS = 120_000

    def __init__(
        self,
        session: Session,
        funnel: Funnel,
        *,
        sender: str = "",
        org_policy: OrgPolicy | None = None,
        adapter: Reachability | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sts_sources: StsSources | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.funnel = funnel
        #: MTA-STS look-ups (network) run here, never in the way of planning or sending
        self.lookups = Funnel(self)
        self.sts = StsRefresher(session, sources=sts_sources)
        self.clock = clock
        self.adapter = adapter or Reachability(session, org_policy=org_policy)
        self.assessment: Assessment | None = None
        self.user_level: Level | None = None
        self.files: list[tuple[str, bytes]] = []
        self._generation = 0
        #: the id of this draft on the server (set by the first save or by open_draft)
        self.draft_id: str | None = None
        self.dirty = False
        self._autosave_refused = False
        self.setWindowTitle(tr(CTX, "New message — Sealmail"))
        self.setAccessibleName(tr(CTX, "Message composer"))
        self.sender = QLineEdit(sender, self)
        self.sender.setAccessibleName(tr(CTX, "From"))
        self.to = QLineEdit(self)
        self.to.setAccessibleName(tr(CTX, "To"))
        self.to.setPlaceholderText(tr(CTX, "name@example.org, …"))
        self.cc = QLineEdit(self)
        self.cc.setAccessibleName(tr(CTX, "Cc"))
        self.bcc = QLineEdit(self)
        self.bcc.setAccessibleName(tr(CTX, "Bcc"))
        self.bcc.setToolTip(tr(CTX, "Blind copies: nobody sees these addresses"))
        self.addresses = address_model()
        self.completers = [
            AddressCompleter(e, self.addresses) for e in (self.to, self.cc, self.bcc)
        ]
        self.subject = QLineEdit(self)
        self.subject.setAccessibleName(tr(CTX, "Subject"))
        self.body = QTextEdit(self)
        self.body.setAccessibleName(tr(CTX, "Message text"))
        self.body.setAcceptRichText(False)
        self.rich = QCheckBox(tr(CTX, "Rich text"), self)
        self.rich.setAccessibleName(tr(CTX, "Write rich text (HTML with a plain-text copy)"))
        self.rich.toggled.connect(self._set_rich)
        self.format_buttons: list[QPushButton] = []
        for text, name, key, slot in (
            ("B", tr(CTX, "Bold"), "Ctrl+B", self._bold),
            ("I", tr(CTX, "Italic"), "Ctrl+I", self._italic),
            ("U", tr(CTX, "Underline"), "Ctrl+U", self._underline),
        ):
            button = QPushButton(text, self)
            button.setAccessibleName(name)
            button.setToolTip(f"{name} ({key})")
            button.setShortcut(QKeySequence(key))
            button.setFixedWidth(28)
            button.clicked.connect(slot)
            button.setEnabled(False)
            self.format_buttons.append(button)
        self.save_button = QPushButton(tr(CTX, "Save draft"), self)
        self.save_button.setAccessibleName(tr(CTX, "Save the draft (Ctrl+S)"))
        self.save_button.setToolTip(tr(CTX, "Save draft (Ctrl+S)"))
        self.save_button.clicked.connect(lambda: self.save_draft())
        self.save_shortcut = QShortcut(QKeySequence.StandardKey.Save, self)
        self.save_shortcut.activated.connect(lambda: self.save_draft())
        self.attachments = _DropList(self)
        self.attachments.setAccessibleName(tr(CTX, "Attachments"))
        self.attachments.setMaximumHeight(60)
        self.attachments.dropped.connect(self.add_files)
        attach = QPushButton(tr(CTX, "Attach…"), self)
        attach.setAccessibleName(tr(CTX, "Attach files"))
        attach.clicked.connect(self._attach_dialog)
        self.remove_attachment = QPushButton(tr(CTX, "Remove"), self)
        self.remove_attachment.setAccessibleName(tr(CTX, "Remove the selected attachment"))
        self.remove_attachment.clicked.connect(self._remove_attachment)
        self.remove_attachment.setEnabled(False)
        self.attachments.currentRowChanged.connect(
            lambda row: self.remove_attachment.setEnabled(row >= 0)
        )

        # the protection control: the level the policy chose, raised with one click
        self.level_group = QButtonGroup(self)
        self.level_group.setExclusive(True)
        levels = QHBoxLayout()
        levels.addWidget(QLabel(tr(CTX, "Protection:"), self))
        self.level_buttons: dict[Level, QRadioButton] = {}
        for i, level in enumerate(LEVELS):
            text = level_words(level) if level is not Level.TLS else tr(CTX, "TLS")
            button = QRadioButton(text, self)
            button.setAccessibleName(tr(CTX, "Protection level {text}").format(text=text))
            self.level_group.addButton(button, i)
            self.level_buttons[level] = button
            levels.addWidget(button)
        self.level_group.idClicked.connect(lambda i: self.choose_level(LEVELS[i]))
        self.raise_button = QPushButton(tr(CTX, "Raise protection"), self)
        self.raise_button.setAccessibleName(tr(CTX, "Raise protection one level"))
        self.raise_button.clicked.connect(self.raise_level)
        levels.addWidget(self.raise_button)
        levels.addStretch(1)
        levels.addWidget(self.save_button)
        self.send_button = QPushButton(tr(CTX, "Send"), self)
        self.send_button.setAccessibleName(tr(CTX, "Send the message"))
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self.send)
        levels.addWidget(self.send_button)

        self.why = QLabel(self)
        self.why.setWordWrap(True)
        self.why.setAccessibleName(tr(CTX, "Why this protection level"))
        self.phi_banner = SecurityBanner(self)
        self.phi_banner.setAccessibleName(tr(CTX, "Sensitive content banner"))
        self.phi_banner.hide()
        self.reach_list = QListWidget(self)
        self.reach_list.setAccessibleName(tr(CTX, "How each recipient will be reached"))
        self.reach_list.setFixedHeight(26)
        self.result = SecurityBanner(self)
        self.result.setAccessibleName(tr(CTX, "Send result"))
        self.result.hide()
        self.password_row = QWidget(self)
        prow = QHBoxLayout(self.password_row)
        prow.setContentsMargins(0, 0, 0, 0)
        self.password_label = QLabel(self.password_row)
        self.password_field = QLineEdit(self.password_row)
        self.password_field.setReadOnly(True)
        self.password_field.setAccessibleName(tr(CTX, "One-time envelope password"))
        self.copy_button = QPushButton(tr(CTX, "Copy"), self.password_row)
        self.copy_button.setAccessibleName(tr(CTX, "Copy the envelope password"))
        self.copy_button.clicked.connect(self.copy_password)
        prow.addWidget(self.password_label)
        prow.addWidget(self.password_field, 1)
        prow.addWidget(self.copy_button)
        self.password_row.hide()

        form = QFormLayout()
        form.addRow(tr(CTX, "From:"), self.sender)
        form.addRow(tr(CTX, "To:"), self.to)
        form.addRow(tr(CTX, "Cc:"), self.cc)
        form.addRow(tr(CTX, "Bcc:"), self.bcc)
        form.addRow(tr(CTX, "Subject:"), self.subject)
        files_row = QHBoxLayout()
        files_row.addWidget(QLabel(tr(CTX, "Attachments\n(drop files here):"), self))
        files_row.addWidget(self.attachments, 1)
        files_row.addWidget(attach)
        files_row.addWidget(self.remove_attachment)
        format_row = QHBoxLayout()
        format_row.addWidget(self.rich)
        for button in self.format_buttons:
            format_row.addWidget(button)
        format_row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(levels)
        layout.addWidget(self.why)
        layout.addWidget(self.phi_banner)
        layout.addWidget(self.reach_list)
        layout.addWidget(self.result)
        layout.addWidget(self.password_row)
        layout.addLayout(format_row)
        layout.addWidget(self.body, 1)
        layout.addLayout(files_row)
        self.resize(860, 680)

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(300)
        self._debounce.timeout.connect(self.update_plan)
        self._sts_timer = QTimer(self)
        self._sts_timer.setSingleShot(True)
        self._sts_timer.setInterval(800)
        self._sts_timer.timeout.connect(self.refresh_tls)
        for edit in (self.to, self.cc, self.bcc):
            edit.textChanged.connect(lambda _t: self._sts_timer.start())
        for edit in (self.to, self.cc, self.bcc, self.subject, self.sender):
            edit.textChanged.connect(lambda _t: self._edited())
        self.body.textChanged.connect(self._edited)
        self._autosave = QTimer(self)
        self._autosave.setInterval(self.AUTOSAVE_MS)
        self._autosave.timeout.connect(self.autosave)
        self._autosave.start()
        self.load_addresses()
        self._show_level(Level.TLS, Level.TLS)
        self.why.setText(tr(CTX, "Checking the protection policy…"))

    # -- the protection level
    @property
    def level(self) -> Level:
        """The level the last plan chose (what will be applied)."""
        return self.assessment.plan.level if self.assessment else (self.user_level or Level.TLS)

    def choose_level(self, level: Level) -> None:
        self.user_level = level
        self.update_plan()

    def raise_level(self) -> None:
        current = self.level
        for level in LEVELS:
            if level > current:
                self.choose_level(level)
                return

    def _show_level(self, level: Level, floor: Level) -> None:
        shown = max((lv for lv in LEVELS if lv <= level), key=lambda lv: lv.rank)
        for lv, button in self.level_buttons.items():
            button.setEnabled(lv >= floor or lv == shown)
            button.setChecked(lv == shown)
            if lv < floor:
                button.setToolTip(tr(CTX, "The policy does not allow less for this message"))
            else:
                button.setToolTip("")
        self.raise_button.setEnabled(level < LEVELS[-1])

    def _edited(self) -> None:
        self.dirty = True
        self._debounce.start()

    # -- address completion
    def load_addresses(self) -> None:
        session, account = self.session, parseaddr(self.sender.text())[1] or None

        def loaded(found: list[str]) -> None:
            self.addresses.setStringList(found)
            self.addresses_loaded.emit(found)

        self.funnel.submit(
            "address-book",
            lambda: address_book(session, account),
            on_success=loaded,
            on_failure=lambda _exc: None,  # completion is a convenience: no error box
            owner=self,
        )

    # -- rich or plain text
    def _set_rich(self, on: bool) -> None:
        self.body.setAcceptRichText(on)
        for button in self.format_buttons:
            button.setEnabled(on)
        if not on and self.body.toPlainText() and self.body.toHtml() != self._plain_html():
            text = self.body.toPlainText()
            self.body.setPlainText(text)  # formatting dropped, text kept
        self._edited()

    def _plain_html(self) -> str:
        probe = QTextEdit()
        probe.setPlainText(self.body.toPlainText())
        return probe.toHtml()

    def _merge(self, apply: Callable[[Any], None]) -> None:
        fmt = self.body.currentCharFormat()
        apply(fmt)
        self.body.mergeCurrentCharFormat(fmt)
        self.body.setFocus()

    def _bold(self) -> None:
        heavy = self.body.fontWeight() < QFont.Weight.Bold
        self._merge(lambda f: f.setFontWeight(QFont.Weight.Bold if heavy else QFont.Weight.Normal))

    def _italic(self) -> None:
        on = not self.body.fontItalic()
        self._merge(lambda f: f.setFontItalic(on))

    def _underline(self) -> None:
        on = not self.body.fontUnderline()
        self._merge(lambda f: f.setFontUnderline(on))

    # -- building
    def _addresses(self, edit: QLineEdit) -> list[str]:
        return [a for _, a in getaddresses([edit.text()]) if a]

    def recipients(self) -> list[str]:
        return [a for e in (self.to, self.cc, self.bcc) for a in self._addresses(e)]

    def add_files(self, paths: Sequence[str]) -> None:
        read_files(self.funnel, paths, self._attached, self._attach_failed)

    def _attached(self, name: str, data: bytes) -> None:
        self.files.append((name, data))
        self.attachments.addItem(f"{name} ({human_size(len(data))})")
        self.attachments.item(self.attachments.count() - 1).setToolTip(name)
        self.dirty = True
        self.update_plan()

    def _attach_failed(self, exc: BaseException) -> None:
        self._show_result(
            BannerLevel.BAD, tr(CTX, "The file could not be attached: {what}").format(what=exc), ()
        )

    def _attach_dialog(self) -> None:
        open_files(self, self.funnel, tr(CTX, "Attach files"), self._attached, self._attach_failed)

    def _remove_attachment(self) -> None:
        row = self.attachments.currentRow()
        if 0 <= row < len(self.files):
            del self.files[row]
            self.attachments.takeItem(row)
            self._edited()

    def builder(self) -> Callable[[], bytes]:
        """What the fields hold now, as a function that builds the message.

        The fields are read here, on the GUI thread (cheap); the building (MIME and base64
        of the attachments: 1.3 s for 25 MB) is left to whoever calls the function, which is
        always a worker of the funnel (issue 8: the GUI thread never stalls > 50 ms).
        """
        make = partial(
            build_message,
            sender=self.sender.text().strip(),
            to=self._addresses(self.to),
            cc=self._addresses(self.cc),
            bcc=self._addresses(self.bcc),
            subject=self.subject.text(),
            text=self.body.toPlainText() + "\n",
            html=self.body.toHtml() if self.rich.isChecked() else None,
            date=self.clock(),
            attachments=[(n, "application/octet-stream", d) for n, d in self.files],
        )

        def build() -> bytes:
            try:
                return make()
            except (ValueError, SealmailError) as exc:
                raise NotBuilt(exc) from exc

        return build

    def build(self) -> bytes:
        """The message as it stands, built here (tests; the app builds in a worker)."""
        return self.builder()()

    # -- drafts (client.drafts through Session; encrypted to your own key when protected)
    def save_draft(self, *, auto: bool = False) -> None:
        """Save this draft on the server (off the GUI thread); a new version replaces the
        old one. A protected draft without an own key is refused and kept here only."""
        build = self.builder()
        chosen = self.user_level or (self.assessment.default_level if self.assessment else None)
        level_line = f"X-Sealmail-Level: {chosen.value}\r\n".encode() if chosen else b""
        session, did = self.session, self.draft_id
        account = parseaddr(self.sender.text())[1] or None
        self.dirty = False
        self.save_button.setEnabled(False)

        def done(value: Any) -> None:
            self.save_button.setEnabled(True)
            if isinstance(value, NotBuilt):
                self.dirty = True
                if not auto:
                    self._show_result(BannerLevel.BAD, str(value.error), ())
                self.draft_saved.emit(value.error)
                return
            if isinstance(value, SavedDraft):
                self.draft_id = value.draft_id
                self._autosave_refused = False
                how = (
                    tr(CTX, "encrypted to your own key")
                    if value.encrypted
                    else tr(CTX, "not encrypted: nothing in it needs protection")
                )
                self._show_result(
                    BannerLevel.INFO,
                    tr(CTX, "Draft saved in {folder} ({how}).").format(
                        folder=value.folder, how=how
                    ),
                    (),
                )
            else:
                self.dirty = True
                if auto and isinstance(value, DraftNeedsOwnKey):
                    if self._autosave_refused:
                        self.draft_saved.emit(value)
                        return
                    self._autosave_refused = True
                hint = getattr(value, "hint", "")
                self._show_result(
                    BannerLevel.WARN if isinstance(value, DraftNeedsOwnKey) else BannerLevel.BAD,
                    tr(CTX, "Draft not saved on the server: {what}").format(what=value),
                    (hint,) if hint else (),
                )
            self.draft_saved.emit(value)

        self.funnel.submit(
            "save-draft",
            lambda: session.drafts_save(level_line + build(), email=account, draft_id=did),
            on_success=done,
            on_failure=done,
        )

    def autosave(self) -> None:
        """Timer: save when something changed and there is something to save."""
        if self.dirty and (self.body.toPlainText().strip() or self.subject.text().strip()):
            self.save_draft(auto=True)

    def open_draft(self, draft_id: str) -> None:
        """Load a draft from the server into this window (decrypted in memory)."""
        session, account = self.session, parseaddr(self.sender.text())[1] or None

        def done(value: Any) -> None:
            if isinstance(value, DraftFields):
                self.load_fields(value)
                self.draft_id = draft_id
                self.dirty = False
            else:
                hint = getattr(value, "hint", "")
                self._show_result(
                    BannerLevel.BAD,
                    tr(CTX, "The draft could not be opened: {what}").format(what=value),
                    (hint,) if hint else (),
                )
            self.draft_loaded.emit(value)

        self.funnel.submit(
            "open-draft",
            lambda: parse_draft(session.drafts_open(draft_id, email=account)),
            on_success=done,
            on_failure=done,
        )

    def load_fields(self, d: DraftFields) -> None:
        if d.sender:
            self.sender.setText(d.sender)
        self.to.setText(d.to)
        self.cc.setText(d.cc)
        self.bcc.setText(d.bcc)
        self.subject.setText(d.subject)
        self.rich.setChecked(d.html is not None)
        if d.html is not None:
            self.body.setHtml(d.html)
        else:
            self.body.setPlainText(d.text)
        self.files = list(d.attachments)
        self.attachments.clear()
        for name, data in self.files:
            self.attachments.addItem(f"{name} ({human_size(len(data))})")
        self.user_level = next((lv for lv in Level if lv.value == d.level), None)
        self.update_plan()

    def _forget_draft(self) -> None:
        """After a send: the draft on the server is no longer needed."""
        did, session = self.draft_id, self.session
        account = parseaddr(self.sender.text())[1] or None
        if did is None:
            return
        self.draft_id = None
        self.dirty = False
        self.funnel.submit(
            "save-draft",
            lambda: session.drafts_delete(did, email=account),
            on_failure=lambda _exc: None,  # a stale draft is harmless; it stays visible
        )

    # -- MTA-STS of the recipients' domains (ui.tlsrefresh), then plan again
    def refresh_tls(self) -> None:
        self._sts_timer.stop()
        recipients, adapter, sts, now = self.recipients(), self.adapter, self.sts, self.clock()
        if not recipients:
            return

        def work() -> list[str]:
            policy = adapter.policy()
            default = adapter.session.preferred_level(policy)
            return sts.refresh(recipients, policy, now=now, default=default)

        def done(found: Any) -> None:
            if isinstance(found, BaseException):
                found = []
            if found:
                self.update_plan()
            self.tls_refreshed.emit(list(found))

        self.lookups.submit("tls-refresh", work, on_success=done, on_failure=done, owner=self)

    # -- planning (scanner + planner, on the funnel)
    def update_plan(self) -> None:
        self._debounce.stop()
        self.result.hide()  # an old send result no longer describes the edited message
        build = self.builder()
        self._generation += 1
        generation, level, now, adapter = (
            self._generation,
            self.user_level,
            self.clock(),
            self.adapter,
        )

        def done(value: Any) -> None:
            if generation != self._generation:  # a newer plan is on its way
                return
            if isinstance(value, NotBuilt):
                self.why.setText(str(value.error))
                return
            if isinstance(value, BaseException):
                hint = getattr(value, "hint", "")
                self.why.setText(
                    tr(CTX, "The protection policy could not be applied: {what} {hint}").format(
                        what=value, hint=hint
                    )
                )
                self.send_button.setEnabled(False)
                return
            self._show_assessment(value)

        self.funnel.submit(
            "protection-plan",
            lambda: adapter.assess(build(), level, now=now),
            on_success=done,
            on_failure=done,
            owner=self,  # a plan for a closed composer is of no use
        )

    def _show_assessment(self, a: Assessment) -> None:
        self.assessment = a
        p = a.plan
        self._show_level(p.level, a.floor)
        top = [r for r in p.reasons if r.level == p.level] or list(p.reasons)
        words = [
            tr(CTX, "your default protection (Settings)")
            if r.rule == "user-level" and a.default_level is not None
            else reason_words(r)
            for r in top
        ]
        why = _join(list(dict.fromkeys(words)))
        self.why.setText(
            tr(CTX, "{level} — because {why}.").format(level=level_words(p.level), why=why)
        )
        self.why.setToolTip(tr(CTX, "Policy: {name}").format(name=a.policy))
        # the PHI banner: the type of what the scanner found, never the value
        things = [finding_words(t) for t in a.findings]
        if a.unreadable:
            things.append(tr(CTX, "an attachment that could not be scanned"))
        if things:
            self.phi_banner.set_spec(
                BannerSpec(
                    BannerLevel.WARN,
                    tr(CTX, "This message contains {things}; {outcome}.").format(
                        things=_join(things), outcome=_will_be(p.level)
                    ),
                )
            )
            self.phi_banner.show()
        else:
            self.phi_banner.hide()
        self.reach_list.clear()
        for rp in p.recipients:
            item = QListWidgetItem(recipient_words(rp, envelopes=a.envelopes_available))
            item.setToolTip(rp.why)
            if rp.method is None:
                colour = "#a1130f"
            elif rp.level.encrypts:
                colour = "#1b6e2d"
            else:
                colour = "#34506e"
            item.setForeground(QColor(colour))
            self.reach_list.addItem(item)
        # as tall as its rows (up to four), no empty box under one recipient
        rows = max(1, min(4, self.reach_list.count()))
        row_height = self.reach_list.sizeHintForRow(0) if self.reach_list.count() else 18
        self.reach_list.setFixedHeight(rows * row_height + 2 * self.reach_list.frameWidth() + 4)
        self.send_button.setEnabled(True)
        self.plan_updated.emit(a)

    # -- sending
    def send(self) -> None:
        build = self.builder()
        level, now, adapter = self.user_level, self.clock(), self.adapter
        account = parseaddr(self.sender.text())[1] or None
        self.send_button.setEnabled(False)
        self._show_result(BannerLevel.INFO, tr(CTX, "Sending…"), ())

        def done(value: Any) -> None:
            self.send_button.setEnabled(True)
            if isinstance(value, NotBuilt):
                self._show_result(BannerLevel.BAD, str(value.error), ())
                self.send_done.emit(value.error)
                return
            if isinstance(value, BaseException):
                hint = getattr(value, "hint", "")
                self._show_result(
                    BannerLevel.BAD,
                    tr(CTX, "Not sent: {what}").format(what=value),
                    (hint,) if hint else (),
                )
            else:
                self._show_sent(value)
                state = getattr(getattr(value.entry, "state", None), "value", "")
                if state in ("sent", "copied", "done"):
                    self._forget_draft()
            self.send_done.emit(value)

        self.funnel.submit(
            "send",
            lambda: adapter.send(build(), level, account=account, now=now),
            on_success=done,
            on_failure=done,
        )

    def _show_result(self, level: BannerLevel, headline: str, details: Sequence[str]) -> None:
        self.result.set_spec(BannerSpec(level, headline, tuple(details)))
        self.result.show()

    def _show_sent(self, out: SendOutcome) -> None:
        self._show_assessment(out.assessment)
        p = out.assessment.plan
        if out.refused == "hold":
            blocked = [r for r in p.recipients if r.method is None]
            who = ", ".join(r.address for r in blocked) or tr(CTX, "no recipients")
            fixes = [fix_words(f) for f in p.fixes]
            if not p.recipients:
                fixes = [tr(CTX, "Add at least one recipient")]
            self._show_result(
                BannerLevel.BAD,
                tr(
                    CTX, "Not sent: {who} cannot be reached at the level required ({level})."
                ).format(who=who, level=level_words(p.level)),
                [tr(CTX, "To fix: {fix}").format(fix=f) for f in dict.fromkeys(fixes)],
            )
            return
        if out.refused:
            self._show_result(
                BannerLevel.BAD, tr(CTX, "Not sent: {why}").format(why=out.refused), ()
            )
            return
        state = getattr(getattr(out.entry, "state", None), "value", "")
        reason = getattr(out.entry, "reason", None)
        hold = getattr(out.entry, "hold", None)
        if state == "held":
            fixes = []
            for f in (hold or {}).get("fixes", []) if isinstance(hold, Mapping) else []:
                try:
                    fixes.append(fix_words(Fix(f["action"], f["recipient"], f.get("detail", ""))))
                except (KeyError, TypeError):
                    continue
            self._show_result(
                BannerLevel.BAD,
                tr(CTX, "Held in the outbox, nothing was sent: {why}").format(why=reason or "?"),
                [tr(CTX, "To fix: {fix}").format(fix=f) for f in fixes],
            )
            return
        if state in ("sent", "copied", "done"):
            self._show_result(
                BannerLevel.VERIFIED,
                tr(CTX, "Sent ({level}).").format(level=level_words(p.level)),
                (),
            )
        else:
            self._show_result(
                BannerLevel.WARN,
                tr(CTX, "In the outbox ({state}).").format(state=state or "?"),
                (reason,) if reason else (),
            )
        if out.passwords:
            self.show_passwords(out.passwords)

    def show_passwords(self, passwords: Sequence[EnvelopePassword]) -> None:
        """Show new envelope passwords once, with a Copy button (reused ones: a note)."""
        new = [p for p in passwords if p.new]
        reused = [p.address for p in passwords if not p.new]
        if reused and self.result.spec is not None:
            note = tr(CTX, "The envelope for {who} uses the password you gave them before.")
            spec = self.result.spec
            self.result.set_spec(
                BannerSpec(
                    spec.level, spec.headline, (*spec.details, note.format(who=", ".join(reused)))
                )
            )
        if not new:
            self.password_row.hide()
            return
        who = ", ".join(p.address for p in new)
        values = list(dict.fromkeys(p.password for p in new))
        self.password_label.setText(
            tr(CTX, "Envelope password for {who} (shown once — tell them by phone):").format(
                who=who
            )
        )
        self.password_field.setText(values[0] if len(values) == 1 else "  |  ".join(values))
        self.password_field.setCursorPosition(0)
        self.password_row.show()

    def copy_password(self) -> None:
        QGuiApplication.clipboard().setText(self.password_field.text())
