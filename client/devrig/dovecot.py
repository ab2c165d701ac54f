"""A real Dovecot (IMAP + LMTP) for tests and the demo, configured from scratch per start.

Theory of operation
-------------------
:class:`Dovecot` writes a self-contained configuration into a fresh directory (no
``/etc/dovecot``): users from a passwd-file, mail in ``sdbox`` under the directory,
IMAP with STARTTLS and IMAPS, and LMTP, all on loopback ports chosen free at start-up,
TLS with a certificate from the test CA (:mod:`client.devrig.pki`), the anvil auth penalty
and the auth failure delay turned off. It runs in the foreground (``dovecot -F -c conf``)
as the calling user — or, when that is root, as ``nobody`` (everything Dovecot touches is
owned by ``nobody``), so the configuration is always the rootless one.

``start()`` returns only when every listener answers with its greeting; if the process
dies first, the error and the end of Dovecot's log are raised in the caller. If Dovecot is
not installed, :class:`DovecotMissing` says how to install it — tests never skip.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from client.devrig.pki import CertPair

__all__ = ["INSTALL_HINT", "Dovecot", "DovecotMissing", "DovecotUser", "free_port"]

INSTALL_HINT = (
    "Dovecot is needed by the mail tests and the demo servers and is missing. Install it with "
    "`sudo apt-get install -y dovecot-imapd dovecot-lmtpd` (or run `make setup`)."
)
START_TIMEOUT = 30.0


class DovecotMissing(AssertionError):
    """Dovecot is not installed: the test run fails with the install command."""


@dataclass(frozen=True)
class DovecotUser:
    name: str  # the login and the e-mail address
    password: str


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (for servers that cannot bind 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _find_dovecot() -> str:
    exe = shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot") else None
    )
    if exe is None or not os.path.exists("/usr/lib/dovecot/lmtp"):
        raise DovecotMissing(INSTALL_HINT)
    return exe


@dataclass
class Dovecot:
    """One Dovecot instance. Use as a context manager or call start()/stop()."""

    cert: CertPair
    users: list[DovecotUser] = field(default_factory=list)
    host: str = "127.0.0.1"
    imap_port: int = 0
    imaps_port: int = 0
    lmtp_port: int = 0
    directory: Path | None = None
    _proc: subprocess.Popen[bytes] | None = None
    _owner: tuple[int, int] | None = None

    # ------------------------------------------------------------------ set-up
    def _write_config(self) -> Path:
        d = self.directory
        assert d is not None
        (d / "run").mkdir()
        (d / "state").mkdir()
        (d / "home").mkdir()
        passwd = "".join(f"{u.name}:{{PLAIN}}{u.password}::::::\n" for u in self.users)
        (d / "passwd").write_text(passwd)
        shutil.copy(self.cert.cert, d / "server.crt")
        shutil.copy(self.cert.key, d / "server.key")
        user = pwd.getpwuid(self._owner[0] if self._owner else os.getuid())
        conf = f"""
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap lmtp
listen = {self.host}
default_internal_user = {user.pw_name}
default_login_user = {user.pw_name}
default_internal_group = {_group_name(user.pw_gid)}
mail_location = sdbox:~/mail
mail_uid = {user.pw_uid}
mail_gid = {user.pw_gid}
first_valid_uid = 0
first_valid_gid = 0
ssl = yes
ssl_cert = <{d}/server.crt
ssl_key = <{d}/server.key
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_failure_delay = 0
auth_cache_size = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {d}/passwd
  default_fields = home={d}/home/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Archive {{
    special_use = \\Archive
    auto = subscribe
  }}
}}
protocol imap {{
  mail_max_userip_connections = 1000
  imap_idle_notify_interval = 1 secs
}}
protocol lmtp {{
  postmaster_address = postmaster@example.test
}}
lmtp_save_to_detail_mailbox = no
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {self.host}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {self.host}
    port = {self.lmtp_port}
  }}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  unix_listener auth-client {{
    mode = 0666
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0600
  }}
  unix_listener stats-writer {{
    mode = 0600
  }}
}}
"""
        path = d / "dovecot.conf"
        path.write_text(conf)
        return path

    @property
    def auth_socket(self) -> Path:
        assert self.directory is not None
        return self.directory / "run" / "auth-client"

    def start(self) -> Dovecot:
        exe = _find_dovecot()
        self._owner = None
        if os.getuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self._owner = (nobody.pw_uid, nobody.pw_gid)
        self.directory = Path(tempfile.mkdtemp(prefix="sm-dovecot-"))
        os.chmod(self.directory, 0o755)  # noqa: S103 - Dovecot runs as nobody
        self.imap_port = self.imap_port or free_port()
        self.imaps_port = self.imaps_port or free_port()
        self.lmtp_port = self.lmtp_port or free_port()
        conf = self._write_config()
        if self._owner is not None:
            for root, dirs, files in os.walk(self.directory):
                for n in [*dirs, *files]:
                    os.chown(os.path.join(root, n), *self._owner)
            os.chown(self.directory, *self._owner)
        kwargs: dict[str, object] = {}
        if self._owner is not None:
            kwargs = {"user": self._owner[0], "group": self._owner[1], "extra_groups": []}
        self._proc = subprocess.Popen(  # type: ignore[call-overload]
            [exe, "-F", "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
            **kwargs,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _log_tail(self) -> str:
        out = ""
        if self.directory is not None and (self.directory / "dovecot.log").exists():
            out = (self.directory / "dovecot.log").read_text(errors="replace")[-3000:]
        return out

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        pending = {"imap": self.imap_port, "lmtp": self.lmtp_port, "imaps": self.imaps_port}
        while pending:
            if self._proc.poll() is not None:
                early = (
                    self._proc.stdout.read().decode(errors="replace") if self._proc.stdout else ""
                )
                raise RuntimeError(
                    f"dovecot exited with {self._proc.returncode} during start-up:\n"
                    f"{early}\n{self._log_tail()}"
                )
            for name, port in list(pending.items()):
                if _answers(self.host, port, tls=name == "imaps"):
                    del pending[name]
            if pending and time.monotonic() > deadline:
                raise TimeoutError(
                    f"dovecot did not open {sorted(pending)} within {START_TIMEOUT}s "
                    f"(a slow machine? raise START_TIMEOUT):\n{self._log_tail()}"
                )
            if pending:
                time.sleep(0.02)  # polling a port, not waiting for luck

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        if self._proc is not None and self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def restart(self, while_down: Callable[[], object] | None = None) -> None:
        """Stop the server process and start it again: same ports, configuration and mail.

        Its clients see their connections end (``* BYE``); ``while_down`` runs while
        nothing listens. Returns when every listener answers again.
        """
        assert self._proc is not None and self.directory is not None, "not started"
        # like a service manager's restart: the whole process tree, not just the master
        # (its imap processes would otherwise keep serving their clients for a while)
        children = _children(self._proc.pid)
        self._proc.terminate()
        for pid in children:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        if while_down is not None:
            while_down()
        kwargs: dict[str, object] = {}
        if self._owner is not None:
            kwargs = {"user": self._owner[0], "group": self._owner[1], "extra_groups": []}
        self._proc = subprocess.Popen(  # type: ignore[call-overload]
            [_find_dovecot(), "-F", "-c", str(self.directory / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
            **kwargs,
        )
        self._wait_ready()

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc; empty where there is none)."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    stat = (entry / "stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry.name))
    return out


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


def _answers(host: str, port: int, *, tls: bool) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            if tls:
                import ssl

                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                with ctx.wrap_socket(s) as t:
                    t.settimeout(2)
                    return t.recv(64).startswith(b"* OK")
            s.settimeout(2)
            return s.recv(64)[:1] in (b"*", b"2")
    except OSError:
        return False
    with contextlib.suppress(Exception):
        pass
    return False
