"""Sealmail MIME: building and parsing protected messages, header protection (RFC 9788)."""

__all__: list[str] = []
