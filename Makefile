# Sealmail: one Makefile, two commands a new user needs (`make run`, `make test`).
# Every target installs what it needs on a fresh Debian machine first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian packages the project uses: gpg and openssl are the interop judges; Dovecot is the
# IMAP server of the test rig and the demo; Chromium opens envelope pages in the browser
# tests; gnome-keyring + dbus give a real Secret Service for the keyring test.
# Xvfb and the xcb libraries let the Qt app run (and be screenshotted) without a screen.
DEB_PKGS := gnupg openssl chromium dovecot-imapd dovecot-lmtpd gnome-keyring dbus \
	xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
	libxkbcommon-x11-0 libxcb-cursor0 libegl1 libgl1 libfontconfig1 fonts-dejavu-core \
	desktop-file-utils libxml2-utils shared-mime-info xdg-utils libglib2.0-bin file
STAMP := $(VENV)/.installed

.PHONY: run test check lint unit bench deb setup deb-deps clean

# The app in demo mode (demo identities and a demo mailbox). Without a screen it runs
# under Xvfb and writes a screenshot instead.
run: setup
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then $(BIN)/sealmail-gui --demo; \
	else echo "no display: running under Xvfb, screenshot -> sealmail-demo.png"; \
	  xvfb-run -a $(BIN)/sealmail-gui --demo --screenshot sealmail-demo.png && echo "wrote sealmail-demo.png"; fi

test: setup check unit

setup: deb-deps $(STAMP)

deb-deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

check: setup
	$(BIN)/ruff format --check client keystore ui tests bench
	$(BIN)/ruff check client keystore ui tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The Linux installer: a frozen app (PyInstaller) in a .deb under build/deb/.
deb: setup
	packaging/linux/build-deb.sh

bench: setup
	$(BIN)/python -m bench.all $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
