"""A real IMAP server on 127.0.0.1 (pymap's in-memory backend, run as a process), and
the mail that arrives in a sender's mailbox.

``ImapServer`` starts ``pymap`` on a free port with one user (and, given a certificate,
STARTTLS), waits until it accepts connections, and stops it. A test puts mail in a
folder with ``append`` (a real IMAP APPEND, with the flags and the arrival time the
mail would have had) and looks at the folder again with ``snapshot``, through its
own session, to see what reading it changed.

``sample(name, ...)`` is one of the mails in ``mails/``, written in the formats the
mail systems send them: delivery reports from Postfix (a failure, a delay warning,
and the failure after days of retrying that is still a temporary one), Exim, Exchange
Online and Gmail (a failure and a delay), a plain-text qmail bounce that is no
RFC 3464 report, auto-replies (Outlook in Korean, a Korean webmail that only its
subject gives away, Gmail's vacation responder, an ``X-Autoreply``), a customer's
reply from Apple Mail, and the operator's own mail. ``$message_id``, ``$recipient``,
``$original`` (the message sheetcrm sent, as the report returns it) and the dates
are filled in.
"""

from __future__ import annotations

import email
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from string import Template
from typing import Self

from imap_tools import MailBoxUnencrypted

from tests.support.journeys import World

USER, PASSWORD = "crm@example.com", "mailbox-password-1"
MAILS = Path(__file__).with_name("mails")


def sample(name: str, *, at: datetime, recipient: str = "", message_id: str = "",
           original: bytes = b"") -> bytes:
    """The mail ``mails/<name>.eml`` about ``original`` (a message sheetcrm sent), as CRLF bytes.

    ``at`` is when the mail was written; the report's arrival date is an hour before.
    Every call makes a mail of its own (its own Message-ID).
    """
    text = original.decode("utf-8", "surrogateescape").replace("\r\n", "\n")
    headers = text.split("\n\n", 1)[0]
    filled = Template((MAILS / f"{name}.eml").read_text(encoding="utf-8")).substitute(
        id=uuid.uuid4().hex[:20], date=format_datetime(at),
        arrival=format_datetime(at - timedelta(hours=1)), recipient=recipient,
        message_id=message_id, original=text.rstrip("\n"), original_headers=headers)
    return filled.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8",
                                                                        "surrogateescape")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Held:
    """One mail as the server holds it."""

    uid: int
    message_id: str
    flags: frozenset[str]


class ImapServer:
    """``with ImapServer() as imap:`` a pymap process on ``imap.port``, one user."""

    def __init__(self, *, cert: Path | None = None, key: Path | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.tls = cert is not None
        args = [sys.executable, "-c", "from pymap.main import main; main()",
                "--host", self.host, "--port", str(self.port)]
        if cert is not None and key is not None:
            args += ["--cert", str(cert), "--key", str(key)]
        self._args = [*args, "dict", "--demo-user", USER, "--demo-password", PASSWORD]
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        self._process = subprocess.Popen(self._args, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.monotonic() + 15
        while time.monotonic() < end:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                raise RuntimeError(f"pymap exited at start: {err[-2000:]}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("pymap did not start within 15 s")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=5)
            if self._process.stderr is not None:
                self._process.stderr.close()
            self._process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _session(self) -> MailBoxUnencrypted:
        box = MailBoxUnencrypted(self.host, self.port, timeout=10)
        if self.tls:
            import ssl

            box.client.starttls(ssl._create_unverified_context())
        return box.login(USER, PASSWORD, initial_folder=None)

    def new_folder(self) -> str:
        """A folder of its own for one test (the server lives for the whole module)."""
        name = f"T{uuid.uuid4().hex[:10]}"
        with self._session() as box:
            box.folder.create(name)
        return name

    def append(self, folder: str, mails: list[tuple[bytes, datetime, tuple[str, ...]]]
               ) -> None:
        """Deliver ``(raw mail, arrival time, flags)`` into ``folder``, in order."""
        with self._session() as box:
            for raw, arrived, flags in mails:
                box.append(raw, folder, dt=arrived, flag_set=list(flags))

    def snapshot(self, folder: str) -> list[Held]:
        """Every mail in ``folder`` with its flags, read without changing any."""
        with self._session() as box:
            box.folder.set(folder, readonly=True)
            return [Held(int(m.uid or 0), str(m.obj.get("Message-ID", "")),
                         frozenset(m.flags) - {"\\Recent"})
                    for m in box.fetch(mark_seen=False, headers_only=True)]


# -------------------------------------------------------------- a world with a mailbox


def mailbox_section(port: int, folder: str, *, password: str = PASSWORD) -> str:
    return (f'\n[mailbox]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
            f'username = "{USER}"\npassword = "{password}"\nfolder = "{folder}"\n'
            'timeout = 10\n')


def add_mailbox(world: World, section: str) -> None:
    config = world.folder / "config.toml"
    config.write_text(config.read_text(encoding="utf-8") + section, encoding="utf-8")


def sent(world: World) -> dict[str, bytes]:
    """The latest message to each address, as it left (the outbox's .eml files)."""
    latest: dict[str, bytes] = {}
    for path in sorted((world.folder / "outbox").glob("*.eml")):
        raw = path.read_bytes()
        latest[str(email.message_from_bytes(raw)["To"])] = raw
    return latest


def header(raw: bytes, name: str) -> str:
    return str(email.message_from_bytes(raw)[name])


