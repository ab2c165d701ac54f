"""IMAP benchmark: a 10,000-message folder in a real Dovecot (tests/servers rig).

Measures, in one run: MULTIAPPEND of N messages; a full header sync through Sealmail
(imapclient's connection + SQLite cache) vs a raw imaplib ``UID FETCH`` of the same items
(``header_items``) in the same chunks on a second connection; and listing the folder from
the local cache. Usage::

    .venv/bin/python -m bench.imap [--messages 10000] [--rounds 5] [--profile]

The raw and Sealmail runs alternate (median of ``--rounds``) after one untimed-for-ratio
warm-up pass, so neither side gets Dovecot's cold header cache or a quieter moment. On a
shared, loaded machine the wall-clock ratio swings widely, so the client's CPU time (this
process, all threads) for each side is reported too (``*_cpu_s``): it moves much less
with load and shows what the Sealmail side adds to the same FETCH.
Sealmail's sync fetches the next chunk in a worker thread while the caller stores this
one; ``--profile`` runs the same steps (imaplib ``UID FETCH``, ``parse_header_fetch``,
``Cache.put_headers``) one after the other under cProfile, so one profile shows them all.
"""

from __future__ import annotations

import argparse
import cProfile
import imaplib
import io
import json
import pstats
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from client.store.cache import Cache
from client.transport.imap import (
    CHUNK,
    HeaderRecord,
    ImapSession,
    connect,
    header_items,
    parse_header_fetch,
)
from client.transport.sync import sync_folder
from tests.servers.rig import MailRig

USER = "alice@example.test"


def _messages(n: int) -> list[bytes]:
    return [
        (
            f"From: Sender {i} <s{i}@example.test>\r\nTo: {USER}\r\nSubject: bench message {i}\r\n"
            f"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <bench-{i}@example.test>\r\n"
            f"Content-Type: text/plain\r\n\r\nbody {i}\r\n"
        ).encode()
        for i in range(n)
    ]


def _profile(s: ImapSession, cache: Cache) -> str:
    """cProfile of one header sync's steps, run serially (see the module docstring)."""
    s.select("Bench", readonly=True)
    spec = f"({' '.join(header_items(s.condstore))})"

    def records() -> Iterator[HeaderRecord]:
        uids = s.uids()
        for i in range(0, len(uids), CHUNK):
            _typ, data = s.client._imap.uid("FETCH", ",".join(map(str, uids[i : i + CHUNK])), spec)
            yield from parse_header_fetch(data, need_modseq=s.condstore)

    prof = cProfile.Profile()
    prof.enable()
    cache.put_headers(USER, "Bench", records())
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
    return out.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5, help="alternating raw/sync rounds")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the steps")
    args = ap.parse_args()
    out: dict[str, object] = {"messages": args.messages}
    with MailRig.start() as rig:
        pw = rig.password(USER)
        s = connect(
            "127.0.0.1",
            rig.imaps_port,
            security="tls",
            username=USER,
            password=pw,
            ca_file=str(rig.ca_file),
        )
        s.create_folder("Bench")
        t = time.perf_counter()
        msgs = _messages(args.messages)
        for i in range(0, len(msgs), 1000):
            s.multiappend("Bench", msgs[i : i + 1000])
        out["multiappend_s"] = round(time.perf_counter() - t, 3)

        # raw imaplib: the same items, the same UID chunks, on its own connection
        raw = imaplib.IMAP4_SSL("127.0.0.1", rig.imaps_port, ssl_context=rig.ssl_context())
        raw.login(USER, pw)
        raw.select("Bench", readonly=True)
        items = f"({' '.join(header_items(s.condstore))})"  # exactly what Sealmail fetches

        def raw_fetch() -> float:
            cpu = time.process_time()
            t = time.perf_counter()
            _typ, data = raw.uid("SEARCH", "ALL")
            uids = [int(x) for x in data[0].split()]
            n = 0
            for i in range(0, len(uids), CHUNK):
                chunk = ",".join(str(u) for u in uids[i : i + CHUNK])
                _typ, resp = raw.uid("FETCH", chunk, items)
                n += sum(1 for r in resp if isinstance(r, tuple))
            assert n == args.messages, n
            wall = time.perf_counter() - t
            raw_cpu.append(time.process_time() - cpu)
            return wall

        # the first pass fills Dovecot's header cache; it is reported, not compared
        raw_cpu: list[float] = []
        out["raw_imaplib_fetch_cold_s"] = round(raw_fetch(), 3)
        raw_cpu.clear()
        raws: list[float] = []
        syncs: list[float] = []
        sync_cpu: list[float] = []
        with tempfile.TemporaryDirectory() as d:
            for r in range(args.rounds):  # alternate, so load changes hit both sides
                raws.append(raw_fetch())
                cache = Cache(Path(d) / f"cache{r}.sqlite")
                cpu = time.process_time()
                t = time.perf_counter()
                rep = sync_folder(s, cache, USER, "Bench")
                syncs.append(time.perf_counter() - t)
                sync_cpu.append(time.process_time() - cpu)
                assert rep.total == args.messages, rep
                cache.close()
            out["raw_imaplib_fetch_s"] = round(statistics.median(raws), 3)
            out["sealmail_full_sync_s"] = round(statistics.median(syncs), 3)
            out["ratio_sync_vs_raw"] = round(statistics.median(syncs) / statistics.median(raws), 2)
            out["raw_imaplib_fetch_all_s"] = [round(x, 3) for x in raws]
            out["sealmail_full_sync_all_s"] = [round(x, 3) for x in syncs]
            out["raw_cpu_s"] = round(statistics.median(raw_cpu), 3)
            out["sealmail_sync_cpu_s"] = round(statistics.median(sync_cpu), 3)
            cache = Cache(Path(d) / "cache0.sqlite")
            t = time.perf_counter()
            rep2 = sync_folder(s, cache, USER, "Bench")
            out["sealmail_resync_unchanged_s"] = round(time.perf_counter() - t, 3)
            cache.close()
            cache = Cache(Path(d) / "cache0.sqlite")  # a fresh process-like open, offline
            t = time.perf_counter()
            rows = cache.list(USER, "Bench")
            out["cache_list_ms"] = round((time.perf_counter() - t) * 1000, 1)
            assert len(rows) == args.messages
            out["resync_action"] = rep2.action
            cache.close()
            if args.profile:
                cache = Cache(Path(d) / "profile.sqlite")
                print(_profile(s, cache))
                cache.close()
        raw.logout()
        s.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
