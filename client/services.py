"""One service layer for the ``sealmail`` CLI and the Qt app.

Theory of operation
-------------------
A :class:`Session` owns an open :class:`keystore.store.Keystore` for one profile and offers
the operations users ask for — manage keys, protect a message, open a message — as plain
method calls that take ``now`` (and ``rng`` where randomness shapes output). The CLI and
the UI never reach below this layer. :class:`KeystoreAccess` adapts the keystore to the
:class:`client.crypto.keys.KeyAccess` protocol the crypto recipes expect.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cryptography import x509

from client.crypto.keys import CertCheck, PgpCertFacts, SmimeIdentity
from client.crypto.recipes import open_raw, protect
from client.envelope import passwords as env_passwords
from client.envelope.output import save_files
from client.errors import BadPassword, NotEncrypted, NotSigned, UsageError
from client.mime.parse import OpenedMessage
from keystore import openpgp as kpgp
from keystore.discovery import (
    AddressStatus,
    AutocryptOutcome,
    DiscoveryResult,
    address_status,
    discover_wkd,
    harvest_smime,
    process_autocrypt,
)
from keystore.store import KeyInfo, Keystore

if TYPE_CHECKING:
    from client.crypto.streamopen import StreamedOpen
    from client.drafts import DraftInfo, SavedDraft
    from client.envelope import create as env_create
    from client.envelope import open as env_open
    from client.errors import TransportError
    from client.policy.plan import KeyStatus
    from client.store.cache import Cache
    from client.transport.accounts import Account, AccountBook
    from client.transport.imap import ImapSession
    from client.transport.outbox import Entry, Outbox, PolicyDecision, PolicyHook
    from client.transport.smtp import SmtpSession
    from client.transport.sync import FolderReport
    from client.transport.watch import FolderWatcher, NewMail
from keystore.wkd import WkdSettings

if TYPE_CHECKING:
    from client.errors import SealmailError
    from client.policy.audit import AuditRecord, VerifyResult
    from client.policy.decide import Hold, ProtectedCopy
    from client.policy.levels import Level
    from client.policy.mtasts import MtaStsRecord
    from client.policy.orgpolicy import OrgPolicy
    from client.policy.plan import Original, Plan, TlsKnowledge
    from client.store.audit import AuditLog
    from client.store.tlsknowledge import TlsKnowledgeStore
    from client.transport.autoconfig import AutoconfigSources, Discovered
    from client.transport.tlsknowledge import StsSources

__all__ = ["KeystoreAccess", "Session"]

Rng = Callable[[int], bytes]


class KeystoreAccess:
    """The :class:`client.crypto.keys.KeyAccess` protocol over a :class:`Keystore`."""

    def __init__(self, store: Keystore) -> None:
        self.store = store

    # ---- OpenPGP
    def pgp_secret_keys(self) -> Sequence[tuple[bytes, bytes | None]]:
        return [
            (bytes(k.tsk), k.password.encode("utf-8") if k.password else None)
            for k in self.store.decryption_keys("pgp")
        ]

    def pgp_certs_for_ids(self, ids: Sequence[str]) -> Sequence[Any]:
        return self.store.pgp_certs_for_keyids(ids)

    def pgp_facts(self, cert: Any, *, now: datetime) -> PgpCertFacts:
        validity = kpgp.check_validity(cert, now=now)
        return PgpCertFacts(
            fingerprint=str(cert.fingerprint).upper(),
            emails=kpgp.cert_emails(cert),
            revoked=validity.revoked,
            expired=validity.expired or validity.not_yet_valid,
            weak=validity.weak,
        )

    def pgp_encryption_certs(self, email: str, *, now: datetime) -> Sequence[bytes]:
        return [bytes(c) for c in self.store.recipient_keys(email, now=now, kinds=("pgp",)).pgp[:1]]

    def pgp_signer(self, email: str, *, now: datetime) -> Any:
        ident = self.store.signing_identity_for(email, "pgp", now=now)
        return ident.pgp

    # ---- S/MIME
    def smime_identities(self) -> Sequence[SmimeIdentity]:
        return [SmimeIdentity(c, k) for c, k in self.store.decryption_keys("x509")]

    def smime_signer(self, email: str, *, now: datetime) -> SmimeIdentity:
        ident = self.store.signing_identity_for(email, "x509", now=now)
        assert ident.cert is not None and ident.key is not None
        return SmimeIdentity(ident.cert, ident.key, ident.chain)

    def smime_encryption_certs(self, email: str, *, now: datetime) -> Sequence[x509.Certificate]:
        return self.store.recipient_keys(email, now=now, kinds=("x509",)).x509

    def smime_supports_gcm(self, cert: x509.Certificate) -> bool:
        # SMIMECapabilities harvested from the owner's verified signed mail
        return self.store.smime_supports_gcm(cert)

    def smime_check(
        self, cert: x509.Certificate, intermediates: Sequence[x509.Certificate], *, now: datetime
    ) -> CertCheck:
        status = self.store.cert_status(
            cert, None, usage="sign", now=now, extra_certs=intermediates
        )
        return status.status


class Session:
    """Everything a user does with one profile."""

    def __init__(self, store: Keystore) -> None:
        self.store = store
        self.keys = KeystoreAccess(store)
        #: The single place the protection policy decides what leaves the machine (see
        #: client.transport.outbox): :meth:`protection_policy` by default. It raises, never
        #: passes plaintext it may not send — the outbox then holds the message (fail closed).
        self.policy_hook: PolicyHook = self.protection_policy
        #: The organisation policy; ``None`` reads the managed file (client.store.policyfile)
        #: each time a message is planned, so an IT update applies to the next message.
        self.org_policy: OrgPolicy | None = None
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.rng: Rng = os.urandom
        #: envelope passwords made by the running send (reported once, never stored here)
        self._envelope_report: list[dict[str, Any]] = []

    @classmethod
    def open(
        cls,
        profile: str | os.PathLike[str] | None,
        *,
        profile_passphrase: Callable[[], bytes] | None = None,
    ) -> Session:
        callback = (lambda _reason: profile_passphrase()) if profile_passphrase else None
        return cls(Keystore.open(profile, passphrase_callback=callback))

    def close(self) -> None:
        from client.crypto.pgpkeys import forget_unlocked

        self.store.close()
        forget_unlocked()  # no unlocked key outlives the session

    # ---------------------------------------------------------------- keys
    def keys_generate(
        self, email: str, *, name: str | None, kind: Literal["pgp", "smime"], now: datetime
    ) -> KeyInfo:
        if kind == "pgp":
            return self.store.generate_pgp(email, name, now=now)
        return self.store.generate_smime_selfsigned(email, name, now=now)

    def keys_import(
        self,
        data: bytes,
        *,
        passphrase: Callable[[], bytes | None],
        trust: bool = False,
        now: datetime,
    ) -> list[KeyInfo]:
        try:
            return self.store.import_bytes(data, trust=trust)
        except BadPassword:
            secret = passphrase()
            if secret is None:
                raise
            return self.store.import_bytes(data, passphrase=secret, trust=trust)

    def keys_list(self) -> list[KeyInfo]:
        """The store's keys, then the GnuPG home's (origin "gnupg") when that backend is on."""
        return self.store.list() + self.store.gnupg_keys()

    def keys_gnupg(self, home: str | None, *, off: bool = False) -> dict[str, Any]:
        """Turn the GnuPG backend on (``home``) or off; returns the resulting setting."""
        if off:
            self.store.set_gnupg_home(None)
        elif home is not None:
            self.store.set_gnupg_home(home)
        backend = self.store.gnupg
        return {
            "gnupg_home": str(backend.home) if backend else None,
            "keys": len(backend.list_keys()) if backend else 0,
            "secret_keys": len(backend.secret_fingerprints()) if backend else 0,
        }

    def keys_export(self, fingerprint: str) -> bytes:
        return self.store.export_public(fingerprint)

    def keys_revoke(self, fingerprint: str) -> bytes:
        """Revoke an own OpenPGP key; returns the revocation certificate to publish."""
        return self.store.revoke(fingerprint)

    def keys_expire(
        self, fingerprint: str, expires: datetime | None, *, now: datetime | None = None
    ) -> KeyInfo:
        """New expiration for an own OpenPGP key (``None``: never expires)."""
        return self.store.set_expiry(fingerprint, expires, now=now)

    def keys_uid_add(self, fingerprint: str, user_id: str, *, now: datetime) -> KeyInfo:
        return self.store.add_user_id(fingerprint, user_id, now=now)

    def keys_uid_revoke(self, fingerprint: str, user_id: str) -> KeyInfo:
        return self.store.revoke_user_id(fingerprint, user_id)

    def keys_uid_list(self, fingerprint: str, *, now: datetime) -> list[kpgp.UserIdValidity]:
        return self.store.user_ids(fingerprint, now=now)

    def keys_delete(self, fingerprint: str, *, secret: bool = False) -> KeyInfo:
        return self.store.delete(fingerprint, secret=secret)

    def keys_discover(
        self,
        email: str,
        *,
        now: datetime,
        refresh: bool = False,
        ca_file: str | None = None,
        timeout: float | None = None,
    ) -> DiscoveryResult:
        settings = WkdSettings(ca_file=ca_file)
        if timeout is not None:
            settings = replace(settings, timeout=timeout)
        return discover_wkd(self.store, email, now=now, settings=settings, refresh=refresh)

    def keys_status(self, email: str, *, now: datetime) -> AddressStatus:
        return address_status(self.store, email, now=now)

    def keys_autocrypt(
        self, from_addr: str, headers: Sequence[str], *, message_date: datetime, now: datetime
    ) -> AutocryptOutcome:
        """Feed the Autocrypt headers of one received message to the peer state."""
        return process_autocrypt(self.store, from_addr, headers, message_date=message_date, now=now)

    def keys_harvest_smime(
        self,
        chain: Sequence[x509.Certificate],
        capabilities: bytes | Sequence[str] | None,
        *,
        seen: datetime,
    ) -> list[KeyInfo]:
        """Record the signer chain and SMIMECapabilities of a *verified* S/MIME signature."""
        return harvest_smime(self.store, chain, capabilities, seen=seen)

    def keys_export_identity(self, passphrase: bytes, *, now: datetime) -> bytes:
        return self.store.export_identity(passphrase, now=now)

    def keys_import_identity(self, data: bytes, passphrase: bytes) -> list[KeyInfo]:
        return self.store.import_identity(data, passphrase)

    @staticmethod
    def key_json(info: KeyInfo) -> dict[str, Any]:
        return info.to_json()

    # ------------------------------------------------------------- messages
    def message_encrypt(
        self,
        raw: bytes,
        *,
        to: Sequence[str],
        sender: str | None,
        method: str = "auto",
        sign: bool = False,
        now: datetime,
        rng: Rng,
    ) -> bytes:
        if not to:
            raise UsageError("at least one --to address is needed")
        return protect(
            raw,
            self.keys,
            encrypt_to=to,
            sender=sender,
            sign=sign,
            encrypt=True,
            method=method,
            now=now,
            rng=rng,
        ).message

    def message_encrypt_stream(
        self,
        source: Callable[[], Iterable[bytes]],
        *,
        to: Sequence[str],
        sender: str | None,
        method: str = "auto",
        sign: bool = False,
        now: datetime,
        rng: Rng,
    ) -> Iterable[bytes]:
        """:meth:`message_encrypt` of a message ``source()`` yields in pieces (a file):
        streamed when it can be (see :mod:`client.crypto.streamprotect`), else in memory.
        The result is the protected message's pieces, to be written out in order."""
        from client.crypto.streamprotect import protect_stream

        if not to:
            raise UsageError("at least one --to address is needed")
        streamed = protect_stream(
            source, self.keys, encrypt_to=to, sender=sender, sign=sign, method=method,
            now=now, rng=rng,
        )  # fmt: skip
        if streamed is not None:
            return streamed.pieces
        raw = b"".join(source())
        return [self.message_encrypt(raw, to=to, sender=sender, method=method, sign=sign,
                                     now=now, rng=rng)]  # fmt: skip

    def message_sign(
        self, raw: bytes, *, sender: str, method: str, now: datetime, rng: Rng
    ) -> bytes:
        return protect(
            raw, self.keys, sender=sender, sign=True, encrypt=False, method=method, now=now, rng=rng
        ).message

    def message_open(
        self,
        raw: bytes,
        *,
        now: datetime,
        require: Literal["encrypted", "signed"] | None = None,
    ) -> OpenedMessage:
        opened = open_raw(raw, self.keys, now=now)
        if require == "encrypted" and not opened.report.encrypted:
            raise NotEncrypted("the message is not encrypted")
        if require == "signed" and not opened.report.signed:
            raise NotSigned("the message carries no signature")
        return opened

    def message_open_stream(
        self, source: Callable[[], Iterable[bytes]], *, now: datetime
    ) -> StreamedOpen | None:
        """:meth:`message_open` of an encrypted message ``source()`` yields (a file), in
        bounded memory when it can be (see :mod:`client.crypto.streamopen`); None: read
        the message and call :meth:`message_open`."""
        from client.crypto.streamopen import open_stream
        from client.verifyproc import ForkVerifiers

        return open_stream(source, self.keys, now=now, rng=os.urandom, verifiers=ForkVerifiers())

    # ------------------------------------------------------------ envelopes
    @staticmethod
    def envelope_password(rng: Rng) -> str:
        """A new strong, speakable password (show it once; never put it in the mail)."""
        return env_passwords.generate(rng)

    @staticmethod
    def _password_secret(address: str) -> str:
        return f"envelope-password:{address.strip().lower()}"

    def envelope_remember_password(self, address: str, password: bytes) -> None:
        self.store.put_secret(self._password_secret(address), password)

    def envelope_password_for(self, address: str) -> bytes | None:
        return self.store.get_secret(self._password_secret(address))

    def envelope_create(
        self,
        message: str,
        files: Sequence[tuple[str, bytes]],
        password: bytes,
        *,
        to: str | None = None,
        sender: str | None = None,
        subject: str | None = None,
        output: env_create.OutputFormat = "html",
        remember: bool = False,
        now: datetime,
        rng: Rng,
    ) -> env_create.Created:
        from client.envelope import create as env_create  # with cms: only when used
        from client.envelope import format as env_format

        attachments = [env_format.Attachment(name, data) for name, data in files]
        created = env_create.create(
            message,
            attachments,
            password,
            now=now,
            rng=rng,
            output=output,
            sender=sender,
            recipient=to,
            subject=subject,
        )
        if remember:
            if not to:
                raise UsageError("remembering a password needs the recipient (--to)")
            self.envelope_remember_password(to, password)
        return created

    def envelope_open(
        self,
        data: bytes,
        *,
        password: Callable[[], bytes | None],
        filename: str | None = None,
        correspondent: str | None = None,
        now: datetime,
    ) -> env_open.Opened:
        """Open any encrypted attachment in memory; nothing is written."""

        def ask() -> bytes | None:
            given = password()
            if given is None and correspondent:
                return self.envelope_password_for(correspondent)
            return given

        from client.envelope import open as env_open

        return env_open.open_bytes(data, keys=self.keys, password=ask, now=now, filename=filename)

    @staticmethod
    def envelope_save(
        opened: env_open.Opened, directory: str | os.PathLike[str], *, message_file: bool = True
    ) -> list[Path]:
        """Write the files (and ``message.txt``) into ``directory``: all or nothing."""
        files = [(f.name, f.data) for f in opened.files]
        if message_file and opened.message:
            files.append(("message.txt", opened.message.encode("utf-8")))
        return save_files(directory, files)

    # ---------------------------------------------------------------- policy
    # Thin: the logic lives in client.policy (pure) and client.store (files).

    def policy_key_status(
        self, recipients: Sequence[str], *, sender: str | None, now: datetime
    ) -> KeyStatus:
        """What the keystore can do for each recipient (and the sender's signing) at ``now``."""
        from client.policy.plan import KeyStatus, RecipientKeyStatus

        found = {}
        for addr in recipients:
            rk = self.store.recipient_keys(addr, now=now)
            found[rk.email] = RecipientKeyStatus(
                rk.email, smime=bool(rk.x509), pgp=bool(rk.pgp), reasons=rk.reasons
            )
        can_sign: set[str] = set()
        if sender:
            for info in self.store.list():
                if (
                    info.secret
                    and sender.lower() in info.emails
                    and not info.revoked
                    and (info.expires is None or info.expires > now)
                ):
                    can_sign.add("pgp" if info.kind == "pgp" else "smime")
        return KeyStatus(found, frozenset(can_sign))

    def policy_plan(
        self, raw: bytes, org_policy: OrgPolicy, *, level: Level | None, now: datetime
    ) -> Plan:
        from client.policy.decide import message_facts
        from client.policy.extract import message_text
        from client.policy.plan import Draft, plan
        from client.policy.scan import scan_text

        sender, recipients, mid = message_facts(raw)
        scanned = message_text(raw)
        enabled = [t for t, r in org_policy.detectors.items() if r.enabled]
        draft = Draft.from_scan(
            scanned,
            scan_text(scanned.text, types=enabled),
            sender=sender,
            user_level=level,
            message_id=mid,
            original=self.policy_original(raw),
        )
        status = self.policy_key_status(recipients, sender=sender, now=now)
        return plan(draft, recipients, status, org_policy, now, tls=self.tls_knowledge(recipients))

    def policy_decide(
        self,
        raw: bytes,
        org_policy: OrgPolicy,
        *,
        level: Level | None = None,
        now: datetime,
        rng: Rng,
    ) -> list[ProtectedCopy] | Hold:
        from client.policy.decide import decide_and_protect

        return decide_and_protect(raw, self, org_policy, level=level, now=now, rng=rng)

    def current_org_policy(self) -> OrgPolicy:
        """The organisation policy in force (an invalid managed file raises: fail closed)."""
        if self.org_policy is not None:
            return self.org_policy
        from client.store.policyfile import load_org_policy

        return load_org_policy()

    def _make_envelope_mail(
        self, raw: bytes, recipients: Sequence[str], *, now: datetime, rng: Rng
    ) -> bytes:
        """The :class:`client.policy.decide.EnvelopeMaker` for one recipient.

        The recipient's remembered password is used again (they were told it once);
        otherwise a new one is made, remembered in the secret store and reported once
        through :attr:`Entry.envelope_passwords` — it is never put into the mail.
        """
        from client.policy.envelopemail import envelope_mail

        (address,) = recipients  # decide_and_protect makes one envelope copy per recipient
        password = self.envelope_password_for(address)
        new = password is None
        if password is None:
            password = self.envelope_password(rng).encode("utf-8")
            self.envelope_remember_password(address, password)
        self._envelope_report.append(
            {"recipient": address, "password": password.decode("utf-8"), "new": new}
        )
        return envelope_mail(raw, address, password, now=now, rng=rng)

    def protection_policy(self, raw: bytes, account: Account) -> PolicyDecision:
        """The outbox's policy hook: scan, plan, protect per copy, audit — or hold.

        The level the sender chose travels with the queued message in the transport-only
        ``X-Sealmail-Level`` field (raise only). A :class:`~client.policy.decide.Hold`
        raises :class:`~client.policy.errors.PolicyBlocksSend` whose ``details`` (reason,
        fixes, plan) the outbox keeps with the held message.
        """
        from client.policy.decide import Hold, decide_and_protect, requested_level
        from client.policy.errors import PolicyBlocksSend
        from client.transport.outbox import PolicyDecision, WireCopy

        org = self.policy_for_user()  # the org policy with the preferences it lets users set
        result = decide_and_protect(
            raw,
            self,
            org,
            level=requested_level(raw) or self.preferred_level(org),
            now=self.clock(),
            rng=self.rng,
            envelope=self._make_envelope_mail,
        )
        if isinstance(result, Hold):
            raise PolicyBlocksSend(result.reason, hold=result)

        def rank(c: ProtectedCopy) -> int:
            # copy 0 becomes the Sent copy: prefer one encrypted to the sender's key too
            if c.method in ("smime", "pgp"):
                return 0 if c.level.encrypts else 1
            return 2 if c.method in ("tls", "tls-required") else 3

        ordered = sorted(result, key=rank)
        return PolicyDecision(
            wire=ordered[0].message,
            require_tls=any(c.require_tls for c in ordered),
            copies=tuple(
                WireCopy(c.message, c.recipients, c.require_tls, c.method) for c in ordered
            ),
        )

    # ----------------------------------------------------------------- audit
    @property
    def audit_log(self) -> AuditLog:
        from client.store.audit import AuditLog

        return AuditLog(self.store.profile)

    def audit_append(self, *, now: datetime, **fields: Any) -> AuditRecord:
        return self.audit_log.append(now, **fields)

    def audit_verify(self) -> VerifyResult:
        return self.audit_log.verify()

    # ------------------------------------------------------------- accounts
    def accounts(self) -> AccountBook:
        from client.transport.accounts import AccountBook

        return AccountBook(self.store)

    def account_add(self, account: Account, password: bytes | None) -> Account:
        return self.accounts().add(account, password)

    def account_list(self) -> list[Account]:
        return self.accounts().list()

    def account_imap(self, account: Account) -> ImapSession:
        from client.transport.imap import connect

        return connect(
            account.imap_host,
            account.imap_port,
            security=account.imap_security,
            username=account.username,
            password=self.accounts().password(account),
            ca_file=account.ca_file,
        )

    def account_smtp(self, account: Account) -> SmtpSession:
        from client.transport.smtp import submit_connect

        return submit_connect(
            account.smtp_host,
            account.smtp_port,
            security=account.smtp_security,
            username=account.username,
            password=self.accounts().password(account),
            ca_file=account.ca_file,
        )

    # ------------------------------------------------------------- sync
    def cache(self) -> Cache:
        from client.store.cache import Cache

        return Cache(self.store.profile.file("cache.sqlite"))

    def sync(self, email: str | None = None) -> list[FolderReport]:
        from client.transport.sync import sync_account

        account = self.accounts().get(email)
        cache = self.cache()
        try:
            with self.account_imap(account) as imap:
                return sync_account(imap, cache, account.email)
        finally:
            cache.close()

    # ------------------------------------------------------------- outbox
    def outbox(self, *, witness_wait: float = 10.0) -> Outbox:
        from client.transport.outbox import Outbox

        return Outbox(self.store.profile, witness_wait=witness_wait)

    def send(self, raw: bytes, *, email: str | None = None, level: Level | None = None) -> Entry:
        """Queue ``raw`` durably, then try to send it now; the record says how far it got.

        The protection policy runs once, inside the outbox (:meth:`protection_policy`):
        held → ``entry.state`` is HELD with ``entry.hold`` (reason, fixes) and nothing
        left the machine. ``level`` raises protection (never below the policy). New
        envelope passwords are in ``entry.envelope_passwords`` — show them once.
        """
        from client.policy.decide import LEVEL_HEADER

        if level is not None:
            raw = _set_field(raw, LEVEL_HEADER, level.value)
        account = self.accounts().get(email)
        box = self.outbox()
        entry = box.enqueue(raw, account)
        return self._process_one(box, account, entry.message_id)

    def _process_one(self, box: Outbox, account: Account, message_id: str) -> Entry:
        self._envelope_report = []
        try:
            box.process(
                account,
                smtp=lambda: self.account_smtp(account),
                imap=lambda: self.account_imap(account),
                policy=self.policy_hook,
                only=message_id,
            )
            out = box.get(message_id)
            out.envelope_passwords = list(self._envelope_report)
            return out
        finally:
            self._envelope_report = []

    def outbox_release(self, message_id: str) -> Entry:
        """Plan a held message again (after the user fixed it) and try to send it now."""
        box = self.outbox()
        entry = box.release(message_id)
        account = self.accounts().get(entry.account)
        return self._process_one(box, account, message_id)

    def outbox_process(self, email: str | None = None) -> list[Entry]:
        account = self.accounts().get(email)
        self._envelope_report = []
        try:
            return self.outbox().process(
                account,
                smtp=lambda: self.account_smtp(account),
                imap=lambda: self.account_imap(account),
                policy=self.policy_hook,
            )
        finally:
            self._envelope_report = []

    def outbox_list(self) -> list[Entry]:
        return self.outbox().entries()

    # ------------------------------------------------- TLS knowledge, replies
    # What Sealmail knows about other domains (MTA-STS, user-added partners) and about the
    # message a draft replies to: data for the pure planner (client.policy.plan).

    def tls_store(self) -> TlsKnowledgeStore:
        from client.store.tlsknowledge import FILE_NAME, TlsKnowledgeStore

        return TlsKnowledgeStore(self.store.profile.file(FILE_NAME))

    def tls_knowledge(self, recipients: Sequence[str]) -> TlsKnowledge:
        """The stored TLS knowledge about the recipients' domains."""
        domains = {a.rsplit("@", 1)[-1].strip().lower() for a in recipients if "@" in a}
        return self.tls_store().knowledge(domains)

    def tls_refresh(
        self, domain: str, *, sources: StsSources, now: datetime, force: bool = False
    ) -> MtaStsRecord:
        """Check the domain's MTA-STS now; the record is stored, a failure too (then raised)."""
        from client.policy.mtasts import MtaStsError
        from client.transport.tlsknowledge import refresh_mta_sts

        domain = domain.strip().lower().rstrip(".")
        store = self.tls_store()
        try:
            record = refresh_mta_sts(domain, store.mta_sts(domain), sources, now=now, force=force)
        except MtaStsError as exc:
            store.put_error(domain, exc, now=now)
            raise
        store.put_mta_sts(record)
        return record

    def tls_refresh_recipients(
        self, recipients: Sequence[str], *, sources: StsSources, now: datetime
    ) -> dict[str, MtaStsRecord | SealmailError]:
        """Best effort before planning (composer, outbox): refresh each recipient domain's
        MTA-STS where nothing valid is stored or its id changed. Failures are recorded and
        returned, never raised — a domain without a valid record simply escalates."""
        from client.policy.mtasts import MtaStsError

        out: dict[str, MtaStsRecord | SealmailError] = {}
        for domain in sorted({a.rsplit("@", 1)[-1].lower() for a in recipients if "@" in a}):
            try:
                out[domain] = self.tls_refresh(domain, sources=sources, now=now)
            except MtaStsError as exc:
                out[domain] = exc
        return out

    def tls_partner(self, domain: str, *, present: bool, org_policy: OrgPolicy) -> frozenset[str]:
        """Add (or remove) a partner domain of the user's own, if the policy allows it."""
        from client.policy.errors import PolicyError

        if present and not org_policy.user_may.add_partner_domains:
            raise PolicyError(
                f"the organisation policy does not let users add partner domains ({domain})",
                hint="Ask IT to add the domain to partner_tls_domains in the policy.",
            )
        store = self.tls_store()
        store.set_user_partner(domain.strip().lower().rstrip("."), present=present)
        return store.user_partners()

    def policy_original(self, raw: bytes) -> Original | None:
        """How the message ``raw`` replies to or forwards arrived (from the local cache)."""
        from client.policy.decide import classify_original, original_reference
        from client.policy.plan import Original

        ref = original_reference(raw)
        if ref is None or not self.store.profile.file("cache.sqlite").exists():
            return None
        relation, mid = ref
        import sqlite3

        from client.policy.errors import PolicyError

        try:
            cache = self.cache()
            try:
                row = cache.db.execute(
                    "SELECT account, folder, uid, sender, content_type FROM messages"
                    " WHERE message_id IN (?, ?) LIMIT 1",
                    (mid, mid.strip("<>")),
                ).fetchone()
                body = cache.body(row[0], row[1], row[2]) if row is not None else None
            finally:
                cache.close()
        except sqlite3.Error as exc:  # fail closed: the reply rules cannot be checked
            raise PolicyError(
                f"cannot read the local cache to check the reply/forward rules: {exc}",
                hint="Run `sealmail sync` to rebuild the cache, then send again.",
            ) from exc
        if row is None:
            return None
        level, envelope = classify_original(row[4] or "", body)
        from email.utils import parseaddr

        sender = parseaddr(row[3] or "")[1].lower() or None
        return Original(relation, sender, level, envelope, mid)  # type: ignore[arg-type]

    # ------------------------------------------------------------- drafts
    # client.drafts decides the stored form (encrypted to the sender's own key when the
    # plan protects the draft or the scanner found something) and does the IMAP work.

    def _drafts_folder(self, imap: ImapSession, account: Account) -> str:
        return imap.special_folder("\\Drafts", account.drafts_folder)

    def drafts_save(
        self, raw: bytes, *, email: str | None = None, draft_id: str | None = None
    ) -> SavedDraft:
        """Store a new version of a draft (replacing the older one); see client.drafts."""
        from client import drafts

        account = self.accounts().get(email)
        did = draft_id or drafts.draft_id_of(raw) or self.rng(16).hex()
        stored, encrypted = drafts.draft_form(
            self, raw, did, policy=self.org_policy, now=self.clock(), rng=self.rng
        )
        with self.account_imap(account) as imap:
            return drafts.save(
                imap, self._drafts_folder(imap, account), stored, encrypted=encrypted
            )

    def drafts_list(self, email: str | None = None) -> list[DraftInfo]:
        from client import drafts

        account = self.accounts().get(email)
        with self.account_imap(account) as imap:
            return drafts.list_drafts(imap, self._drafts_folder(imap, account))

    def drafts_open(self, draft_id: str, *, email: str | None = None) -> bytes:
        """The draft as written (decrypted in memory when stored encrypted)."""
        from client import drafts

        account = self.accounts().get(email)
        with self.account_imap(account) as imap:
            stored = drafts.fetch(imap, self._drafts_folder(imap, account), draft_id)
        return drafts.reopen(self, stored, now=self.clock())

    def drafts_delete(self, draft_id: str, *, email: str | None = None) -> list[int]:
        from client import drafts

        account = self.accounts().get(email)
        with self.account_imap(account) as imap:
            return drafts.delete(imap, self._drafts_folder(imap, account), [draft_id])

    # ------------------------------------------------------- trust anchors
    def keys_trust_ca(self, fingerprint: str, *, trust: bool = True) -> KeyInfo:
        """Make a stored CA certificate a trust anchor (or stop trusting it).

        To add a new CA, import its certificate with ``keys_import(..., trust=True)``.
        """
        info = self.store.get(fingerprint)
        if info.kind != "x509" or not info.is_ca:
            raise UsageError(
                f"{fingerprint} is not a CA certificate",
                hint="Only certificate authorities can be trusted; choose a CA certificate.",
            )
        return self.store.set_flags(info.fingerprint, trust_anchor=trust)

    def keys_import_ca(self, data: bytes) -> list[KeyInfo]:
        """Import CA certificate(s) as trust anchors; refuses a file without a CA (so a
        person's certificate never becomes an anchor by mistake) or with a private key."""
        from keystore import certs

        bundle = certs.parse_x509(data)
        if bundle.identities or bundle.keys or not any(certs.is_ca(c) for c in bundle.certs):
            raise UsageError(
                "the file holds no CA certificate",
                hint="Choose the certificate of the certificate authority itself "
                "(it says CA:TRUE), not a person's certificate or a private key.",
            )
        return self.store.import_bytes(data, trust=True)

    # ------------------------------------------------------- account wizard
    def account_discover(self, email: str, sources: AutoconfigSources | None = None) -> Discovered:
        """Autoconfiguration for ``email`` (as ``sealmail account add --auto``): the caller
        shows :attr:`Discovered.weaknesses` and must get consent before storing anything
        weaker than verified TLS (stored as STARTTLS, enforced before LOGIN)."""
        from client.transport.autoconfig import discover

        return discover(email, sources)

    # ------------------------------------------------------- user preferences
    def preferences(self) -> dict[str, Any]:
        """The user's own settings (``preferences.json`` in the profile; no secrets)."""
        import json

        path = self.store.profile.file("preferences.json")
        try:
            data = json.loads(path.read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def set_preferences(self, prefs: dict[str, Any]) -> dict[str, Any]:
        """Store the user's settings (atomically); what the policy forbids is never applied:
        :meth:`current_org_policy` always decides over them."""
        import json

        path = self.store.profile.file("preferences.json")
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(prefs, indent=2, sort_keys=True), "utf-8")
        os.replace(tmp, path)
        return prefs

    # ------------------------------------------------------------- new-mail watch
    def watch_folder(
        self,
        on_new: Callable[[NewMail], None],
        *,
        email: str | None = None,
        folder: str = "INBOX",
        on_error: Callable[[TransportError], None] | None = None,
    ) -> FolderWatcher:
        """A new-mail watcher (IMAP IDLE, reconnecting) for ``folder``, not yet started.

        Mail newer than the cache's copy of the folder is reported (all new mail since the
        last sync); ``on_new`` runs on the watcher's thread. Call ``.start()``/``.stop()``.
        """
        from client.transport.imap import connect
        from client.transport.watch import FolderWatcher

        account = self.accounts().get(email)
        password = self.accounts().password(account)  # read here, not on the worker thread
        cache = self.cache()
        try:
            known = cache.folder(account.email, folder)
        finally:
            cache.close()
        return FolderWatcher(
            lambda: connect(
                account.imap_host,
                account.imap_port,
                security=account.imap_security,
                username=account.username,
                password=password,
                ca_file=account.ca_file,
            ),
            folder,
            on_new,
            since_uid=known.uidnext if known and known.uidvalidity else None,
            uidvalidity=known.uidvalidity if known else None,
            on_error=on_error,
        )

    # ------------------------------------------------- the app's helpers (additive)
    def sync_folder(self, folder: str, *, email: str | None = None) -> FolderReport:
        """Synchronise one folder into the cache (new mail the watcher reported)."""
        from client.transport.sync import sync_folder

        account = self.accounts().get(email)
        cache = self.cache()
        try:
            with self.account_imap(account) as imap:
                return sync_folder(imap, cache, account.email, folder)
        finally:
            cache.close()

    def drafts_folder_name(self, email: str | None = None) -> str:
        """The account's Drafts folder as the cache knows it (``\\Drafts`` special use),
        else the account's configured name; no network."""
        account = self.accounts().get(email)
        cache = self.cache()
        try:
            for f in cache.folders(account.email):
                if "\\Drafts" in f.flags:
                    return f.name
        finally:
            cache.close()
        return account.drafts_folder

    @staticmethod
    def apply_preferences(org: OrgPolicy, prefs: dict[str, Any]) -> OrgPolicy:
        """``org`` as this user wants it, only where ``org.user_may`` lets them choose:
        subject tags off, password envelopes off. Neither lowers the policy's own floor
        (the minimum level and what the scanner finds always apply)."""
        may = org.user_may
        if may.use_subject_tags and prefs.get("use_subject_tags") is False:
            org = replace(org, user_may=replace(org.user_may, use_subject_tags=False))
        if may.use_envelopes and prefs.get("use_envelopes") is False:
            org = replace(org, password_envelopes=False)
        return org

    def policy_for_user(self, org: OrgPolicy | None = None) -> OrgPolicy:
        """The organisation policy (``org`` or :meth:`current_org_policy`) with the user's
        preferences applied (:meth:`apply_preferences`)."""
        return self.apply_preferences(org or self.current_org_policy(), self.preferences())

    def preferred_level(self, org: OrgPolicy | None = None) -> Level | None:
        """The user's default level for new mail when the policy lets users raise it and it
        is above the policy's minimum; else None (the policy's own level applies)."""
        from client.policy.levels import Level

        org = org or self.current_org_policy()
        if not org.user_may.raise_level:
            return None
        wanted = self.preferences().get("default_level")
        level = next((lv for lv in Level if lv.value == wanted), None)
        if level is None or not level.rank > org.minimum_level.rank:
            return None
        return level


def _set_field(raw: bytes, name: str, value: str) -> bytes:
    """``raw`` with header field ``name`` set to ``value`` (an earlier one removed)."""
    import re

    pattern = re.compile(rb"(?im)^" + re.escape(name.encode()) + rb":[^\n]*\n(?:[ \t][^\n]*\n)*")
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = raw.find(sep)
        if i >= 0:
            head, body = raw[: i + len(sep) // 2], raw[i + len(sep) // 2 :]
            break
    else:
        head, body = raw, b""
    eol = b"\r\n" if b"\r\n" in head else b"\n"
    head = pattern.sub(b"", head)
    return head + f"{name}: {value}".encode() + eol + body
