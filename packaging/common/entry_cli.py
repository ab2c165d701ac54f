"""Frozen entry point of ``sealmail`` (the CLI): the same function as the pyproject script."""

from client.cli import main

raise SystemExit(main())
