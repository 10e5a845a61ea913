"""The filesystem mechanisms written once: atomic replace, private state files, the run lock.

Durability is checked by watching the real ``os.fsync`` and ``os.replace`` calls go by
(they still run): which inode was fsynced, and in what order against the rename and
the folder's fsync. Windows is stood in for by a Python that cannot import ``fcntl``.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sheetcrm.channels.base import Message
from sheetcrm.channels.outbox import OutboxChannel, OutboxSettings
from sheetcrm.daemon import write_json
from sheetcrm.errors import ExitStatus, LockedError
from sheetcrm.fsutil import (
    RunLock,
    StateFileError,
    atomic_write,
    lock_held,
    open_private,
    probe,
)
from sheetcrm.model import CellUpdate
from sheetcrm.table.csv import CsvTable

NO_FCNTL = "import sys; sys.modules['fcntl'] = None\n"  # `import fcntl` raises ImportError


def python(code: str, *, cwd: Path | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def leftovers(folder: Path, keep: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != keep)


@pytest.fixture
def umask_zero() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# -- without fcntl (a stand-in for Windows) --------------------------------------------------


def test_the_command_line_imports_without_fcntl() -> None:
    result = python(NO_FCNTL + "import sheetcrm.cli, sheetcrm.daemon, sheetcrm.fsutil\n"
                    "assert 'fcntl' not in sys.modules or sys.modules['fcntl'] is None")
    assert result.returncode == 0, result.stderr


def test_plan_on_the_sample_works_without_fcntl(sample: Path) -> None:
    code = NO_FCNTL + ("from sheetcrm.cli import main\n"
                       "main(['--now', '2026-11-23T10:00', '--json', 'plan'])")
    result = python(code, cwd=sample)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert summary["rows_read"] == 26 and summary["due"] > 0 and summary["row_errors"] == 6


def test_a_csv_write_without_fcntl_falls_back_and_lands(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes(b"id,status\r\n1,new\r\n2,new\r\n")
    code = NO_FCNTL + textwrap.dedent(f"""
        from sheetcrm.model import CellUpdate
        from sheetcrm.table.csv import CsvTable
        report = CsvTable({str(path)!r}).write("id", [CellUpdate("2", "status", "sent")])
        assert report.cells_written == 1, report
    """)
    result = python(code)
    assert result.returncode == 0, result.stderr
    assert path.read_bytes() == b"id,status\r\n1,new\r\n2,sent\r\n"
    assert leftovers(tmp_path, "customers.csv") == []


# -- atomic_write ------------------------------------------------------------------------------


def test_atomic_write_replaces_the_whole_file_0600_whatever_the_umask(
        tmp_path: Path, umask_zero: None) -> None:
    path = tmp_path / "daemon.json"
    path.write_bytes(b"old content that is longer than the new one")
    path.chmod(0o644)
    atomic_write(path, b"new")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    atomic_write(path, b"newer", mode=0o640)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert leftovers(tmp_path, "daemon.json") == []


def test_atomic_write_replaces_a_symlink_and_never_writes_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    link = tmp_path / "out.eml"
    link.symlink_to(victim)
    atomic_write(link, b"message")
    assert not link.is_symlink() and link.read_bytes() == b"message"
    assert victim.read_bytes() == b"precious"


def test_a_failed_rename_leaves_what_was_there_and_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "inside").write_bytes(b"kept")
    with pytest.raises(OSError):
        atomic_write(target, b"data")  # a file cannot replace a folder
    assert (target / "inside").read_bytes() == b"kept"
    assert leftovers(tmp_path, "taken") == []


WRITER = r"""
import sys
from pathlib import Path
from sheetcrm.fsutil import atomic_write
path = Path(sys.argv[1])
print("ready", flush=True)
n = 0
while True:
    n += 1
    atomic_write(path, bytes([n % 256]) * 300_000)
"""


def test_a_reader_and_a_killed_writer_only_ever_see_whole_versions(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    atomic_write(path, b"\0" * 300_000)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        seen = set()
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            data = path.read_bytes()
            assert len(data) == 300_000 and data == data[:1] * 300_000
            seen.add(data[0])
    finally:
        proc.send_signal(signal.SIGKILL)  # mid-write, most likely
        proc.wait(10)
    data = path.read_bytes()
    assert len(data) == 300_000 and data == data[:1] * 300_000
    assert len(seen) > 1  # the writer really replaced it while we read
    # What a kill may leave is a hidden temporary file, never a damaged state.json.
    assert all(name.startswith(".state.json.") and name.endswith(".tmp")
               for name in leftovers(tmp_path, "state.json"))


# -- durability: the file is fsynced before it goes in, its folder after ---------------------


@pytest.fixture
def syscalls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(what, inode) for every fsync (``file``/``folder``) and ``replace`` (the inode
    renamed into place) this process makes; the real calls still run."""
    calls: list[tuple[str, int]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        calls.append(("folder" if stat.S_ISDIR(info.st_mode) else "file", info.st_ino))
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        calls.append(("replace", os.lstat(src).st_ino))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return calls


def write_outbox(folder: Path) -> Path:
    channel = OutboxChannel("email", OutboxSettings.model_validate({"from": "a@example.com"}),
                            base_dir=folder)
    delivery = channel.send(Message(idempotency_key="k1", recipient="b@example.com",
                                    subject="s", text="t", meta={}))
    return Path(delivery.detail)


def write_status(folder: Path) -> Path:
    path = folder / "daemon.json"
    write_json(path, {"state": "running"})
    return path


def write_csv(folder: Path) -> Path:
    path = folder / "customers.csv"
    path.write_bytes(b"id,status\n1,new\n")
    CsvTable(path).write("id", [CellUpdate("1", "status", "sent")])
    return path


@pytest.mark.parametrize("write", [write_outbox, write_status, write_csv],
                         ids=["outbox .eml", "daemon.json", "csv"])
def test_every_replaced_file_is_fsynced_before_it_goes_in_and_its_folder_after(
        tmp_path: Path, syscalls: list[tuple[str, int]],
        write: Callable[[Path], Path]) -> None:
    path = write(tmp_path)
    file_inode, folder_inode = path.stat().st_ino, path.parent.stat().st_ino
    synced = syscalls.index(("file", file_inode))
    assert ("folder", folder_inode) in syscalls[synced + 1:], syscalls
    if ("replace", file_inode) in syscalls:  # the CSV swaps in by renameat2 where it can
        renamed = syscalls.index(("replace", file_inode))
        assert synced < renamed < syscalls.index(("folder", folder_inode), renamed), syscalls


# -- private state files ---------------------------------------------------------------------


def test_open_private_creates_0600_whatever_the_umask(tmp_path: Path, umask_zero: None) -> None:
    path = tmp_path / "state.db"
    os.close(open_private(path, os.O_RDWR))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)  # an existing file is opened as it is
    os.close(open_private(path, os.O_RDWR))
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_open_private_refuses_a_symlink_and_leaves_its_target_alone(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    path = tmp_path / "heartbeat"
    path.symlink_to(victim)
    with pytest.raises(StateFileError, match=r"heartbeat is a symbolic link.*rm ") as info:
        open_private(path, os.O_WRONLY | os.O_TRUNC)
    assert info.value.exit_code == ExitStatus.BACKEND
    assert victim.read_bytes() == b"precious"


# -- the run lock, across processes ----------------------------------------------------------


HOLDER = r"""
import sys
from pathlib import Path
from sheetcrm.fsutil import RunLock
with RunLock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.readline()
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the run lock at tmp_path/sync.lock until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "sync.lock")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_a_lock_held_by_another_process_is_seen_and_names_its_pid(
        tmp_path: Path, holder: subprocess.Popen[str]) -> None:
    path = tmp_path / "sync.lock"
    assert lock_held(path) is True
    with probe(path) as held:
        assert held is True
    with pytest.raises(LockedError) as info, RunLock(path, wait=0):
        pass
    assert info.value.holder == holder.pid  # type: ignore[attr-defined]
    assert f"pid {holder.pid}" in str(info.value) and "SHEETCRM_LOCK_WAIT" in str(info.value)
    assert info.value.exit_code == ExitStatus.LOCKED

    assert holder.stdin is not None
    holder.stdin.close()  # the run ends: the lock is free
    assert holder.wait(10) == 0
    assert lock_held(path) is False
    with RunLock(path, wait=0):
        assert path.read_text() == str(os.getpid())


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path,
                                              holder: subprocess.Popen[str]) -> None:
    path = tmp_path / "sync.lock"
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    assert lock_held(path) is False
    with RunLock(path, wait=0):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

