"""Fault injection: disk full, read-only profile, keyring unavailable, network cut mid-upload.

Every case drives the real ``sealmail`` CLI (or the real outbox) against real resources and
checks two things: the failure is a typed ``SealmailError`` (``error:`` + ``hint:``, a
non-zero exit code, no traceback, not the "internal error" bug path), and nothing is lost
(the message is still in the outbox or delivered exactly once; no half-written files).
Helpers are in :mod:`tests.faults.faultkit`.
"""
