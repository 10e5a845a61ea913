"""The outbox channel: each message becomes an .eml file in a folder; nothing leaves the machine.

It is the default channel, so a fresh config can run end to end with no account. One
file per idempotency key makes re-delivery harmless: sending the same message again
overwrites the same file. Each file is written by ``fsutil.atomic_write``: a crash
leaves the old file or the whole new one, never half of one, and the temporary name
(``.<name>.*.tmp``) does not end in .eml, so readers listing the outbox skip it. A
file's name starts with as much of the key as reads well on every system (Hangul
included: a Korean flow name stays in it) and ends with a hash of the whole key.

The per-file fsync stays: its result may be committed without an fsync of its own
(``sheetcrm.ledger``), so the file must already be on disk when it is, or a power cut
could leave a send marked sent whose file is gone.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import unicodedata
from pathlib import Path

from sheetcrm.channels.email import EmailBuilder
from sheetcrm.config.channels import OutboxSettings
from sheetcrm.errors import ChannelError
from sheetcrm.fsutil import atomic_write, os_reason
from sheetcrm.i18n import _
from sheetcrm.model import Delivery, Message

#: What a name keeps of the key: letters and digits of any script (a Korean flow name
#: stays readable), ``@ . _ -``. Nothing Windows reserves (``<>:"/\\|?*``, control
#: characters) is a word character, and the name never ends in a dot or a space.
_KEPT = re.compile(r"[^\w@.-]+")
_PREFIX = 40  # characters: at most 160 bytes, so the name stays under 255 everywhere


def outbox_file_name(idempotency_key: str) -> str:
    """A readable, filesystem-safe prefix of the key plus a hash that makes it unique."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    readable = unicodedata.normalize("NFC", idempotency_key)  # one spelling on every system
    prefix = _KEPT.sub("-", readable)[:_PREFIX].strip("-.")
    return f"{prefix}_{digest}.eml" if prefix else f"{digest}.eml"


def _earlier_name(idempotency_key: str) -> str:
    """The name versions before Hangul was kept gave the key (ASCII keys: the same)."""
    digest = hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest()[:32]
    prefix = re.sub(r"[^A-Za-z0-9@._-]+", "-", idempotency_key)[:_PREFIX].strip("-.")
    return f"{prefix}_{digest}.eml" if prefix else f"{digest}.eml"


class OutboxChannel:
    """Writes each message as ``<folder>/<key prefix>_<hash>.eml``."""

    redelivery_safe = True

    def __init__(self, name: str, settings: OutboxSettings, *, base_dir: Path) -> None:
        self.name = name
        self.settings = settings
        self.folder = Path(base_dir) / settings.path
        self.builder = EmailBuilder(settings)

    @classmethod
    def from_settings(cls, name: str, settings: OutboxSettings, *, base_dir: Path
                      ) -> OutboxChannel:
        """The channel for ``[channels.<name>]``; the folder is relative to ``base_dir``."""
        return cls(name, settings, base_dir=base_dir)

    def send(self, message: Message) -> Delivery:
        data, message_id = self.builder.build_bytes(message)
        path = self._path(message.idempotency_key)
        try:
            try:
                atomic_write(path, data)
            except FileNotFoundError:  # the first message, or the folder was removed
                self.folder.mkdir(parents=True, exist_ok=True)
                atomic_write(path, data)
        except OSError as exc:
            # Retrying is harmless here (same file), and a full disk may clear up.
            text = _("cannot write {path}: {reason}", path=path, reason=os_reason(exc))
            raise ChannelError(text, channel_down=True) from exc
        return Delivery(message_id=message_id, detail=str(path))

    def _path(self, idempotency_key: str) -> Path:
        """The key's file; one an earlier version wrote under its older name is the
        file written again (a send interrupted before an upgrade makes no second)."""
        path = self.folder / outbox_file_name(idempotency_key)
        if not idempotency_key.isascii():
            earlier = self.folder / _earlier_name(idempotency_key)
            if earlier != path and earlier.exists():
                return earlier
        return path

    def probe(self) -> str:
        """The folder exists or can be made, and a file can be written in it."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.folder):
                pass
        except OSError as exc:
            raise ChannelError(_("cannot write into {folder}: {reason}", folder=self.folder,
                                 reason=os_reason(exc)), channel_down=True) from exc
        return _("folder {folder} is writable", folder=self.folder)

    def close(self) -> None:
        """Nothing to release: every send opens and closes its own file."""
