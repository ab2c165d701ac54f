"""Frozen entry point of ``sealmail-gui``: the same function as the pyproject gui-script."""

from ui.app import main

raise SystemExit(main())
