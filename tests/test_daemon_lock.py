"""The run lock: a manual sync during a daemon's run exits 5 naming it (or waits when
asked to), a lock waits up to N seconds, and a status probe never makes a run find
the lock busy.

The daemon harness (``Daemon``, the ``start`` fixture) is described in
``tests.support.daemon``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from sheetcrm.errors import LockedError
from sheetcrm.fsutil import RunLock, lock_held, probe
from tests.support.daemon import cli
from tests.support.sample import DAY0, use_webhook
from tests.support.servers import Reply, WebhookServer


def test_a_manual_sync_during_a_run_exits_5_naming_the_daemon_or_waits(sample: Path,
                                                                       start) -> None:
    # The daemon's first webhook is answered only when the test says so: its run holds
    # the lock however slowly a loaded machine starts the manual sync.
    gate = threading.Event()
    with WebhookServer([Reply(200, delay=30.0, gate=gate)]) as server:
        use_webhook(sample, server.url)
        d = start("--every", "1h")
        d.wait_for("the run to be sending", lambda: server.requests)

        try:
            busy = cli(sample, "--now", DAY0, "sync")
        finally:
            threading.Timer(1.0, gate.set).start()  # the run goes on while the next waits
        assert busy.returncode == 5
        assert f"pid {d.pid}" in busy.stderr and "SHEETCRM_LOCK_WAIT" in busy.stderr

        began = time.monotonic()
        waited = cli(sample, "--now", DAY0, "--json", "sync",
                     env={**os.environ, "SHEETCRM_LOCK_WAIT": "30"})
        assert waited.returncode == 0, waited.stderr
        assert time.monotonic() - began > 0.5
        assert json.loads(waited.stdout)["summary"]["sent"] == 0  # the daemon sent them

        second = cli(sample, "run", "--every", "1h")
        assert second.returncode == 5
        assert "daemon" in second.stderr and f"pid {d.pid}" in second.stderr
        assert d.terminate()[0] == 0


def test_run_lock_waits_up_to_n_seconds(tmp_path: Path) -> None:
    path = tmp_path / "sync.lock"
    holder = RunLock(path).__enter__()
    with pytest.raises(LockedError) as info, RunLock(path, wait=0.3):
        pass
    assert info.value.holder == os.getpid()  # type: ignore[attr-defined]
    assert f"pid {os.getpid()}" in str(info.value) and "waited 0.3s" in str(info.value)

    threading.Timer(0.4, holder.__exit__, (None, None, None)).start()
    began = time.monotonic()
    with RunLock(path, wait=10):
        assert 0.3 < time.monotonic() - began < 5


def test_a_status_probe_never_makes_a_run_find_the_lock_busy(tmp_path: Path) -> None:
    path = tmp_path / "sync.lock"
    assert lock_held(path) is False  # never taken: nothing held, nothing created
    assert not path.exists()
    with RunLock(path):
        assert lock_held(path) is True
    probing, done = threading.Event(), threading.Event()

    def status_probe() -> None:
        with probe(path) as held:
            assert held is False
            probing.set()
            time.sleep(0.1)  # status reading the ledger
        done.set()

    threading.Thread(target=status_probe).start()
    assert probing.wait(5)
    with RunLock(path, wait=0):  # taken once the probe is done, not refused
        assert done.is_set()
