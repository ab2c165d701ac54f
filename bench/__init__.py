"""Benchmarks: Sealmail against gpg, openssl and raw IMAP in the same run."""
