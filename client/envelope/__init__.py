"""Password envelopes: create them, open them (and every other encrypted attachment).

Modules: :mod:`.format` (the versioned container, sans I/O), :mod:`.page` (the HTML
page), :mod:`.create`, :mod:`.open` (kind detection and opening), :mod:`.vendors`
(portal recognition), :mod:`.passwords` (speakable passwords), :mod:`.output` (saving
opened files, all or nothing). The format is specified in ``docs/ENVELOPE-FORMAT.md``.
"""

__all__: list[str] = []
