"""The daemon's files: created 0600 whatever the umask, a symlink in the state folder
refused (never written through), and every path the daemon guide suggests writable
inside the shipped systemd unit's sandbox.

The daemon harness (``Daemon``, the ``start`` fixture) is described in
``tests.support.daemon``.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

from sheetcrm.config import load_config
from tests.support.daemon import cli
from tests.support.sample import ROOT


def test_state_files_are_created_0600_whatever_the_umask(sample: Path, start) -> None:
    state = sample / ".sheetcrm"
    d = start("--every", "1h", "--heartbeat", str(state / "heartbeat"), umask=0)
    d.wait_runs(1)
    d.wait_for("the heartbeat", (state / "heartbeat").exists)
    assert d.terminate()[0] == 0
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in state.iterdir()}
    assert set(modes) == {"state.db", "sync.lock", "daemon.lock", "daemon.json", "heartbeat"}
    assert modes == dict.fromkeys(modes, 0o600)


def test_a_symlink_in_the_state_folder_is_refused_never_written_through(sample: Path,
                                                                         start) -> None:
    state = sample / ".sheetcrm"
    state.mkdir()
    victims: list[Path] = []

    def plant(name: str) -> None:
        victim = sample / f"victim-{name}"
        victim.write_text("precious\n", encoding="utf-8")
        (state / name).unlink(missing_ok=True)  # what an earlier start created
        (state / name).symlink_to(victim)
        victims.append(victim)

    plant("daemon.json")
    plant("heartbeat")
    d = start("--every", "1h", "--heartbeat", str(state / "heartbeat"))
    d.wait_runs(1)
    d.wait_for("both refusals",
               lambda: d.events("status_file_failed") and d.events("heartbeat_failed"))
    assert d.terminate()[0] == 0
    for event in d.events("status_file_failed") + d.events("heartbeat_failed"):
        assert "is a symbolic link" in event["error"], event
    assert (state / "daemon.json").is_symlink() and (state / "heartbeat").is_symlink()

    plant("sync.lock")  # the run lock: the run is refused and says why
    d = start("--every", "1h")
    failed = d.wait_for("the refused run", lambda: d.runs("failed"))
    assert f"{state / 'sync.lock'} is a symbolic link" in failed[0]["error"]
    assert d.terminate()[0] == 0

    plant("daemon.lock")  # the daemon's own lock: refused at start
    result = cli(sample, "run", "--every", "1h")
    assert result.returncode == 3
    assert f"{state / 'daemon.lock'} is a symbolic link" in result.stderr

    assert all(v.read_text(encoding="utf-8") == "precious\n" for v in victims)


# -- the shipped systemd unit ----------------------------------------------------------


def unit_settings(path: Path) -> dict[str, str]:
    settings = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            name, _, value = line.partition("=")
            settings[name.strip()] = value.strip()
    return settings


def test_every_path_the_daemon_guide_suggests_fits_the_units_sandbox() -> None:
    unit = unit_settings(ROOT / "deploy/sheetcrm.service")
    guide = (ROOT / "docs/daemon.md").read_text(encoding="utf-8")
    assert unit["ProtectSystem"] == "strict"  # read-only everywhere but ReadWritePaths
    writable = [Path(p) for p in unit["ReadWritePaths"].split()]
    hidden = [Path("/home"), Path("/root"), Path("/run/user")] \
        if unit["ProtectHome"] == "yes" else []
    home = Path(unit["WorkingDirectory"])  # also the sheetcrm user's home (`~`)
    config_path = Path(re.search(r"--config (\S+)", unit["ExecStart"]).group(1))
    config = load_config(ROOT / "config.toml", {})
    folder = config_path.parent

    def where(text: str) -> Path:
        path = Path(text.replace("~", str(home), 1) if text.startswith("~") else text)
        return path if path.is_absolute() else folder / path

    def under(path: Path, roots: list[Path]) -> bool:
        return any(path == root or root in path.parents for root in roots)

    # What the daemon writes: the ledger's folder, the outbox, the guide's heartbeat.
    heartbeat = re.search(r'(?m)^heartbeat = "([^"]+)"', guide).group(1)
    written = [where(config.model.state).parent, where(heartbeat),
               where(config.channels["email"].path)]  # type: ignore[attr-defined]
    # What it reads: the config, templates, and the Google key where the guide puts it.
    credentials = re.search(r'(?m)^credentials = "([^"]+)"', guide)
    assert credentials, "the guide says where the service-account key goes"
    key_env = re.search(r"(?m)^GOOGLE_APPLICATION_CREDENTIALS=\"?([^\"\n]+)", guide)
    read = [config_path, where(config.model.templates), where(credentials.group(1)),
            *([where(key_env.group(1))] if key_env else [])]
    for path in written:
        assert under(path, writable), f"{path} is read-only under the unit"
    for path in read + written:
        assert not under(path, hidden), f"{path} is hidden by ProtectHome"
        assert under(path, [home]), f"{path} is outside {home}"
    for path in re.findall(r"/srv/sheetcrm[\w./-]*", guide):
        assert under(Path(path), writable + [home]), path
