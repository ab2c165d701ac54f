"""The fuzzing engine: Hypothesis draws mutation programs, a guard runs each input.

Theory of operation
-------------------
Each target (see :mod:`tests.fuzz.targets`) has a list of *seeds* (files of
../shared/corpus and a few generated objects) and a function taking ``bytes``. Hypothesis
does not draw the input bytes directly (that is slow and blind); it draws a small
*mutation program*: which seed, then up to eight operations out of bit flips, byte
overwrites with boundary values, truncations, deletions, duplicated slices, splices with
another seed, dictionary tokens (MIME/armor/DER/JSON fragments), repeated header lines,
one huge header, N levels of nested multipart boundaries, deep JSON nesting and runs of a
byte (inputs are cut at 4 MiB). Hypothesis's generation phase does the exploring (its
choice-sequence mutator favours structurally "interesting" programs); this engine is
mutation-based and seed-guided and collects no coverage feedback. Its coverage-guided
partner is :mod:`tests.fuzz.guided` (atheris/libFuzzer over the same targets and seeds).

Every input runs under :class:`Guard`: a ``SIGALRM`` interval timer raises :class:`Hang`
after ``time_limit`` seconds (Python code and most C loops that check signals), and
``faulthandler.dump_traceback_later`` is the backstop for a C loop that never returns
(it prints every thread's stack and exits the process with a failure). The outcome of an
input is one of

* ``ok`` / ``refused`` -- returned, or raised a ``SealmailError`` subclass (the contract);
* ``masked`` -- (``mime`` only, which calls ``open_message`` below its boundary) raised
  ``ValueError``/``TypeError``/``KeyError``/``IndexError``/``RecursionError``, which the
  production boundary ``recipes.open_raw`` turns into ``MalformedMessage``: not a
  user-visible failure, but a parser bug worth a look. For every other target these are
  crashes;
* ``crash`` -- any other exception (including pysequoia's ``PanicException``, a
  ``BaseException``): the invariant is broken;
* ``hang`` -- the per-input time limit was hit.

Crashes, hangs and masked exceptions are kept (deduplicated by exception type and the
innermost frame of project code) with the smallest input seen, and written to
``--out`` by the runner for replay (``python -m tests.fuzz.run --replay FILE``).
"""

from __future__ import annotations

import faulthandler
import hashlib
import signal
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from client.errors import SealmailError

__all__ = [
    "MASKED",
    "Finding",
    "Guard",
    "Hang",
    "Stats",
    "fuzz",
    "mutate",
    "run_one",
]

MASKED = (ValueError, TypeError, KeyError, IndexError, RecursionError)
REPO = Path(__file__).resolve().parents[2]
MAX_INPUT = 4 << 20  # mutated inputs are cut at 4 MiB (limits are tested in test_bombs.py)


class Hang(BaseException):
    """The per-input time limit was hit."""


class Guard:
    """A per-input wall-clock limit (SIGALRM) with a hard faulthandler backstop."""

    def __init__(self, seconds: float, *, hard_factor: float = 10.0) -> None:
        self.seconds = seconds
        self.hard = max(seconds * hard_factor, seconds + 30.0)
        self._old: object = None
        self._started = 0.0

    def _fire(self, signum: int, frame: FrameType | None) -> None:
        # A SIGALRM that arrives early (left pending by an earlier test's timer) is not
        # a hang: re-arm for the time that is really left.
        left = self.seconds - (time.monotonic() - self._started)
        if left > 0.05:
            signal.setitimer(signal.ITIMER_REAL, left)
            return
        raise Hang(f"input ran longer than {self.seconds:g} s")

    def __enter__(self) -> Guard:
        self._started = time.monotonic()
        self._old = signal.signal(signal.SIGALRM, self._fire)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        faulthandler.dump_traceback_later(self.hard, exit=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, self._old)  # type: ignore[arg-type]


@dataclass
class Finding:
    kind: str  # crash | hang | masked
    key: str
    summary: str
    trace: str
    data: bytes
    count: int = 1


@dataclass
class Stats:
    target: str
    inputs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    findings: dict[str, Finding] = field(default_factory=dict)
    seconds: float = 0.0
    slowest: float = 0.0

    @property
    def crashes(self) -> int:
        return sum(1 for f in self.findings.values() if f.kind == "crash")

    @property
    def hangs(self) -> int:
        return sum(1 for f in self.findings.values() if f.kind == "hang")

    def line(self) -> str:
        o = self.outcomes
        return (
            f"{self.target:9} inputs={self.inputs:7d} ok={o['ok']:6d} refused={o['refused']:6d} "
            f"masked={o['masked']:4d} crash={o['crash']:3d} hang={o['hang']:3d} "
            f"distinct-crashes={self.crashes} distinct-hangs={self.hangs} "
            f"time={self.seconds:7.1f}s slowest={self.slowest:5.2f}s"
        )


def _where(tb: TracebackType | None) -> str:
    """The innermost frame in project code (client/, keystore/), else the innermost."""
    frames = traceback.extract_tb(tb)
    own = [f for f in frames if "/client/" in f.filename or "/keystore/" in f.filename]
    f = (own or frames or [None])[-1]
    if f is None:
        return "?"
    return f"{Path(f.filename).name}:{f.lineno}"


def run_one(
    func: Callable[[bytes], object],
    data: bytes,
    stats: Stats,
    *,
    time_limit: float,
    masked: tuple[type[BaseException], ...] = (),
) -> str:
    """Run one input under the guard; record and return its outcome."""
    stats.inputs += 1
    start = time.perf_counter()
    kind = "ok"
    exc: BaseException | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Guard(time_limit):
                func(data)
    except SealmailError as e:
        kind = "refused"
        stats.errors[type(e).__name__] += 1
    except Hang as e:
        kind, exc = "hang", e
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt | SystemExit):
            raise
        kind, exc = ("masked" if isinstance(e, masked) else "crash"), e
    elapsed = time.perf_counter() - start
    stats.slowest = max(stats.slowest, elapsed)
    stats.outcomes[kind] += 1
    if exc is not None:
        key = f"{kind}:{type(exc).__name__}@{_where(exc.__traceback__)}"
        old = stats.findings.get(key)
        if old is None:
            stats.findings[key] = Finding(
                kind=kind,
                key=key,
                summary=f"{type(exc).__name__}: {str(exc)[:300]}",
                trace="".join(traceback.format_exception(exc)),
                data=data,
            )
        else:
            old.count += 1
            if len(data) < len(old.data):
                old.data = data
    return kind


# -- mutations --------------------------------------------------------------------------------

INTERESTING_BYTES = b'\x00\x01\x7f\x80\xff\r\n-:=; "\\{[0'
TOKENS: tuple[bytes, ...] = (
    b"\r\n",
    b"\r\n\r\n",
    b"\n.\n",
    b"--",
    b"\r\n--b\r\n",
    b"\r\n--b--\r\n",
    b"Content-Type: multipart/mixed; boundary=b\r\n\r\n",
    b'Content-Type: multipart/signed; protocol="application/pgp-signature"; boundary=b\r\n',
    b'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary=b\r\n',
    b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"=?utf-8?b?AAAA?=",
    b"=?x-unknown?q?=FF?=",
    b"; boundary*0*=utf-8''%FF; boundary*1=x",
    b"-----BEGIN PGP MESSAGE-----\r\n\r\n",
    b"-----END PGP MESSAGE-----",
    b"-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\n",
    b"-----BEGIN PGP SIGNATURE-----\r\n",
    b"=AAAA\r\n",
    b"\x30\x80",
    b"\x30\x84\xff\xff\xff\xff",
    b"\x04\x82\xff\xff",
    b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02",
    b"\x00\x00",
    b"\xa0\x80",
    b"\xc0",
    b"\x89SMENV\r\n\x01\x01",
    b'{"a":',
    b"[",
    b"]",
    b'"',
    b"1e999999",
    b"-0",
    b"\xef\xbb\xbf",
    b"\\ud800",
    b"null",
    b'"version": 1',
)


OPS = (
    "flip",
    "set",
    "truncate",
    "delete",
    "dup",
    "splice",
    "token",
    "headers",
    "huge",
    "nest",
    "jsonnest",
    "run",
)


def _header_line(data: bytes, pos: int) -> bytes:
    """A header-ish line of ``data`` near ``pos`` (or a made-up one)."""
    start = data.rfind(b"\n", 0, pos) + 1
    end = data.find(b"\n", start)
    line = data[start : end + 1 if end >= 0 else len(data)]
    return line if b":" in line else b"X-Fuzz: header\r\n"


def mutate(
    seed: bytes, program: Sequence[tuple[int, int, int, int]], seeds: Sequence[bytes]
) -> bytes:
    """Apply a mutation program (op index, a, b, c) to ``seed``."""
    data = bytearray(seed)
    for op_index, a, b, c in program:
        op = OPS[op_index % len(OPS)]
        n = len(data)
        pos = a % (n + 1)
        if op == "flip" and n:
            data[pos % n] ^= 1 << (b % 8)
        elif op == "set" and n:
            data[pos % n] = INTERESTING_BYTES[b % len(INTERESTING_BYTES)]
        elif op == "truncate":
            del data[pos:]
        elif op == "delete":
            del data[pos : pos + 1 + b % 256]
        elif op == "dup":
            chunk = bytes(data[pos : pos + 1 + b % 4096])
            data[pos:pos] = chunk * (1 + c % 8)
        elif op == "splice" and seeds:
            other = seeds[b % len(seeds)]
            opos = c % (len(other) + 1)
            data[pos:] = other[opos:]
        elif op == "token":
            data[pos:pos] = TOKENS[b % len(TOKENS)]
        elif op == "headers":
            line = _header_line(bytes(data), pos)[:998]
            if not line.endswith(b"\n"):
                line += b"\r\n"
            data[0:0] = line * (1 + b % 5000)
        elif op == "huge":
            data[0:0] = b"X-Huge: " + b"A" * (1 + b % 300_000) + b"\r\n"
        elif op == "nest":
            depth = 1 + b % 200
            boundary = b"b" if c % 2 else b"b%d"
            out = bytearray()
            for i in range(depth):
                bnd = boundary.replace(b"%d", str(i).encode()) if b"%d" in boundary else boundary
                out += b"Content-Type: multipart/mixed; boundary=" + bnd + b"\r\n\r\n--" + bnd
                out += b"\r\n"
            out += data
            data = out
        elif op == "jsonnest":
            depth = 1 + b % 5000
            opener = b"[" if c % 2 else b'{"a":'
            data[pos:pos] = opener * depth
        elif op == "run":
            data[pos:pos] = bytes([INTERESTING_BYTES[b % len(INTERESTING_BYTES)]]) * (
                1 + c % 100_000
            )
        if len(data) > MAX_INPUT:
            del data[MAX_INPUT:]
    return bytes(data)


_U32 = st.integers(min_value=0, max_value=2**32 - 1)
PROGRAM = st.lists(
    st.tuples(st.integers(min_value=0, max_value=len(OPS) - 1), _U32, _U32, _U32), max_size=8
)


def fuzz(
    name: str,
    func: Callable[[bytes], object],
    seeds: Sequence[bytes],
    *,
    examples: int,
    time_limit: float = 5.0,
    seed: int | None = None,
    progress: Callable[[Stats], None] | None = None,
    progress_every: int = 1000,
    masked: tuple[type[BaseException], ...] = (),
) -> Stats:
    """Run every seed, then ``examples`` mutated inputs through ``func``; never raises on a
    finding (they are in the returned :class:`Stats`)."""
    if not seeds:
        raise ValueError(f"target {name} has no seeds")
    stats = Stats(name)
    for s in seeds:  # the unmutated seeds first
        run_one(func, s, stats, time_limit=time_limit, masked=masked)
    began = time.perf_counter()

    @settings(
        max_examples=max(examples, 1),
        deadline=None,
        database=None,
        derandomize=seed is None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(
        pick=st.integers(min_value=0, max_value=len(seeds) - 1),
        program=PROGRAM,
        raw=st.one_of(st.just(b""), st.binary(max_size=64)),
    )
    def body(pick: int, program: list[tuple[int, int, int, int]], raw: bytes) -> None:
        data = mutate(seeds[pick], program, seeds) + raw
        run_one(func, data, stats, time_limit=time_limit, masked=masked)
        if progress is not None and stats.inputs % progress_every == 0:
            stats.seconds = time.perf_counter() - began
            progress(stats)

    if seed is not None:
        from hypothesis import seed as hyp_seed

        body = hyp_seed(seed)(body)
    body()
    stats.seconds = time.perf_counter() - began
    return stats


def save_findings(stats: Stats, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for f in stats.findings.values():
        digest = hashlib.sha256(f.data).hexdigest()[:12]
        path = out / f"{stats.target}-{f.kind}-{digest}.bin"
        path.write_bytes(f.data)
        (path.with_suffix(".txt")).write_text(f"{f.key} (x{f.count})\n{f.summary}\n\n{f.trace}")
        written.append(path)
    return written


def print_findings(stats: Stats, file: object = sys.stdout) -> None:
    for f in sorted(stats.findings.values(), key=lambda f: (f.kind, f.key)):
        print(f"  {f.kind:6} x{f.count:<5} {f.key}  {f.summary[:160]}", file=file)  # type: ignore[call-overload]
