"""The inner entity as the streaming protect path builds it, for tests and the fuzzer."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from client.mime import compose, stream

Rng = Callable[[int], bytes]


def cut(data: bytes, sizes: Sequence[int]) -> list[bytes]:
    """``data`` cut into pieces of the given sizes, cycling through them."""
    out, i, k = [], 0, 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out.append(data[i : i + n])
        i, k = i + n, k + 1
    return out


def streamed_inner(data: bytes, sizes: Sequence[int], *, now: datetime, rng: Rng) -> bytes | None:
    """parse_head + plan_body + finish_head + emit_body over ``data`` read in pieces (None: the
    streaming path would hand the message to the in-memory one)."""
    split = stream.split_header(stream.crlf_pieces(cut(data, sizes)), limit=8 << 20)
    if split is None:
        return None
    head = compose.parse_head(split[0], now=now, rng=rng)
    if head is None:
        return None

    def body() -> Iterator[bytes]:
        again = stream.split_header(stream.crlf_pieces(cut(data, sizes)), limit=8 << 20)
        assert again is not None
        return again[1]

    plan = compose.plan_body(head.content_block, body)
    if plan is None:
        return None
    prepared = compose.finish_head(head, encrypt=True)
    inner = prepared.inner + b"".join(compose.emit_body(plan, body()))
    if len(inner) != len(prepared.inner) + plan.length:
        raise AssertionError("the planned length differs from what was emitted")
    return inner
