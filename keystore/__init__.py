"""Sealmail's keystore: identities and contacts' keys, trust, validation and secrets.

Modules: ``profile`` (directory, atomic writes, lock), ``secrets`` (master key in the
OS keyring or under a profile passphrase), ``index`` (SQLite rows), ``openpgp`` and
``pgpgen`` (OpenPGP via pysequoia, gpg-compatible key generation), ``pgpedit`` (new
self-signatures on own keys: expiration set/removed, user ids), ``gnupg_backend`` (keys
of a GnuPG home via python-gnupg and gpg-agent), ``settings`` (profile settings),
``certs`` (X.509
formats), ``validate`` (S/MIME path validation), ``store`` (the :class:`Keystore`),
``wkd`` (Web Key Directory lookups), ``autocrypt`` (header parsing), ``discovery``
(WKD cache, Autocrypt peer state, harvested S/MIME certificates and capabilities,
per-address status) and ``bundle`` (the passphrase-protected identity file).
This package never imports ``client``, ``ui`` or Qt.
"""

from __future__ import annotations

__all__: list[str] = []
