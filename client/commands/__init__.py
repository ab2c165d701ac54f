"""Sub-commands of the ``sealmail`` CLI, one module per group.

Each module has ``register(sub)`` that adds its parser(s) to the top-level sub-parsers and
sets ``func`` on each leaf parser. :mod:`client.cli` lists the modules in
``COMMAND_MODULES``; shared helpers (passphrases, input/output, JSON) are in
:mod:`client.commands.common`.
"""

__all__: list[str] = []
