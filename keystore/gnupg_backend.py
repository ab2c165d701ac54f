"""The GnuPG backend: keys a user already keeps in a GnuPG home, used through python-gnupg.

Theory of operation
-------------------
A user who lives in GnuPG can point Sealmail at a GnuPG home (profile setting
``gnupg_home``, ``sealmail keys gnupg --home DIR``). :class:`GnupgBackend` wraps
``gnupg.GPG`` for that home (``encoding='utf-8'``, batch mode, no tty) and offers:

* :meth:`GnupgBackend.list_keys`: public and secret keys as :class:`GnupgKey`, with gpg's
  own *validity* of the key and of each user id (``trust`` in python-gnupg's listing:
  ``u`` ultimate, ``f`` full, ``m`` marginal, ``-``/``q``/``o`` unknown, ``n`` never,
  ``e`` expired, ``r`` revoked, ``i`` invalid, ``d`` disabled);
* :meth:`GnupgBackend.recipient_certs`: the pysequoia certificates of keys valid for an
  address, where *valid* means what gpg itself requires before it encrypts without
  asking: the key and the user id carrying the address have full or ultimate validity
  in the user's web of trust, the key is neither expired, revoked nor disabled, and it
  has an encryption capability. Keys of lower validity are reported with a reason,
  never used (Sealmail must not trust a key the user's GnuPG does not);
* :meth:`GnupgBackend.encrypt`/:meth:`sign`/:meth:`decrypt`/:meth:`verify`: the
  operations run by gpg itself, so secret keys never leave gpg-agent (which may ask for
  a passphrase through its pinentry, or take one given here in loopback mode).

python-gnupg facts this module depends on: a signature's ``valid`` is True for a good
signature by an *untrusted* key, so :meth:`verify`/:meth:`decrypt` report
``trust_level`` and :class:`GnupgResult.trusted` requires TRUST_FULLY or better;
``verify_data(sig_file, data)`` takes the signature *file name* first.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gnupg
import pysequoia as ps

from keystore.errors import GnupgError, InvalidKeyMaterial, KeyNotFound, UsageError
from keystore.openpgp import email_of_uid

__all__ = ["VALID_FOR_USE", "GnupgBackend", "GnupgError", "GnupgKey", "GnupgResult"]

#: gpg validities Sealmail accepts for encrypting to a key / trusting a signature.
VALID_FOR_USE = frozenset({"f", "u"})
_VALIDITY_TEXT = {
    "o": "unknown (new key)",
    "-": "unknown",
    "q": "undefined",
    "n": "never trusted",
    "m": "marginal",
    "f": "full",
    "u": "ultimate",
    "e": "expired",
    "r": "revoked",
    "i": "invalid",
    "d": "disabled",
}


@dataclass(frozen=True)
class GnupgKey:
    fingerprint: str  # upper-case hex
    user_ids: tuple[str, ...]
    uid_validity: tuple[str, ...]  # gpg's validity letter per user id
    validity: str  # gpg's validity letter for the key
    capabilities: str  # gpg's "cap" field: upper-case letters apply to the whole key
    expires: datetime | None
    secret: bool

    @property
    def emails(self) -> tuple[str, ...]:
        """Addresses of user ids gpg does not consider revoked."""
        out: list[str] = []
        for uid, v in zip(self.user_ids, self.uid_validity, strict=True):
            addr = email_of_uid(uid)
            if addr and v not in ("r", "i") and addr not in out:
                out.append(addr)
        return tuple(out)

    @property
    def revoked(self) -> bool:
        return self.validity == "r"

    def why_not_usable(self, email: str, *, now: datetime) -> str:
        """ "" if gpg would encrypt to this key for ``email`` at ``now`` without asking."""
        if self.validity in ("r", "e", "d", "i"):
            return f"GnuPG says the key is {_VALIDITY_TEXT[self.validity]}"
        if self.expires is not None and self.expires <= now:
            return f"the key expired on {self.expires.isoformat()}"
        if "E" not in self.capabilities:
            return "the key has no usable encryption subkey"
        uid_ok = [
            v
            for uid, v in zip(self.user_ids, self.uid_validity, strict=True)
            if email_of_uid(uid) == email
        ]
        if not uid_ok:
            return f"no user id for {email}"
        best = next((v for v in uid_ok if v in VALID_FOR_USE), None)
        if best is None or self.validity not in VALID_FOR_USE:
            shown = _VALIDITY_TEXT.get(uid_ok[0] if best is None else self.validity, "unknown")
            return (
                f"the key is not trusted in the GnuPG keyring (validity {shown}); "
                "certify it with gpg --lsign-key to use it"
            )
        return ""


@dataclass(frozen=True)
class GnupgResult:
    """Outcome of a gpg decrypt/verify: the data and who signed it, if anyone."""

    data: bytes = field(repr=False)  # plaintext: never in logs
    signer: str | None  # fingerprint of a *good* signature's key
    trust_level: int | None  # python-gnupg TRUST_* of that key
    key_fingerprint: str | None = None  # decrypt: which key's subkey opened the message

    @property
    def trusted(self) -> bool:
        """A good signature by a key of full or ultimate validity (not just ``valid``)."""
        return self.signer is not None and (self.trust_level or 0) >= gnupg.Verify.TRUST_FULLY


def _when(value: str) -> datetime | None:
    if not value:
        return None
    if value.isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)  # pragma: no cover


class GnupgBackend:
    """One GnuPG home. Cheap to make; every call runs ``gpg``."""

    def __init__(self, home: str | os.PathLike[str], *, gpgbinary: str = "gpg") -> None:
        self.home = Path(home).expanduser()
        if not self.home.is_dir():
            raise UsageError(
                f"GnuPG home {self.home} does not exist",
                hint="Give an existing GnuPG home (e.g. ~/.gnupg) to `sealmail keys gnupg --home`.",
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._gpg = gnupg.GPG(
                    gnupghome=str(self.home), gpgbinary=gpgbinary, options=["--no-tty"]
                )
        except (OSError, ValueError, RuntimeError) as exc:
            raise UsageError(f"cannot run gpg for {self.home}: {exc}") from exc
        self._gpg.encoding = "utf-8"

    # --- keys -------------------------------------------------------------------------

    def list_keys(self, *, secret: bool = False) -> list[GnupgKey]:
        listing: Any = self._gpg.list_keys(secret=secret)
        secret_fprs = (
            {k["fingerprint"] for k in self._gpg.list_keys(secret=True)} if not secret else None
        )
        out: list[GnupgKey] = []
        uid_map: dict[str, dict[str, str]] = getattr(listing, "uid_map", {}) or {}
        for k in listing:
            uids = tuple(str(u) for u in k.get("uids", []))
            validity = tuple(str(uid_map.get(u, {}).get("trust", "") or "-") for u in uids)
            fpr = str(k.get("fingerprint", "")).upper()
            out.append(
                GnupgKey(
                    fingerprint=fpr,
                    user_ids=uids,
                    uid_validity=validity,
                    validity=str(k.get("trust") or "-"),
                    capabilities=str(k.get("cap") or ""),
                    expires=_when(str(k.get("expires") or "")),
                    secret=secret or (secret_fprs is not None and fpr in secret_fprs),
                )
            )
        return out

    def find(self, fingerprint: str) -> GnupgKey:
        fpr = fingerprint.upper()
        for k in self.list_keys():
            if k.fingerprint == fpr:
                return k
        raise KeyNotFound(f"no key {fingerprint} in the GnuPG home {self.home}")

    def export_cert(self, fingerprint: str) -> ps.Cert:
        armored = self._gpg.export_keys([fingerprint], armor=True)
        if not armored:
            raise KeyNotFound(f"gpg exported nothing for {fingerprint}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return ps.Cert.from_bytes(armored.encode("ascii"))
        except RuntimeError as exc:
            raise InvalidKeyMaterial(f"the GnuPG key {fingerprint} is unreadable") from exc

    def keys_for(self, email: str, *, now: datetime) -> tuple[list[GnupgKey], list[str]]:
        """(keys gpg would encrypt to for ``email`` without asking, reasons for the others)."""
        addr = email.strip().lower()
        good: list[GnupgKey] = []
        reasons: list[str] = []
        for k in self.list_keys():
            if addr not in (email_of_uid(u) for u in k.user_ids):
                continue
            why = k.why_not_usable(addr, now=now)
            if why:
                reasons.append(f"GnuPG key {k.fingerprint}: {why}")
            else:
                good.append(k)
        return good, reasons

    def recipient_certs(
        self, email: str, *, now: datetime
    ) -> tuple[list[tuple[GnupgKey, ps.Cert]], list[str]]:
        good, reasons = self.keys_for(email, now=now)
        return [(k, self.export_cert(k.fingerprint)) for k in good], reasons

    def secret_fingerprints(self) -> list[str]:
        return [k.fingerprint for k in self.list_keys(secret=True)]

    # --- operations (gpg and gpg-agent do the work) -----------------------------------

    @staticmethod
    def _fail(what: str, result: Any) -> GnupgError:
        status = getattr(result, "status", None) or ""
        stderr = str(getattr(result, "stderr", "") or "")
        detail = next(
            (
                line.split("gpg: ", 1)[1]
                for line in reversed(stderr.splitlines())
                if "gpg: " in line and "WARNING" not in line
            ),
            status,
        )
        return GnupgError(f"gpg could not {what}: {detail or 'unknown error'}")

    def encrypt(
        self,
        data: bytes,
        recipients: Sequence[str],
        *,
        sign_with: str | None = None,
        passphrase: str | None = None,
        armor: bool = True,
    ) -> bytes:
        """Encrypt to fingerprints (gpg checks validity: untrusted recipients fail)."""
        if not recipients:
            raise UsageError("no recipients")
        result = self._gpg.encrypt(
            data,
            list(recipients),
            sign=sign_with,
            passphrase=passphrase,
            armor=armor,
            extra_args=["--no-auto-key-retrieve"],
        )
        if not result.ok:
            raise self._fail("encrypt", result)
        return bytes(result.data)

    def sign(
        self,
        data: bytes,
        fingerprint: str,
        *,
        detach: bool = True,
        passphrase: str | None = None,
        armor: bool = True,
    ) -> bytes:
        """A signature by a key whose secret gpg-agent holds (detached by default)."""
        result = self._gpg.sign(
            data,
            keyid=fingerprint,
            passphrase=passphrase,
            detach=detach,
            binary=not armor,
            clearsign=False,
        )
        if not result.data or not getattr(result, "fingerprint", None):
            raise self._fail("sign", result)
        return bytes(result.data)

    def decrypt(self, data: bytes, *, passphrase: str | None = None) -> GnupgResult:
        """Decrypt with gpg-agent's secret keys; signature facts when the message was signed."""
        result = self._gpg.decrypt(data, passphrase=passphrase)
        if not result.ok:
            raise self._fail("decrypt", result)
        signer = (result.pubkey_fingerprint or result.fingerprint) if result.valid else None
        key_fpr = None
        for line in str(result.stderr or "").splitlines():
            # [GNUPG:] DECRYPTION_KEY <subkey fpr> <primary fpr> <otrust> (gpg >= 2.2.x)
            parts = line.split()
            if len(parts) >= 4 and parts[:2] == ["[GNUPG:]", "DECRYPTION_KEY"]:
                key_fpr = parts[3].upper()
        return GnupgResult(
            bytes(result.data),
            signer.upper() if signer else None,
            result.trust_level if signer else None,
            key_fpr,
        )

    def verify(self, data: bytes, signature: bytes) -> GnupgResult:
        """Check a detached signature (``verify_data`` wants the signature as a file)."""
        fd, sig_path = tempfile.mkstemp(prefix="sig", suffix=".asc")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(signature)
            result = self._gpg.verify_data(sig_path, data)
        finally:
            os.unlink(sig_path)
        signer = (result.pubkey_fingerprint or result.fingerprint) if result.valid else None
        return GnupgResult(
            data,
            signer.upper() if signer else None,
            result.trust_level if signer else None,
        )
