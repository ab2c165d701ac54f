"""Render the app icon (sealmail.svg) to PNG at the sizes the desktops use.

    python packaging/common/render_icons.py OUTDIR 16 32 48 128 256 512

writes OUTDIR/<size>.png. Uses Qt's SVG renderer from the build venv (PySide6); runs
without a display (offscreen platform).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

SVG = Path(__file__).resolve().parent / "sealmail.svg"


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    _app = QGuiApplication([])
    renderer = QSvgRenderer(str(SVG))
    for size in (int(s) for s in argv[1:]):
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        if not image.save(str(out / f"{size}.png")):
            raise SystemExit(f"could not write {out / f'{size}.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
