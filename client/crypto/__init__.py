"""Sealmail crypto: recipes (smime, pgp) over the CMS and OpenPGP layers."""

__all__: list[str] = []
