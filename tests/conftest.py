"""Shared fixtures: a copy of the shipped sample in a temporary folder, an in-process
CLI runner (the real ``main``, its exit code and output) and a deadline for a call;
then the fixtures of the test areas split over several files: the Google Sheets
backend (``tests/test_gsheets_*.py``), the Airtable backend (``test_airtable_*.py``),
the daemon (``test_daemon_*.py``) and the mailbox (``test_mailbox_*.py``); last, which
test files run on Windows (``WINDOWS_TESTS``, the ``windows`` marker).

Guards that apply to every test of an area (``loopback_only``, ``fast_retries``,
``virtual_time``) are not autouse: each file of the area asks for them in its
``pytestmark``, so no other test gets them.

Every test speaks English unless it asks for Korean (``korean``, or a config with
``language = "ko"``): the process language is set to English before each test, and the
locale variables say nothing (a developer's ``LANG=ko_KR.UTF-8`` changes no test).

Only fixtures live here; the helpers tests import are in ``tests.support``."""

from __future__ import annotations

import json
import multiprocessing
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sheetcrm import i18n
from sheetcrm.http import HttpOptions, RetryPolicy
from sheetcrm.table import airtable, gsheets_transport
from sheetcrm.table.airtable import Clock
from sheetcrm.table.gsheets import GoogleSheetsTable, SheetPlace
from tests.support.airtable import TOKEN
from tests.support.clock import VirtualClock
from tests.support.daemon import Daemon
from tests.support.emulators.airtable import AirtableEmulator
from tests.support.emulators.sheets import SheetsEmulator
from tests.support.gsheets import HEADER, KEY, SHEET, Account, is_loopback, make_pacer
from tests.support.imap import ImapServer
from tests.support.sample import copy_sample

# The init tests' fixtures (``sheet``, ``no_stdin``): shared by three test modules.
pytest_plugins = ["tests.support.init"]


@pytest.fixture(autouse=True)
def english(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The tests' language: English, whatever the machine's locale says."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")
    i18n.set_language("en")
    yield
    i18n.set_language("en")


@pytest.fixture
def korean() -> None:
    """The process speaks Korean for this test (as after ``language = "ko"``)."""
    i18n.set_language("ko")


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of the shipped sample in a temporary folder."""
    return copy_sample(tmp_path)


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run ``sheetcrm ARGS`` in-process from ``cwd`` on a terminal ``columns`` wide (200
    unless told); returns exit code and output."""
    from sheetcrm.cli import main

    def run(cwd: Path, *args: str, columns: int = 200) -> CliResult:
        monkeypatch.chdir(cwd)
        monkeypatch.setenv("COLUMNS", str(columns))
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def within() -> Callable[..., Any]:
    """``within(call, seconds)``: ``call()``'s result or exception, or the test fails.

    For what must be refused at once instead of taking forever or gigabytes. The call
    runs in a forked child that is killed after ``seconds``: a thread would not do,
    since a big-number computation holds the interpreter lock until it ends.
    """

    def run(call: Callable[[], Any], seconds: float = 20.0) -> Any:
        fork = multiprocessing.get_context("fork")
        reader, writer = fork.Pipe(duplex=False)

        def child() -> None:
            try:
                writer.send(("value", call()))
            except BaseException as exc:  # rebuilt and raised in the test below
                try:
                    writer.send(("error", (type(exc), exc.args, vars(exc))))
                except Exception:
                    writer.send(("error", (RuntimeError, (f"{type(exc).__name__}: {exc}",), {})))

        process = fork.Process(target=child, daemon=True)
        process.start()
        try:
            if not reader.poll(seconds):
                pytest.fail(f"still running after {seconds} s")
            kind, payload = reader.recv()
        finally:
            process.kill()
            process.join()
        if kind == "value":
            return payload
        cls, args, attributes = payload
        error = cls.__new__(cls, *args)
        error.args = args
        vars(error).update(attributes)
        raise error

    return run


# --------------------------------------------------------------------------- Google Sheets


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def escapes() -> Iterator[list[str]]:
    """While these tests run, no name lookup or connection may leave the machine: each
    attempt is refused and recorded (threads swallow errors; the record stays)."""
    attempts: list[str] = []
    real_lookup, real_connect = socket.getaddrinfo, socket.socket.connect

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_loopback(host):
            attempts.append(f"name lookup of {host}")
            raise socket.gaierror(socket.EAI_NONAME, "off-machine lookups are refused in tests")
        return real_lookup(host, *args, **kwargs)

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not is_loopback(address[0]):
            attempts.append(f"connection to {address[0]}")
            raise ConnectionRefusedError("off-machine connections are refused in tests")
        real_connect(sock, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", lookup)
        patch.setattr(socket.socket, "connect", connect)
        yield attempts


@pytest.fixture
def loopback_only(escapes: list[str]) -> Iterator[None]:
    """The test fails if anything it started tried to reach another host."""
    start = len(escapes)
    yield
    assert escapes[start:] == []


@pytest.fixture
def emulator() -> Iterator[SheetsEmulator]:
    with SheetsEmulator() as emu:
        yield emu


@pytest.fixture
def account(emulator: SheetsEmulator, rsa_key: rsa.RSAPrivateKey, tmp_path: Path) -> Account:
    """A service account known to the emulator; its key file's token_uri points there."""
    email = f"sheetcrm-{uuid.uuid4().hex[:8]}@crm-test.iam.gserviceaccount.com"
    emulator.add_account(email, rsa_key.public_key())
    pem = rsa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    info = {"type": "service_account", "project_id": "crm-test", "private_key_id": "k1",
            "private_key": pem, "client_email": email, "client_id": "1",
            "token_uri": emulator.token_uri}
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(info), encoding="utf-8")
    return Account(email, info, path)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch, clock: VirtualClock) -> Iterator[None]:
    """Tables built from a config (the CLI path) retry without really sleeping."""
    monkeypatch.setattr(gsheets_transport, "default_clock", clock.clock)
    yield


@pytest.fixture
def book(emulator: SheetsEmulator) -> SheetsEmulator:
    """A spreadsheet with a first sheet '안내' and a customer sheet '고객 목록'."""
    emulator.add_spreadsheet(KEY)
    emulator.add_sheet(KEY, "안내")
    emulator.add_sheet(KEY, SHEET)
    emulator.put(KEY, "안내", [["이 스프레드시트는 sheetcrm이 관리합니다"]])
    emulator.put(KEY, SHEET, [
        HEADER,
        ["김수현", "soohyun@example.com", "'010-1111-2222", "VIP", ""],
        ["이지훈", "jihoon@example.com", "'01098765432", "", "결제 대기"],
        ["박채린", "chaerin@example.com", "'010-3333-4444", "", ""],
    ])
    return emulator


@pytest.fixture
def make_table(emulator: SheetsEmulator, account: Account, clock: VirtualClock
               ) -> Callable[..., GoogleSheetsTable]:
    def make(**kwargs: Any) -> GoogleSheetsTable:
        options: dict[str, Any] = {
            "worksheet": SHEET, "endpoint": emulator.url,
            "pacer": make_pacer(clock),
            "retry": RetryPolicy(jitter=lambda: 0.5),
            "timeout": (2.0, 5.0), "credentials_path": str(account.path),
        }
        options.update(kwargs)
        place = SheetPlace(options.pop("worksheet"), options.pop("gid", None),
                           options.pop("header_row", 1))
        http = HttpOptions(endpoint=options.pop("endpoint"), timeout=options.pop("timeout"),
                           pacer=options.pop("pacer"), retry=options.pop("retry"))
        return GoogleSheetsTable(KEY, account.info, place=place, http=http, **options)

    return make


# --------------------------------------------------------------------------- Airtable


@pytest.fixture
def vclock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def virtual_time(vclock: VirtualClock, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Every AirtableTable paces on the virtual clock: nothing really sleeps."""
    clock = vclock.clock
    monkeypatch.setattr(airtable, "default_clock", clock)
    monkeypatch.setenv("AIRTABLE_TOKEN", TOKEN)
    return clock


@pytest.fixture
def emu(vclock: VirtualClock):
    with AirtableEmulator(tokens=[TOKEN], clock=vclock.now) as emulator:
        yield emulator


# --------------------------------------------------------------------------- the daemon


@pytest.fixture
def start(sample: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def run(*args: str, **kwargs: Any) -> Daemon:
        d = Daemon(sample, *args, **kwargs)
        started.append(d)
        return d

    yield run
    for d in started:
        d.kill()


# --------------------------------------------------------------------------- the mailbox


@pytest.fixture(scope="module")
def imap() -> Iterator[ImapServer]:
    """A real IMAP server (pymap) for a whole test module; each test takes a new folder."""
    with ImapServer() as server:
        yield server


# --------------------------------------------------------------------------- Windows

#: The test files of the commands an operator runs by hand (every command but the
#: daemon). CI runs them a second time as Windows imports sheetcrm, with no POSIX-only
#: module (``-m windows -p tests.support.without_posix`` in .ci/run); on Windows they
#: are the suite: the others need the daemon's signals, fork or POSIX file modes.
WINDOWS_TESTS = frozenset({
    "test_cli_layout.py", "test_cli_options.py", "test_cli_progress.py",
    "test_row_numbers.py", "test_windows.py", "test_check.py", "test_sync_sample.py",
    "test_report.py", "test_operator_data.py", "test_secrets.py", "test_journeys.py",
    "test_flow_state.py", "test_csv_table.py", "test_hostile_input.py",
})


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "windows: a test of a command that runs on Windows "
                                       "(its file is in WINDOWS_TESTS, tests/conftest.py)")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """On Windows, only the files of WINDOWS_TESTS are collected."""
    if (sys.platform == "win32" and collection_path.name.startswith("test_")
            and collection_path.name not in WINDOWS_TESTS):
        return True
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in WINDOWS_TESTS:
            item.add_marker(pytest.mark.windows)
