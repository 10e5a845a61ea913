"""docs/gsheets.md's advice on the service-account key holds for the shipped daemon unit.

The unit (deploy/sheetcrm.service) sandboxes the daemon: ``ProtectHome=yes`` makes
/home, /root and /run/user inaccessible, ``PrivateTmp=yes`` gives it its own /tmp, and
``~`` is the service user's home, not the reader's. A key file suggested in any of
those places is "not found" for the daemon, so every path the page suggests is
checked against the unit as shipped.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "sheetcrm.service"
DOC = ROOT / "docs" / "gsheets.md"

# systemd.exec(5)
HIDDEN_BY_PROTECT_HOME = ("/home", "/root", "/run/user")
PRIVATE_BY_PRIVATE_TMP = ("/tmp", "/var/tmp")


def service_settings() -> dict[str, str]:
    """The unit's [Service] settings (the last one wins, as in systemd)."""
    settings: dict[str, str] = {}
    section = ""
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            name, _, value = line.partition("=")
            settings[name.strip()] = value.strip()
    return settings


def suggested_key_paths(text: str) -> list[str]:
    """Every file path the page suggests for a key: ``*.json`` paths with a folder."""
    found = re.findall(r"(?<![\w/.:-])(~?/?[\w.-]+(?:/[\w.-]+)+\.json)\b", text)
    return [path for path in dict.fromkeys(found) if not path.startswith(("http", "//"))]


def under(path: str, folders: tuple[str, ...]) -> bool:
    return any(PurePosixPath(path).is_relative_to(folder) for folder in folders)


def test_every_key_path_the_docs_suggest_is_readable_inside_the_units_sandbox() -> None:
    service = service_settings()
    assert service["ProtectHome"] == "yes" and service["PrivateTmp"] == "yes"
    paths = suggested_key_paths(DOC.read_text(encoding="utf-8"))
    assert paths, "the page suggests no place for the key file"
    for path in paths:
        assert not path.startswith("~"), f"{path}: the operator's home, hidden from the daemon"
        resolved = path if path.startswith("/") else f"{service['WorkingDirectory']}/{path}"
        assert not under(resolved, HIDDEN_BY_PROTECT_HOME), f"{path}: hidden by ProtectHome"
        assert not under(resolved, PRIVATE_BY_PRIVATE_TMP), f"{path}: private /tmp"
        assert under(resolved, (service["WorkingDirectory"],)), (
            f"{path}: outside the folder the unit and docs/daemon.md keep sheetcrm's files in")


def test_the_docs_make_the_key_the_units_user_s_alone() -> None:
    user = service_settings()["User"]
    text = DOC.read_text(encoding="utf-8")
    assert re.search(rf"install -m 600 -o {user} -g {user} ", text)
    assert "ProtectHome=yes" in text  # the reason is given, not only the rule


def test_the_path_finder_sees_the_paths_people_write() -> None:
    text = ('credentials = "~/.config/sheetcrm/service-account.json"\n'
            "export GOOGLE_APPLICATION_CREDENTIALS=/home/me/key.json\n"
            "a file like `sheetcrm-123456-abcdef.json` from https://example.com/a/b.json")
    assert suggested_key_paths(text) == ["~/.config/sheetcrm/service-account.json",
                                         "/home/me/key.json"]
