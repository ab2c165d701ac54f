"""The real app as a process: ``sealmail-gui --demo --screenshot`` writes a PNG and exits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QImage

REPO = Path(__file__).resolve().parents[2]


def test_demo_screenshot(tmp_path: Path) -> None:
    png = tmp_path / "main.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "SEALMAIL_TIMING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "ui.app", "--profile", str(tmp_path / "p"), "--demo",
         "--screenshot", str(png)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "cold start to first paint" in proc.stderr
    image = QImage(str(png))
    assert image.width() >= 1000 and image.height() >= 600


def test_html_sanitiser_keeps_only_cid_images() -> None:
    from client.mime.render import sanitize_html

    out = sanitize_html(
        '<p style="background:url(http://x/a)" onclick="x()">Hi<img src="https://t.example/p.png">'
        '<img src="cid:logo@x"><a href="https://phish.example">link</a>'
        '<img srcset="http://a/1.png 1x"><script>alert(1)</script></p>'
        "<style>@import url(http://x/s.css)</style>"
    )
    assert "http" not in out and "script" not in out and "onclick" not in out
    assert 'src="cid:logo@x"' in out and ">link</a>" in out


def test_cold_start_to_first_paint_is_printed(tmp_path: Path) -> None:
    """A fresh profile without an account: the real app as a process, time to first paint.

    The figure is printed (issue 8's goal is <= 1 s); the test checks only that the app
    painted its window, saved the screenshot and exited cleanly.
    """
    png = tmp_path / "empty.png"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "SEALMAIL_TIMING": "1",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    figures = []
    for _ in range(3):  # the first run also fills the OS file cache
        proc = subprocess.run(
            [sys.executable, "-m", "ui.app", "--profile", str(tmp_path / "p"),
             "--screenshot", str(png)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        line = next(x for x in proc.stderr.splitlines() if x.startswith("cold start"))
        figures.append(int(line.split()[-2]))
    assert QImage(str(png)).width() >= 1000
    print(f"\ncold start to first paint (ms), three runs: {figures}")
