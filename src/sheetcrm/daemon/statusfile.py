"""``daemon.json`` beside the ledger: whether the daemon is alive and when it runs next.

The daemon replaces it after every tick and when it stops; ``sheetcrm status``
reads it (``app.status``, which names the file and reads it, below the daemon). It
is replaced atomically, so a reader never sees half a file, and created 0600, never
through a symbolic link (``lock.open_private``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sheetcrm.fsutil import atomic_write, refuse_link


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically, so a reader never sees half a file.

    The file is 0600; a symbolic link at ``path`` (or at the temporary file) is
    refused with StateFileError, never replaced nor written through.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    refuse_link(path)
    text = json.dumps(data, ensure_ascii=False, indent=1, default=str) + "\n"
    atomic_write(path, text.encode("utf-8"))
