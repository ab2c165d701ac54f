"""What every platform's PyInstaller spec shares: modules, data files and exclusions.

Imported by ``packaging/{linux,windows,macos}/sealmail*.spec`` (PyInstaller runs spec files as
Python with ``SPECPATH`` set; they put this folder on ``sys.path``). Kept in one place so the
three bundles contain the same program.
"""

from __future__ import annotations

import re
from pathlib import Path

from PyInstaller.utils.hooks import collect_data_files, collect_submodules, copy_metadata

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent  # the repository
ENTRY_CLI = str(HERE / "entry_cli.py")
ENTRY_GUI = str(HERE / "entry_gui.py")

# Modules loaded by name at run time, which the import scanner cannot see.
HIDDEN_IMPORTS = sorted(
    {
        *collect_submodules("client"),  # client.cli imports client.commands.<name>
        *collect_submodules("keystore"),
        *collect_submodules("ui"),
        "simple_icd_10_cm",  # located with importlib.util.find_spec (code lists)
        "aiosmtpd",  # the demo's submission server, probed with find_spec
        "hyperscan",  # the scanner's keyword pass (imported in a try: block)
        *collect_submodules("dns.rdtypes"),  # dnspython loads record types by name
        "keyring.backends.SecretService",
        "keyring.backends.chainer",
        "keyring.backends.fail",
        "keyring.backends.null",
    }
)


def datas() -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    # the envelope page (package data of client.envelope) and the policy JSON Schema
    out += collect_data_files("client", includes=["envelope/page.*", "policy/*.json"])
    # Qt translations of the app, when any were made (sealmail_<lang>.qm)
    out += collect_data_files("ui", includes=["i18n/*.qm"])
    # ICD-10-CM: only the code list the policy scanner reads (0.8 MB), not the 9.7 MB
    # tabular XML that simple_icd_10_cm's own API would parse (never imported).
    out += collect_data_files("simple_icd_10_cm", includes=["data/code-list-*.txt"])
    out += collect_data_files("certifi")
    # the Public Suffix List that MX-based autoconfig reads (shipped in the package: offline)
    out += collect_data_files("publicsuffixlist", includes=["public_suffix_list.dat"])
    # importlib.metadata look-ups: the version shown by --version comes from pyproject
    # through the installed distribution's metadata; keyring finds backends by entry point.
    out += copy_metadata("sealmail")
    out += copy_metadata("keyring")
    return out


# Qt modules the app does not use (it imports QtCore, QtGui and QtWidgets only), plus
# stdlib and third-party parts never reached at run time.
QT_UNUSED = [
    "Qt3DAnimation",
    "Qt3DCore",
    "Qt3DExtras",
    "Qt3DInput",
    "Qt3DLogic",
    "Qt3DRender",
    "QtBluetooth",
    "QtCharts",
    "QtConcurrent",
    "QtDataVisualization",
    "QtDesigner",
    "QtGraphs",
    "QtHelp",
    "QtHttpServer",
    "QtLocation",
    "QtMultimedia",
    "QtMultimediaWidgets",
    "QtNetwork",
    "QtNetworkAuth",
    "QtNfc",
    "QtOpenGL",
    "QtOpenGLWidgets",
    "QtPdf",
    "QtPdfWidgets",
    "QtPositioning",
    "QtPrintSupport",
    "QtQml",
    "QtQuick",
    "QtQuick3D",
    "QtQuickControls2",
    "QtQuickWidgets",
    "QtRemoteObjects",
    "QtScxml",
    "QtSensors",
    "QtSerialBus",
    "QtSerialPort",
    "QtSpatialAudio",
    "QtSql",
    "QtStateMachine",
    "QtSvg",
    "QtSvgWidgets",
    "QtTest",
    "QtTextToSpeech",
    "QtUiTools",
    "QtWebChannel",
    "QtWebEngineCore",
    "QtWebEngineQuick",
    "QtWebEngineWidgets",
    "QtWebSockets",
    "QtWebView",
    "QtXml",
]
EXCLUDES = [
    *(f"PySide6.{m}" for m in QT_UNUSED),
    "tkinter",
    "_tkinter",
    "unittest",
    "pydoc_data",
    "lib2to3",
    "idlelib",
    "test",
    "distutils",
    "setuptools",
    "pkg_resources",
    "pip",
    "IPython",
    "matplotlib",
    "numpy",
    "PIL",
    "pytest",
    "_pytest",
    "hypothesis",
    "playwright",
    "mypy",
]

# Qt plugins and shared libraries that QtCore/QtGui/QtWidgets on a desktop never load.
# PyInstaller's PySide6 hook collects whole plugin categories; these go:
UNUSED_PARTS = (
    # libraries of Qt modules we exclude
    "Qt6Quick",
    "Qt6Qml",
    "Qt6Network",
    "Qt6Pdf",
    "Qt6Svg",
    "Qt6VirtualKeyboard",
    "Qt6WebEngine",
    "Qt6Multimedia",
    "Qt6OpenGLWidgets",
    "Qt6EglFS",
    "Qt6EglFs",
    # embedded-device platforms (framebuffer, KMS/EGLFS, VNC, Vulkan display) and evdev input
    "platforms/libqeglfs",
    "platforms/libqlinuxfb",
    "platforms/libqvnc",
    "platforms/libqvkkhrdisplay",
    "platforms/libqminimalegl",
    "egldeviceintegrations/",
    "plugins/generic/",
    # the GTK3 platform theme drags in GTK, GDK, cairo, pango and ATK (~20 MB); the
    # xdg-desktop-portal theme still gives native file dialogs on GNOME and KDE
    "platformthemes/libqgtk3",
    # plugins of excluded modules
    "libqpdf",
    "libqsvg",
    "networkinformation/",
    "plugins/tls/",
    "qmltooling/",
    "/qml/",
    "virtualkeyboard",
    "sqldrivers/",
    "printsupport/",
    # image formats the app never reads (it shows PNG/JPEG/GIF/ICO from Qt's core)
    "imageformats/libqicns",
    "imageformats/libqtga",
    "imageformats/libqtiff",
    "imageformats/libqwbmp",
    "imageformats/libqwebp",
)
#: Qt's own translations (PyInstaller keeps qt_* and qtbase_*): not the Qt Help ones.
_QT_TRANSLATION = re.compile(r"PySide6/Qt/translations/qt_help_")

# Linux: libraries Debian packages provide (declared in the .deb's Depends, computed by
# build-deb.sh from what the bundle links). Taken from the system, not bundled, so they
# match the installed Mesa/libglvnd and X server.
LINUX_SYSTEM_LIBS = re.compile(
    r"^(libX[a-zA-Z0-9-]*|libxcb[a-z0-9-]*|libxkbcommon[a-z0-9-]*|libfontconfig|libfreetype"
    r"|libdbus-1|libglib-2\.0|libgthread-2\.0|libgobject-2\.0|libgio-2\.0|libgmodule-2\.0"
    r"|libpng16|libexpat|libbrotli[a-z]*|libbz2|libz|libuuid|libffi|libpcre2[a-z0-9-]*"
    r"|libsystemd|libgcrypt|libgpg-error|liblzma|liblz4|libzstd|libcap|libmount|libblkid"
    r"|libselinux|libstdc\+\+|libgcc_s|libwayland-[a-z]+|libdrm|libgbm|libmd|libbsd)\.so"
)


def prune(
    toc: list[tuple[str, str, str]], *, system_libs: re.Pattern[str] | None = None
) -> list[tuple[str, str, str]]:
    """Drop unused Qt parts from a binaries/datas TOC, then every bundled shared library
    that nothing left in the bundle links (the closure over ELF/Mach-O/PE imports)."""
    from PyInstaller.depend.bindepend import get_imports

    kept = []
    for entry in toc:
        dest = entry[0].replace("\\", "/")
        if any(part in dest for part in UNUSED_PARTS) or _QT_TRANSLATION.match(dest):
            continue
        if system_libs is not None and "/" not in dest and system_libs.match(dest):
            continue
        kept.append(entry)
    # libraries at the top of the bundle are there as dependencies of something: keep only
    # those still reachable from the extension modules, Qt libraries and plugins we kept
    top = {
        e[0]: e
        for e in kept
        if e[2] == "BINARY" and "/" not in e[0].replace("\\", "/") and ".so" in e[0]
    }
    roots = [e for e in kept if e[0] not in top and e[2] in ("BINARY", "EXTENSION")]
    needed: set[str] = set()
    queue = [e[1] for e in roots]
    while queue:
        src = queue.pop()
        try:
            names = get_imports(src)
        except Exception as exc:  # not a binary PyInstaller can read: its needs are unknown
            print(f"prune: cannot read the imports of {src}: {exc}")
            names = []
        for name, _resolved in names:
            base = name.rsplit("/", 1)[-1]
            if base in top and base not in needed:
                needed.add(base)
                queue.append(top[base][1])
    needed |= {name for name in top if name.startswith("libpython")}  # the bootloader's
    return [e for e in kept if e[0] not in top or e[0] in needed]
