"""Folder synchronisation: a sans-I/O planner and the shell that runs the plan.

Theory of operation
-------------------
:func:`plan` compares what the cache knows about a folder (UIDVALIDITY, UIDNEXT,
HIGHESTMODSEQ, message count) with what SELECT just said, and picks one :class:`Action`
from a table:

=====================================  ==============================================
cache vs server                        action
=====================================  ==============================================
nothing cached                         FULL: list UIDs, fetch every header
UIDVALIDITY differs                    RESET: drop the folder's cache, then FULL
same UIDNEXT, MODSEQ and count         UNCHANGED: nothing to fetch
otherwise                              INCREMENTAL: headers of UIDs >= cached UIDNEXT;
                                       flags changed since the cached MODSEQ (CONDSTORE),
                                       else all flags; expunges found by comparing UIDs
=====================================  ==============================================

:func:`sync_folder` runs it against an :class:`~client.transport.imap.ImapSession` and a
:class:`~client.store.cache.Cache`. The folder state is written last, so an interrupted
sync repeats work but never skips it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from client.store.cache import Cache, CachedFolder
from client.transport.imap import FolderStatus, ImapSession

__all__ = ["Action", "FolderReport", "SyncPlan", "plan", "sync_account", "sync_folder"]


class Action(enum.Enum):
    FULL = "full"
    RESET = "reset"
    INCREMENTAL = "incremental"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class SyncPlan:
    action: Action
    new_from_uid: int  # fetch headers of UIDs >= this
    flags_since: int | None  # CHANGEDSINCE modseq, or None for "all flags"


@dataclass(frozen=True)
class FolderReport:
    folder: str
    action: str
    new: int
    flag_changes: int
    expunged: int
    total: int

    def to_json(self) -> dict[str, object]:
        return {
            "folder": self.folder,
            "action": self.action,
            "new": self.new,
            "flag_changes": self.flag_changes,
            "expunged": self.expunged,
            "total": self.total,
        }


def plan(cached: CachedFolder | None, cached_count: int, server: FolderStatus) -> SyncPlan:
    if cached is None or cached.uidvalidity is None:
        return SyncPlan(Action.FULL, 1, None)
    if cached.uidvalidity != server.uidvalidity:
        return SyncPlan(Action.RESET, 1, None)
    same_modseq = server.highestmodseq is not None and cached.highestmodseq == server.highestmodseq
    if cached.uidnext == server.uidnext and cached_count == server.exists and same_modseq:
        return SyncPlan(Action.UNCHANGED, server.uidnext, None)
    flags_since = cached.highestmodseq if server.highestmodseq is not None else None
    return SyncPlan(Action.INCREMENTAL, cached.uidnext or 1, flags_since)


def sync_folder(imap: ImapSession, cache: Cache, account: str, folder: str) -> FolderReport:
    status = imap.select(folder, readonly=True)
    cached = cache.folder(account, folder)
    p = plan(cached, cache.count(account, folder), status)
    new = changes = expunged = 0
    if p.action is Action.RESET:
        cache.reset_folder(account, folder)
    if p.action in (Action.FULL, Action.RESET):
        uids = imap.uids()
        new = cache.put_headers(account, folder, imap.fetch_headers(uids))
    elif p.action is Action.INCREMENTAL:
        server_uids = imap.uids()
        known = cache.uids(account, folder)
        known_set = set(known)
        fresh = [u for u in server_uids if u >= p.new_from_uid and u not in known_set]
        new = cache.put_headers(account, folder, imap.fetch_headers(fresh))
        server_set = set(server_uids)
        gone = [u for u in known if u not in server_set]
        if gone:
            cache.remove(account, folder, gone)
            expunged = len(gone)
        old = [u for u in known if u in server_set]
        if p.flags_since is not None:
            flag_map = imap.changed_since(old, p.flags_since)
        else:
            flag_map = {u: (f, None) for u, f in imap.flags(old).items()}  # type: ignore[misc]
        if flag_map:
            cache.set_flags(account, folder, flag_map)  # type: ignore[arg-type]
            changes = len(flag_map)
    cache.set_folder_state(
        account,
        folder,
        uidvalidity=status.uidvalidity,
        uidnext=status.uidnext,
        highestmodseq=status.highestmodseq,
        exists=status.exists,
    )
    return FolderReport(
        folder, p.action.value, new, changes, expunged, cache.count(account, folder)
    )


def sync_account(imap: ImapSession, cache: Cache, account: str) -> list[FolderReport]:
    folders = imap.folders()
    cache.set_folders(account, [(f.name, f.delimiter, f.flags) for f in folders])
    return [
        sync_folder(imap, cache, account, f.name)
        for f in folders
        if "\\Noselect" not in f.flags and "\\NonExistent" not in f.flags
    ]
