"""The operator saving the CSV while sheetcrm writes it: no save is ever lost.

Editors save in two ways: a new file renamed over the old one, or the file rewritten
in place. Either can land at any instant of sheetcrm's write, including the one
between "is the file still what we read?" and putting the new file in. The hooks
``_before_replace`` (before that check) and ``_before_swap`` (before each swap) let
these tests land saves at exactly those instants; the stress test at the end lets a
second process save in a tight loop while sheetcrm writes over and over
(``tests.support.csv_stress``, which the benchmark runs longer).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sheetcrm import fsutil
from sheetcrm.errors import BackendError
from sheetcrm.model import CellUpdate
from sheetcrm.table.csv import CsvTable
from tests.support.csv_stress import leftovers, stress

ORIGINAL = b"id,phone,status\n1,111,new\n2,222,new\n"
UPDATE = [CellUpdate("2", "status", "sent")]

needs_exchange = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                    reason="the atomic exchange is Linux's renameat2")


def save_by_rename(path: Path, data: bytes) -> None:
    """How most editors and Excel save: a new file, renamed over the old one."""
    temp = path.with_name(path.name + ".saving")
    temp.write_bytes(data)
    os.replace(temp, path)


def save_in_place(path: Path, data: bytes) -> None:
    """How some editors and scripts save: truncate the file and write it again."""
    with open(path, "wb") as handle:
        handle.write(data)


class Operator(CsvTable):
    """A CsvTable whose hooks run the operator's actions at chosen instants."""

    def __init__(self, path: Path, *, before_swap: list[Callable[[Path], None]] = (),
                 before_replace: list[Callable[[Path], None]] = (), **kwargs) -> None:
        super().__init__(path, **kwargs)
        self.swap_actions = list(before_swap)
        self.check_actions = list(before_replace)
        self.swaps = 0

    def _before_replace(self, path: Path) -> None:
        if self.check_actions:
            self.check_actions.pop(0)(path)

    def _before_swap(self, path: Path) -> None:
        self.swaps += 1
        if self.swap_actions:
            self.swap_actions.pop(0)(path)


def make(tmp_path: Path, data: bytes = ORIGINAL) -> Path:
    path = tmp_path / "customers.csv"
    path.write_bytes(data)
    return path


# -- a save landing right before the swap ---------------------------------------------


@needs_exchange
@pytest.mark.parametrize("save", [save_by_rename, save_in_place])
def test_a_save_landing_between_the_check_and_the_swap_is_given_back_and_merged(
        tmp_path: Path, save: Callable[[Path, bytes], None]) -> None:
    path = make(tmp_path)
    theirs = b"id,phone,status\n0,000,new\n1,111,new\n2,999,new\n"
    table = Operator(path, before_swap=[lambda p: save(p, theirs)])
    report = table.write("id", UPDATE)
    assert path.read_bytes() == b"id,phone,status\n0,000,new\n1,111,new\n2,999,sent\n"
    assert report.cells_written == 1
    assert (table.concurrent_saves, table.saves_given_back) == (1, 1)
    assert table.swaps == 3  # ours in, theirs back, ours (redone) in
    assert leftovers(tmp_path) == []


@needs_exchange
def test_a_second_save_while_the_first_is_given_back_wins(tmp_path: Path) -> None:
    path = make(tmp_path)
    first = b"id,phone,status\n1,111,new\n2,222,new\n3,333,new\n"
    second = b"id,phone,status\n1,111,new\n2,222,new\n3,333,new\n4,444,new\n"
    # The first save lands before our swap; the second, in place, onto the file we
    # put in, right before we give the first one back.
    table = Operator(path, before_swap=[lambda p: save_by_rename(p, first),
                                       lambda p: save_in_place(p, second)])
    table.write("id", UPDATE)
    assert path.read_bytes() == second.replace(b"2,222,new", b"2,222,sent")
    assert table.saves_given_back == 1
    assert leftovers(tmp_path) == []


@needs_exchange
def test_an_in_place_save_still_open_when_we_swap_is_not_cut_off(tmp_path: Path) -> None:
    """The editor has the file open for writing but has not written yet: its content
    is still what we read, yet it is the operator's save in progress."""
    path = make(tmp_path)
    theirs = b"id,phone,status\n1,111,new\n2,555,new\n"
    editor: list = []

    def editor_opens(p: Path) -> None:
        editor.append(open(p, "r+b"))  # noqa: SIM115 - kept open across our write

    def editor_finishes(seconds: float) -> None:
        if editor and not editor[0].closed:
            editor[0].truncate(0)
            editor[0].write(theirs)
            editor[0].close()

    table = Operator(path, before_swap=[editor_opens], sleep=editor_finishes)
    table.write("id", UPDATE)
    assert path.read_bytes() == b"id,phone,status\n1,111,new\n2,555,sent\n"
    assert table.saves_given_back == 1
    assert leftovers(tmp_path) == []


@needs_exchange
def test_a_writer_that_never_lets_go_makes_sheetcrm_give_up_not_lose_its_save(
        tmp_path: Path) -> None:
    path = make(tmp_path)
    with open(path, "r+b") as editor:
        table = CsvTable(path, sleep=lambda seconds: None)
        with pytest.raises(BackendError, match="another program has it open for writing"):
            table.write("id", UPDATE)
        editor.write(b"id,phone,status\n9,999,new\n")
    assert path.read_bytes().startswith(b"id,phone,status\n9,999,new\n")
    assert leftovers(tmp_path) == []


@needs_exchange
def test_a_file_that_never_settles_keeps_the_newest_save_beside_it(tmp_path: Path) -> None:
    path = make(tmp_path)
    versions = [ORIGINAL.replace(b"111", str(n).encode()) for n in range(100, 120)]
    saves = iter(versions)
    table = Operator(path, before_swap=[lambda p: save_in_place(p, next(saves))] * 20)
    with pytest.raises(BackendError, match=r"is kept as customers\.\S+\.kept\.csv next to it"):
        table.write("id", UPDATE)
    newest = versions[table.swaps - 1]
    kept = [p for p in tmp_path.iterdir() if p.name.endswith(".kept.csv")]
    assert len(kept) == 1
    assert newest in (kept[0].read_bytes(), path.read_bytes())  # nothing lost
    assert path.read_bytes() in versions  # and the file holds an operator's save


# -- where the exchange is not available -----------------------------------------------


def refusing_exchange() -> Callable[..., int]:
    """renameat2 as a filesystem without RENAME_EXCHANGE answers it (NFS, some FUSE)."""

    def renameat2(*args: object) -> int:
        ctypes.set_errno(errno.EINVAL)
        return -1

    return renameat2


@pytest.mark.parametrize("exchange", [None, refusing_exchange],
                         ids=["no renameat2", "filesystem refuses"])
def test_without_the_exchange_writes_replace_and_still_redo_on_a_save(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange) -> None:
    monkeypatch.setattr(fsutil, "_renameat2", lambda: exchange() if exchange else None)
    path = make(tmp_path)
    theirs = b"id,phone,status\n1,111,new\n2,999,new\n"
    table = Operator(path, before_replace=[lambda p: save_by_rename(p, theirs)])
    table.write("id", UPDATE)
    assert path.read_bytes() == b"id,phone,status\n1,111,new\n2,999,sent\n"
    assert (table.concurrent_saves, table.saves_given_back) == (1, 0)
    assert table.swaps == 1  # only the redone write got as far as the swap
    assert leftovers(tmp_path) == []


# -- a second process saving in a tight loop (tests/support/csv_stress.py) -----------


@needs_exchange
@pytest.mark.parametrize("style", ["rename", "inplace"])
def test_no_save_is_lost_while_another_process_saves_in_a_tight_loop(
        tmp_path: Path, style: str) -> None:
    figures = stress(tmp_path, style=style, seconds=1.5)
    print(json.dumps(figures))
    assert figures["losses"] == 0, figures
    assert figures["final_ok"] and figures["leftovers"] == []
    assert sum(figures["saves"].values()) > 50 and figures["writes"] > 0, figures
    assert figures["concurrent_saves"] > 0, figures  # the two really collided
