"""OpenPGP message recipes: decrypt to the inner packet stream, encrypt SEIPDv1+MDC.

Theory of operation: pysequoia 0.1.35 cannot reach the signed packets inside gpg's
compressed sign+encrypt messages, cannot read BZIP2, and writes SEIPDv2 for its own
keys, which GnuPG 2.2 cannot read. This layer, built on ``cryptography`` primitives,
fills exactly those gaps and nothing more; signing and signature verification stay
with pysequoia::

    decrypt(data, secret_keys=..., passwords=...)  ->  DecryptedStream
        dearmor -> packets -> [PKESK|SKESK]* + one SEIPD v1/v2 | OCB packet
        -> session key candidates (PKESK with each matching subkey, SKESK x password)
        -> decrypt fully in memory, check MDC/AEAD  (nothing returned before this)
        -> decompress (ZIP/ZLIB/BZIP2, nested, bounded) -> [OPS] Literal [Sig]
    stream.packets  ->  pysequoia.verify(bytes=stream.packets, store=...)

    encrypt(inner_packets, recipients=..., passwords=...)  ->  binary message
        inner_packets = literal_packet(data) or pysequoia.sign(..., INLINE, armor=False)
        -> PKESK v3 per chosen subkey (pgprecipients) + SKESK v4 per password
        -> SEIPDv1 with MDC                       (the caller armors: enarmor())
    encrypt_chunks(...) is the same output in ~1 MiB pieces (one pass hashes the MDC and
    encrypts each piece), for armor_chunks(): a 50 MB message is never copied whole.

Errors: no usable key or password -> ``DecryptionFailed`` (one text for every cause);
integrity failure -> ``TamperedMessage``; password-only messages with a wrong
password -> ``BadPassword``; no MDC -> ``UnauthenticatedCiphertext``; limits ->
``MessageTooLarge``; damaged framing -> ``MalformedMessage``; recognised but
unimplemented features -> ``UnsupportedMessage``.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from client.crypto.pgpalgos import CipherInfo, cipher_by_name
from client.crypto.pgparmor import dearmor, enarmor
from client.crypto.pgpdata import (
    DataResult,
    decompress,
    decrypt_data_packet,
    seipd_v1_chunks,
    seipd_v1_length,
    seipd_v1_stream,
)
from client.crypto.pgpkeys import SecretKey, UnlockedKey, load_secret_keys
from client.crypto.pgppackets import (
    Packet,
    Reader,
    Tag,
    packet_header,
    packet_tags,
    parse_packets,
    partial_packet,
    serialize_packet,
)
from client.crypto.pgprecipients import all_encryption_subkeys
from client.crypto.pgpsession import (
    PKESK,
    SKESK,
    SessionKey,
    build_pkesk_v3,
    build_skesk_v4,
    parse_pkesk,
    parse_skesk,
    pkesk_session_key,
    skesk_session_key,
)
from client.errors import (
    BadPassword,
    DecryptionFailed,
    MalformedMessage,
    MessageTooLarge,
    NotEncrypted,
    TamperedMessage,
    UnsupportedMessage,
    UsageError,
)

__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "MAX_COMPRESSION_DEPTH",
    "DecryptedStream",
    "Literal",
    "dearmor",
    "decrypt",
    "enarmor",
    "encrypt",
    "encrypt_chunks",
    "encrypt_stream",
    "literal_packet",
    "parse_literal",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_OUTPUT = 256 * 1024 * 1024
MAX_COMPRESSION_DEPTH = 8
_FAIL = "the message could not be decrypted"
_SESSION_TAGS = frozenset({Tag.PKESK, Tag.SKESK})
_DATA_TAGS = frozenset({Tag.SEIPD, Tag.AEAD, Tag.SED})
_IGNORED = frozenset({Tag.MARKER, Tag.PADDING})
_PLAIN_TAGS = frozenset({Tag.LITERAL, Tag.COMPRESSED, Tag.ONE_PASS_SIGNATURE, Tag.SIGNATURE})
_WRITE_CIPHERS = frozenset({"AES-128", "AES-192", "AES-256"})


@dataclass(frozen=True, slots=True)
class Literal:
    """A parsed Literal Data packet."""

    fmt: bytes
    filename: bytes
    date: int
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class DecryptedStream:
    """What :func:`decrypt` found. ``packets`` is the decrypted, decompressed stream
    (e.g. OPS + Literal + Signature) that ``pysequoia.verify(bytes=...)`` accepts."""

    packets: bytes = field(repr=False)
    literal: bytes = field(repr=False)
    filename: str
    literal_format: str
    literal_date: int
    cipher: str
    integrity: str  # "MDC" | "AEAD-OCB" | "AEAD-GCM"
    compression: str | None  # outermost algorithm ("ZIP", "ZLIB", "BZIP2"), None if none
    recipient_key_ids: tuple[str, ...]  # hex key IDs named by the PKESKs ("0"*16 = hidden)
    decrypted_with: str  # fingerprint (hex) of the subkey used, or "password"
    signed: bool
    signature_packets: bytes = field(default=b"", repr=False)  # the Signature packets only


def literal_packet(data: bytes, filename: bytes = b"", fmt: bytes = b"b", date: int = 0) -> bytes:
    """A serialised Literal Data packet."""
    if len(fmt) != 1 or len(filename) > 255 or not 0 <= date < 2**32:
        raise UsageError("invalid literal packet parameters")
    body = fmt + bytes([len(filename)]) + filename + date.to_bytes(4, "big") + data
    return serialize_packet(Tag.LITERAL, body)


def parse_literal(body: bytes) -> Literal:
    r = Reader(body, "literal data packet")
    fmt = r.take(1)
    filename = r.take(r.u8())
    date = r.u32()
    return Literal(fmt, filename, date, r.rest())


# -- decryption -----------------------------------------------------------------------------


def _split_message(packets: list[Packet]) -> tuple[list[Packet], Packet]:
    """Session-key packets, then the one encrypted data packet."""
    session: list[Packet] = []
    data: Packet | None = None
    for packet in packets:
        if packet.tag in _IGNORED:
            continue
        if data is not None:
            raise MalformedMessage("data after the encrypted data packet")
        if packet.tag in _SESSION_TAGS:
            session.append(packet)
        elif packet.tag in _DATA_TAGS:
            data = packet
        elif packet.tag in _PLAIN_TAGS:
            raise NotEncrypted("the OpenPGP message is not encrypted")
        else:
            raise MalformedMessage(f"unexpected packet {packet.tag} in an encrypted message")
    if data is None:
        raise MalformedMessage("no encrypted data packet in the message")
    return session, data


@dataclass
class _Attempts:
    """Why candidates failed; decides the one error the caller sees."""

    key_matched: bool = False
    bad_key_passphrase: bool = False
    password_tried: bool = False
    integrity_failed_key: bool = False
    integrity_failed_password: bool = False
    unsupported: UnsupportedMessage | None = None


def _passphrases(key_passphrase: bytes | Sequence[bytes] | None) -> list[bytes | None]:
    if key_passphrase is None:
        return [None]
    if isinstance(key_passphrase, bytes | bytearray):
        return [bytes(key_passphrase)]
    return list(key_passphrase) or [None]


def _unlock(
    key: SecretKey,
    passphrases: list[bytes | None],
    cache: dict[bytes, UnlockedKey],
    attempts: _Attempts,
) -> UnlockedKey | None:
    fpr = key.public.fingerprint
    if fpr in cache:
        return cache[fpr]
    for passphrase in passphrases if key.locked else [None]:
        try:
            cache[fpr] = key.unlock(passphrase)
            return cache[fpr]
        except BadPassword:
            attempts.bad_key_passphrase = True
        except UnsupportedMessage as exc:
            log.debug("cannot unlock key %s: %s", fpr.hex(), exc)
            return None
    return None


def _candidates(
    pkesks: list[PKESK],
    skesks: list[SKESK],
    keys: list[SecretKey],
    passphrases: list[bytes | None],
    passwords: Sequence[bytes],
    attempts: _Attempts,
) -> Iterator[SessionKey]:
    cache: dict[bytes, UnlockedKey] = {}
    for pkesk in pkesks:
        for key in keys:
            pub = key.public
            if pkesk.wildcard:
                pass
            elif pkesk.fingerprint:
                if pub.fingerprint != pkesk.fingerprint:
                    continue
            elif pub.key_id != pkesk.key_id:
                continue
            attempts.key_matched = True
            unlocked = _unlock(key, passphrases, cache, attempts)
            if unlocked is None:
                continue
            try:
                yield pkesk_session_key(pkesk, unlocked)
            except DecryptionFailed:
                continue
            except UnsupportedMessage as exc:  # e.g. an exotic KDF; another packet may do
                attempts.unsupported = attempts.unsupported or exc
    for skesk in skesks:
        for password in passwords:
            attempts.password_tried = True
            try:
                yield skesk_session_key(skesk, password)
            except DecryptionFailed:
                continue
            except UnsupportedMessage as exc:
                attempts.unsupported = attempts.unsupported or exc


def _parse_session_packets(session: list[Packet]) -> tuple[list[PKESK], list[SKESK], list[str]]:
    pkesks: list[PKESK] = []
    skesks: list[SKESK] = []
    key_ids: list[str] = []
    for packet in session:
        try:
            if packet.tag == Tag.PKESK:
                pkesk = parse_pkesk(packet.body)
                pkesks.append(pkesk)
                key_ids.append((pkesk.key_id or bytes(8)).hex())
            else:
                skesks.append(parse_skesk(packet.body))
        except UnsupportedMessage as exc:  # another recipient's exotic packet: skip it
            log.debug("skipping a session key packet: %s", exc)
    return pkesks, skesks, key_ids


def _decrypt_with_candidates(
    data: Packet, candidates: Iterator[SessionKey], attempts: _Attempts
) -> tuple[DataResult, SessionKey]:
    for candidate in candidates:
        try:
            return decrypt_data_packet(data.tag, data.body, candidate), candidate
        except TamperedMessage:
            if candidate.source == "password":
                attempts.integrity_failed_password = True
            else:
                attempts.integrity_failed_key = True
    if attempts.integrity_failed_key:
        raise TamperedMessage("the message failed its integrity check")
    if attempts.unsupported is not None:
        raise attempts.unsupported
    if attempts.password_tried:
        raise BadPassword("the password does not open this message")
    if attempts.bad_key_passphrase:
        raise BadPassword("the passphrase of the secret key is wrong or missing")
    raise DecryptionFailed(_FAIL)


def _flatten(data: bytes, budget: list[int], depth: int, names: list[str]) -> list[Packet]:
    """Parse ``data`` and replace compressed packets by their (parsed) content."""
    out: list[Packet] = []
    for packet in parse_packets(data):
        if packet.tag != Tag.COMPRESSED:
            out.append(packet)
            continue
        if depth >= MAX_COMPRESSION_DEPTH:
            raise MessageTooLarge("compressed data nested too deeply")
        inner, name = decompress(packet.body, budget[0])
        budget[0] -= len(inner)
        names.append(name)
        out.extend(_flatten(inner, budget, depth + 1, names))
    return out


def _inner_message(box: list[bytes], max_output: int) -> tuple[list[Packet], Literal, str | None]:
    """Parse the decrypted stream taken out of ``box`` (emptied, so the caller's full-size
    plaintext is freed as soon as it has been parsed)."""
    names: list[str] = []
    flat = _flatten(box.pop(), [max_output], 0, names)
    packets = [p for p in flat if p.tag not in _IGNORED]
    del flat
    literals = [p for p in packets if p.tag == Tag.LITERAL]
    for packet in packets:
        if packet.tag in _SESSION_TAGS | _DATA_TAGS:
            raise UnsupportedMessage("nested encrypted messages are not supported")
        if packet.tag not in (Tag.LITERAL, Tag.ONE_PASS_SIGNATURE, Tag.SIGNATURE):
            raise MalformedMessage(f"unexpected packet {packet.tag} inside the encrypted message")
    if len(literals) != 1:
        raise MalformedMessage("an OpenPGP message must contain exactly one literal packet")
    head = Reader(literals[0].body, "literal data packet")
    fmt, filename = head.take(1), head.take(head.u8())
    literal = Literal(fmt, filename, head.u32(), b"")  # data: sliced later, once
    return packets, literal, (names[0] if names else None)


def decrypt(
    data: bytes,
    *,
    secret_keys: Sequence[bytes] = (),
    passwords: Sequence[bytes] = (),
    key_passphrase: bytes | Sequence[bytes] | None = None,
    max_output: int = DEFAULT_MAX_OUTPUT,
    span: tuple[int, int] | None = None,
) -> DecryptedStream:
    """Decrypt an OpenPGP message (armored or binary) to its inner packet stream.

    ``span``: the message is ``data[start:end]`` (a MIME part's body in the buffer of the
    whole mail), read where it lies rather than copied out first.

    ``secret_keys`` are serialised TSKs (``bytes(pysequoia.Tsk)``, ``gpg
    --export-secret-keys``, armored or not); ``key_passphrase`` unlocks protected ones
    (one passphrase or several to try). ``passwords`` open SKESK (``gpg -c``) messages.
    """
    if isinstance(passwords, bytes | str) or isinstance(secret_keys, bytes | str):
        raise UsageError("secret_keys and passwords are sequences of bytes")
    binary = dearmor(data, span=span)
    if len(binary) > max_output:
        raise MessageTooLarge("the encrypted message exceeds the size limit")
    session, data_packet = _split_message(parse_packets(binary))
    del binary  # the packets hold their own copies
    pkesks, skesks, key_ids = _parse_session_packets(session)
    keys = load_secret_keys(secret_keys)
    attempts = _Attempts()
    candidates = _candidates(
        pkesks, skesks, keys, _passphrases(key_passphrase), passwords, attempts
    )
    result, used = _decrypt_with_candidates(data_packet, candidates, attempts)
    del data_packet
    # Only authenticated plaintext reaches this point (MDC/AEAD checked above). From here
    # on at most two full-size copies live at once: parsed packets -> serialised stream ->
    # literal data sliced from it.
    cipher, integrity = result.cipher, result.integrity
    box = [result.plaintext]
    del result
    packets, literal, compression = _inner_message(box, max_output)
    signed = any(p.tag != Tag.LITERAL for p in packets)
    signature_packets = _serialize_all([p for p in packets if p.tag == Tag.SIGNATURE])
    stream, literal_at = _serialize_all(packets), 0
    for p in packets:
        header_len = len(packet_header(p.tag, len(p.body)))
        if p.tag == Tag.LITERAL:
            literal_at += header_len + 6 + len(literal.filename)
            literal_end = literal_at + len(p.body) - 6 - len(literal.filename)
            break
        literal_at += header_len + len(p.body)
    del packets
    return DecryptedStream(
        packets=stream,
        signature_packets=signature_packets,
        literal=stream[literal_at:literal_end],
        filename=literal.filename.decode("utf-8", "replace"),
        literal_format=literal.fmt.decode("latin-1"),
        literal_date=literal.date,
        cipher=cipher,
        integrity=integrity,
        compression=compression,
        recipient_key_ids=tuple(key_ids),
        decrypted_with=used.source,
        signed=signed,
    )


def _serialize_all(packets: list[Packet]) -> bytes:
    """The packets re-serialised, copied once (not once per packet and again to join)."""
    pieces: list[bytes] = []
    for p in packets:
        pieces += (packet_header(p.tag, len(p.body)), p.body)
    return b"".join(pieces)


# -- encryption -----------------------------------------------------------------------------


def _check_inner(inner_packets: bytes) -> None:
    try:
        tags = packet_tags(inner_packets)  # framing only: no copy of a 50 MB literal
    except MalformedMessage as exc:
        raise UsageError("inner_packets must be an OpenPGP packet stream") from exc
    if not tags or any(t not in _PLAIN_TAGS for t in tags):
        raise UsageError(
            "inner_packets must be literal/compressed/signature packets "
            "(use literal_packet() or pysequoia.sign(..., armor=False))"
        )


def encrypt(
    inner_packets: bytes,
    *,
    recipients: Sequence[bytes] = (),
    passwords: Sequence[bytes] = (),
    cipher: str = "AES-256",
    rng: Callable[[int], bytes] = os.urandom,
    now: datetime | None = None,
) -> bytes:
    """Encrypt an inner packet stream as PKESK v3 / SKESK v4 + SEIPDv1 with MDC (binary).

    ``recipients`` are serialised certificates; the subkeys used are chosen as
    described in :mod:`client.crypto.pgprecipients`. RSA padding randomness comes from
    OpenSSL; everything else (session key, ephemeral ECDH keys, salts, prefix) from
    ``rng``.
    """
    return b"".join(
        encrypt_chunks(
            inner_packets,
            recipients=recipients,
            passwords=passwords,
            cipher=cipher,
            rng=rng,
            now=now,
        )
    )


def encrypt_chunks(
    inner_packets: bytes,
    *,
    recipients: Sequence[bytes] = (),
    passwords: Sequence[bytes] = (),
    cipher: str = "AES-256",
    rng: Callable[[int], bytes] = os.urandom,
    now: datetime | None = None,
) -> Iterator[bytes]:
    """:func:`encrypt`, as pieces of at most ~1 MiB (feed them to
    :func:`~client.crypto.pgparmor.armor_chunks` or a file). Every check and the
    session-key packets happen before the first piece is returned."""
    _check_inner(inner_packets)
    info, session_key, head = _session_head(recipients, passwords, cipher, rng, now)
    head.append(packet_header(Tag.SEIPD, seipd_v1_length(len(inner_packets), info.algo_id)))
    body = seipd_v1_chunks(inner_packets, info.algo_id, session_key, rng)
    return itertools.chain((b"".join(head),), body)


def encrypt_stream(
    inner_pieces: Iterable[bytes],
    *,
    recipients: Sequence[bytes] = (),
    passwords: Sequence[bytes] = (),
    cipher: str = "AES-256",
    rng: Callable[[int], bytes] = os.urandom,
    now: datetime | None = None,
) -> Iterator[bytes]:
    """:func:`encrypt` of an inner packet stream that arrives in pieces and whose length
    is not known in advance (the SEIPD packet gets partial body lengths). The caller
    vouches that the pieces form literal/compressed/signature packets. Every check and
    the session-key packets happen before this returns."""
    info, session_key, head = _session_head(recipients, passwords, cipher, rng, now)
    body = partial_packet(Tag.SEIPD, seipd_v1_stream(inner_pieces, info.algo_id, session_key, rng))
    return itertools.chain((b"".join(head),), body)


def _session_head(
    recipients: Sequence[bytes],
    passwords: Sequence[bytes],
    cipher: str,
    rng: Callable[[int], bytes],
    now: datetime | None,
) -> tuple[CipherInfo, bytes, list[bytes]]:
    """Checks, the session key and its PKESK/SKESK packets."""
    if isinstance(recipients, bytes) or isinstance(passwords, bytes | str):
        raise UsageError("recipients and passwords are sequences of bytes")
    if not recipients and not passwords:
        raise UsageError("encrypt needs at least one recipient or password")
    info = cipher_by_name(cipher)
    if info.name not in _WRITE_CIPHERS:
        raise UsageError(f"Sealmail writes only {sorted(_WRITE_CIPHERS)}, not {cipher}")
    session_key = rng(info.key_size)
    if len(session_key) != info.key_size:
        raise UsageError("rng returned the wrong number of octets")
    head = [
        serialize_packet(Tag.PKESK, build_pkesk_v3(pub, info.algo_id, session_key, rng))
        for pub in all_encryption_subkeys(recipients, now=now)
    ]
    head += [
        serialize_packet(Tag.SKESK, build_skesk_v4(pw, info.algo_id, session_key, rng))
        for pw in passwords
    ]
    return info, session_key, head
