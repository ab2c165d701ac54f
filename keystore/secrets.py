"""Secret protection: one profile master key, kept in the OS keyring or under a passphrase.

Theory of operation
-------------------
Every secret the keystore stores (OpenPGP secret keys, X.509 private keys, account
passwords) is sealed with AES-256-GCM under a random 256-bit *master key*. The
associated data names the record (``sealmail/v1/<record>``), so a sealed blob moved
to another row does not open. A sealed blob is ``b"SMS1" || nonce(12) || ct || tag``.

The master key itself is kept in one of two ways, chosen when the profile's secret
store is first created and recorded in ``secrets.json`` (written atomically, 0600):

``keyring``
    The master key (base64) is stored by ``keyring`` under service ``"sealmail"`` and
    user ``"profile:<profile id>"``. Only a backend that keeps secrets out of
    plaintext counts: any backend from ``keyrings.alt`` is refused with
    :class:`~keystore.errors.InsecureKeyring`; the ``fail`` backend, an empty chainer
    and backends with priority <= 0 mean "no usable keyring". A chainer is resolved
    to the one backend it would write to, so a secret never falls through to a
    weaker backend on read.

``passphrase``
    Used when no keyring is usable (headless machines). The passphrase comes from an
    explicit argument, ``SEALMAIL_PROFILE_PASSPHRASE`` or a caller's callback (the
    CLI prompts). scrypt (salt and parameters in ``secrets.json``) derives a key that
    wraps the master key with AES-256-GCM; the GCM tag is the verifier, so a wrong
    passphrase is :class:`~keystore.errors.BadPassword` and nothing else.

Creating the store happens under the profile lock, so two processes starting at once
agree on one master key. Nothing secret is ever written in plaintext: the profile
holds only sealed blobs, the wrapped master key, salts and parameters.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from keystore.errors import (
    BadPassword,
    InsecureKeyring,
    KeystoreError,
    SecretStoreUnavailable,
    UsageError,
)
from keystore.profile import Profile, atomic_write

__all__ = [
    "ENV_PROFILE_PASSPHRASE",
    "KEYRING_SERVICE",
    "KdfParams",
    "PassphraseCallback",
    "PassphraseReason",
    "SecretBox",
    "StoreMode",
    "check_keyring_backend",
    "open_secret_box",
    "secret_store_mode",
]


if TYPE_CHECKING:  # keyring is imported when a keyring is used (48 ms of every start)
    import keyring.backend

log = logging.getLogger(__name__)

ENV_PROFILE_PASSPHRASE = "SEALMAIL_PROFILE_PASSPHRASE"  # noqa: S105 (a variable name)
KEYRING_SERVICE = "sealmail"
_STATE_FILE = "secrets.json"
_MAGIC = b"SMS1"
_NONCE = 12
_AAD_PREFIX = b"sealmail/v1/"

StoreMode = Literal["keyring", "passphrase"]
#: Why a passphrase is asked for: to create a new profile store, or to unlock one.
PassphraseReason = Literal["new", "unlock"]
PassphraseCallback = Callable[[PassphraseReason], "str | bytes"]


@dataclass(frozen=True)
class KdfParams:
    """scrypt parameters; the defaults cost about 32 MiB and 0.1 s."""

    n: int = 2**15
    r: int = 8
    p: int = 1

    def derive(self, passphrase: bytes, salt: bytes) -> bytes:
        return Scrypt(salt=salt, length=32, n=self.n, r=self.r, p=self.p).derive(passphrase)


class SecretBox:
    """The unlocked master key: seals and opens named records. Lives in memory only."""

    __slots__ = ("_aead", "mode")

    def __init__(self, master_key: bytes, mode: StoreMode) -> None:
        if len(master_key) != 32:
            raise UsageError("master key must be 32 bytes")
        self._aead = AESGCM(master_key)
        self.mode: StoreMode = mode

    def __repr__(self) -> str:
        return f"<SecretBox mode={self.mode}>"

    def seal(self, record: str, plaintext: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return _MAGIC + nonce + self._aead.encrypt(nonce, plaintext, _aad(record))

    def open(self, record: str, blob: bytes) -> bytes:
        if not blob.startswith(_MAGIC) or len(blob) < len(_MAGIC) + _NONCE + 16:
            raise KeystoreError(f"sealed record {record!r} is damaged")
        nonce = blob[len(_MAGIC) : len(_MAGIC) + _NONCE]
        try:
            return self._aead.decrypt(nonce, blob[len(_MAGIC) + _NONCE :], _aad(record))
        except InvalidTag as exc:
            raise KeystoreError(
                f"sealed record {record!r} does not open with this profile's master key",
                hint="The profile's secret store is damaged or belongs to another profile.",
            ) from exc


def _aad(record: str) -> bytes:
    return _AAD_PREFIX + record.encode("utf-8")


# --- keyring backends -----------------------------------------------------------------


def _module_of(backend: object) -> str:
    return type(backend).__module__ or ""


def check_keyring_backend(
    backend: keyring.backend.KeyringBackend | None = None,
) -> keyring.backend.KeyringBackend | None:
    """The backend to store the master key in, or None when no usable keyring exists.

    Raises :class:`InsecureKeyring` for plaintext backends (keyrings.alt).
    """
    import keyring

    chosen = keyring.get_keyring() if backend is None else backend
    chainer_mod = "keyring.backends.chainer"
    if _module_of(chosen) == chainer_mod:
        chained = list(getattr(chosen, "backends", []))
        if not chained:
            return None
        chosen = chained[0]
    mod = _module_of(chosen)
    if mod == "keyrings.alt" or mod.startswith("keyrings.alt."):
        raise InsecureKeyring(
            f"keyring backend {type(chosen).__name__} ({mod}) stores secrets in plaintext"
        )
    if mod in ("keyring.backends.fail", "keyring.backends.null", chainer_mod):
        return None
    try:
        priority = float(chosen.priority)
    except Exception:  # a backend whose priority check itself fails is unusable
        log.debug("keyring backend %s: priority check failed", mod, exc_info=True)
        return None
    if priority <= 0:
        return None
    return chosen


# --- the profile's secret store -------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise KeystoreError("secrets.json is damaged (expected base64 text)")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise KeystoreError("secrets.json is damaged (bad base64)") from exc


def _read_state(profile: Profile) -> dict[str, Any] | None:
    path = profile.file(_STATE_FILE)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        state = json.loads(raw)
    except ValueError as exc:
        raise KeystoreError(f"{path} is damaged") from exc
    if not isinstance(state, dict) or state.get("version") != 1:
        raise KeystoreError(f"{path} has an unknown format")
    return state


def secret_store_mode(profile: Profile) -> StoreMode | None:
    """How the profile's master key is kept, or None if no store exists yet."""
    state = _read_state(profile)
    if state is None:
        return None
    mode = state.get("mode")
    if mode not in ("keyring", "passphrase"):
        raise KeystoreError("secrets.json names an unknown mode")
    return "keyring" if mode == "keyring" else "passphrase"


def _get_passphrase(
    reason: PassphraseReason,
    passphrase: str | bytes | None,
    callback: PassphraseCallback | None,
    env: Mapping[str, str],
) -> bytes:
    value: str | bytes | None = passphrase
    if value is None and env.get(ENV_PROFILE_PASSPHRASE):
        value = env[ENV_PROFILE_PASSPHRASE]
    if value is None and callback is not None:
        value = callback(reason)
    if value is None:
        raise SecretStoreUnavailable("no usable OS keyring and no profile passphrase given")
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if not data:
        raise UsageError("the profile passphrase must not be empty")
    return data


def _keyring_user(profile_id: str) -> str:
    return f"profile:{profile_id}"


def _create(
    profile: Profile,
    *,
    want: Literal["auto", "keyring", "passphrase"],
    backend: keyring.backend.KeyringBackend | None,
    passphrase: str | bytes | None,
    callback: PassphraseCallback | None,
    env: Mapping[str, str],
    kdf: KdfParams,
) -> SecretBox:
    profile_id = str(uuid.uuid4())
    master = os.urandom(32)
    usable = None if want == "passphrase" else check_keyring_backend(backend)
    if want == "keyring" and usable is None:
        raise SecretStoreUnavailable("no usable OS keyring for the profile's master key")
    state: dict[str, Any] = {"version": 1, "profile_id": profile_id}
    if usable is not None:
        import keyring.errors

        try:
            usable.set_password(KEYRING_SERVICE, _keyring_user(profile_id), _b64(master))
        except keyring.errors.KeyringError as exc:
            raise SecretStoreUnavailable(
                f"the OS keyring refused to store a secret: {exc}"
            ) from exc
        except Exception as exc:  # the backend's own errors (D-Bus, daemon gone): same
            log.debug("keyring set_password failed", exc_info=True)
            raise SecretStoreUnavailable(
                f"the OS keyring failed to store a secret ({type(exc).__name__})"
            ) from exc
        state.update(mode="keyring", backend=f"{_module_of(usable)}.{type(usable).__name__}")
        mode: StoreMode = "keyring"
    else:
        secret = _get_passphrase("new", passphrase, callback, env)
        salt = os.urandom(16)
        wrap_key = kdf.derive(secret, salt)
        nonce = os.urandom(_NONCE)
        wrapped = AESGCM(wrap_key).encrypt(nonce, master, _aad(f"master-key:{profile_id}"))
        state.update(
            mode="passphrase",
            kdf={"name": "scrypt", "n": kdf.n, "r": kdf.r, "p": kdf.p, "salt": _b64(salt)},
            wrapped_master_key={"alg": "AES-256-GCM", "nonce": _b64(nonce), "ct": _b64(wrapped)},
        )
        mode = "passphrase"
    atomic_write(profile.file(_STATE_FILE), json.dumps(state, indent=1).encode("utf-8"))
    log.info("created profile secret store (%s)", mode)
    return SecretBox(master, mode)


def _unlock(
    state: dict[str, Any],
    *,
    backend: keyring.backend.KeyringBackend | None,
    passphrase: str | bytes | None,
    callback: PassphraseCallback | None,
    env: Mapping[str, str],
) -> SecretBox:
    profile_id = state.get("profile_id")
    if not isinstance(profile_id, str):
        raise KeystoreError("secrets.json is damaged (no profile id)")
    if state.get("mode") == "keyring":
        usable = check_keyring_backend(backend)
        if usable is None:
            raise SecretStoreUnavailable(
                "this profile keeps its master key in the OS keyring, which is not available",
                hint="Run Sealmail in your desktop session (where the keyring is unlocked).",
            )
        import keyring.errors

        try:
            stored = usable.get_password(KEYRING_SERVICE, _keyring_user(profile_id))
        except keyring.errors.KeyringError as exc:
            raise SecretStoreUnavailable(f"the OS keyring failed: {exc}") from exc
        except Exception as exc:  # the backend's own errors (D-Bus, daemon gone): same
            log.debug("keyring get_password failed", exc_info=True)
            raise SecretStoreUnavailable(f"the OS keyring failed ({type(exc).__name__})") from exc
        if stored is None:
            raise SecretStoreUnavailable(
                "the profile's master key is missing from the OS keyring",
                hint="Use the keyring this profile was created with, or restore it.",
            )
        return SecretBox(_unb64(stored), "keyring")
    if state.get("mode") != "passphrase":
        raise KeystoreError("secrets.json names an unknown mode")
    kdf_state = state.get("kdf")
    wrapped = state.get("wrapped_master_key")
    if not isinstance(kdf_state, dict) or not isinstance(wrapped, dict):
        raise KeystoreError("secrets.json is damaged (no KDF or wrapped key)")
    if kdf_state.get("name") != "scrypt":
        raise KeystoreError("secrets.json names an unknown KDF")
    try:
        params = KdfParams(n=int(kdf_state["n"]), r=int(kdf_state["r"]), p=int(kdf_state["p"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise KeystoreError("secrets.json is damaged (KDF parameters)") from exc
    if not (2**10 <= params.n <= 2**22 and 1 <= params.r <= 32 and 1 <= params.p <= 16):
        raise KeystoreError("secrets.json has out-of-range KDF parameters")
    secret = _get_passphrase("unlock", passphrase, callback, env)
    wrap_key = params.derive(secret, _unb64(kdf_state.get("salt")))
    try:
        master = AESGCM(wrap_key).decrypt(
            _unb64(wrapped.get("nonce")),
            _unb64(wrapped.get("ct")),
            _aad(f"master-key:{profile_id}"),
        )
    except InvalidTag as exc:
        raise BadPassword("wrong profile passphrase") from exc
    return SecretBox(master, "passphrase")


def open_secret_box(
    profile: Profile,
    *,
    passphrase: str | bytes | None = None,
    passphrase_callback: PassphraseCallback | None = None,
    keyring_backend: keyring.backend.KeyringBackend | None = None,
    create: Literal["auto", "keyring", "passphrase"] = "auto",
    env: Mapping[str, str] | None = None,
    kdf: KdfParams | None = None,
) -> SecretBox:
    """Unlock the profile's master key, creating the store on first use.

    ``create`` only matters on first use: ``auto`` prefers a usable OS keyring and
    falls back to a passphrase. Raises :class:`InsecureKeyring`,
    :class:`SecretStoreUnavailable` or :class:`BadPassword`.
    """
    environ = os.environ if env is None else env
    with profile.lock():
        state = _read_state(profile)
        if state is None:
            return _create(
                profile,
                want=create,
                backend=keyring_backend,
                passphrase=passphrase,
                callback=passphrase_callback,
                env=environ,
                kdf=kdf or KdfParams(),
            )
    return _unlock(
        state,
        backend=keyring_backend,
        passphrase=passphrase,
        callback=passphrase_callback,
        env=environ,
    )
