"""kill -9 a real `sheetcrm sync` sending by Solapi and by NHN Cloud, re-run, and count
what the providers received: no customer gets a step twice.

The emulators run in this process and keep every message they accepted; the sync is a
child process killed at the crash points of ``test_crash_safety``. A message whose
claim was recorded but whose answer was not is uncertain and never sent again; NHN
Cloud would refuse a second copy anyway (the idempotency key).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.support.emulators.nhn import NhnEmulator
from tests.support.emulators.solapi import SolapiEmulator
from tests.support.kakao import use_nhn, use_solapi
from tests.support.sample import DAY0, DAY0_SENDS_NO_ADDRESS

EXPECTED = len(DAY0_SENDS_NO_ADDRESS)
POINTS = [("after-claim:3", 1), ("after-send:2", 0), ("before-write", 0)]


def run_sync(folder: Path, kill_at: str | None = None) -> tuple[int, str, str]:
    """``sheetcrm sync`` as a child process, killed at ``kill_at`` (SHEETCRM_KILL_AT)."""
    env = {k: v for k, v in os.environ.items() if k != "SHEETCRM_KILL_AT"}
    if kill_at:
        env["SHEETCRM_KILL_AT"] = kill_at
    proc = subprocess.run(
        [sys.executable, "-m", "sheetcrm.cli", "--now", DAY0, "--json", "sync"],
        cwd=folder, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
        timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def _three_runs(folder: Path, kill_at: str) -> None:
    code, _, err = run_sync(folder, kill_at)
    assert code == -signal.SIGKILL, err
    code, out, err = run_sync(folder)
    assert code == 0, err
    recovered = json.loads(out)["recovered"]
    assert len(recovered) == (1 if kill_at.startswith(("after-claim", "after-send")) else 0)
    code, out, err = run_sync(folder)
    assert code == 0, err
    assert json.loads(out)["sends"] == []


@pytest.mark.parametrize("kill_at, lost", POINTS)
def test_kill_9_never_duplicates_a_solapi_message(sample: Path, kill_at: str,
                                                  lost: int) -> None:
    with SolapiEmulator() as solapi:
        use_solapi(sample, solapi)
        _three_runs(sample, kill_at)
    counts = Counter((m.to, m.text) for m in solapi.received)
    assert max(counts.values()) == 1, counts.most_common(3)
    assert len(counts) == EXPECTED - lost


@pytest.mark.parametrize("kill_at, lost", POINTS)
def test_kill_9_never_duplicates_an_nhn_alimtalk(sample: Path, kill_at: str, lost: int) -> None:
    with NhnEmulator() as nhn:
        use_nhn(sample, nhn)
        _three_runs(sample, kill_at)
    keys = Counter(m.key for m in nhn.received)
    assert max(keys.values()) == 1, keys.most_common(3)
    assert len(keys) == EXPECTED - lost
    assert len({(m.to, m.template) for m in nhn.received}) == EXPECTED - lost
