"""Unsubscribe end to end, every part a real process: ``sheetcrm sync`` writes the ads,
``sheetcrm serve`` (or ``sheetcrm run``) answers the one-click POST of the link in one
of them, and the next ``plan`` and ``sync`` honour it."""

from __future__ import annotations

import email
import email.policy
import json
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.daemon import Daemon, read_sheet, save
from tests.support.endpoint import (
    DAY4,
    ENV,
    FORM,
    ONE_CLICK,
    OPT_OUT_COLUMN,
    SECRET,
    ServeProcess,
    ads,
    cli,
    free_port,
    https_target,
    opt_events,
    request,
    synced_to_day2,
    with_server,
)
from tests.support.sample import DAY2

SOHEE = "sohee.han@example.com"  # 한소희: in the payment flow, consents to ads
LAST_CALL = (SOHEE, "payment", 3)  # the flow's last step, an ad due on DAY4
HELD = "opted out: only transactional messages"


@pytest.fixture
def serve(sample: Path) -> Iterator[Callable[..., ServeProcess]]:
    started: list[ServeProcess] = []

    def run(port: int, **kwargs: object) -> ServeProcess:
        process = ServeProcess(sample, port, **kwargs)  # type: ignore[arg-type]
        started.append(process)
        return process

    yield run
    for process in started:
        process.kill()


def outbox(folder: Path) -> Counter[str]:
    """Messages in the outbox by recipient."""
    return Counter(email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                   ["To"].addresses[0].addr_spec for p in (folder / "outbox").glob("*.eml"))


def plan(folder: Path, now: str) -> dict:
    result = cli(folder, "--now", now, "--json", "plan")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_a_one_click_post_of_a_synced_ads_link_holds_the_ads_and_fills_the_opt_out_cell(
        sample: Path, serve: Callable[..., ServeProcess]) -> None:
    port = free_port()
    with_server(sample, port)
    synced_to_day2(sample)
    msg = ads(sample)[SOHEE]
    url = https_target(msg)
    assert url.startswith(f"http://127.0.0.1:{port}/u/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    due = plan(sample, DAY4)
    assert LAST_CALL in {(s["key"], s["flow"], s["step"]) for s in due["sends"]}

    server = serve(port)
    status, headers, body = request(url, "POST", ONE_CLICK, FORM)
    assert (status, body) == (200, b"") and "set-cookie" not in headers

    held = plan(sample, DAY4)  # right after the POST, before any sync
    assert LAST_CALL not in {(s["key"], s["flow"], s["step"]) for s in held["sends"]}
    assert (*LAST_CALL, HELD, True) in {(h["key"], h["flow"], h["step"], h["reason"], h["skip"])
                                        for h in held["held"]}
    before = outbox(sample)
    synced = cli(sample, "--now", DAY4, "--json", "sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert SOHEE not in {s["key"] for s in json.loads(synced.stdout)["sends"]}
    header, rows = read_sheet(sample)
    assert OPT_OUT_COLUMN in header
    assert rows[SOHEE][OPT_OUT_COLUMN] == "2026-11-25 opted out"  # serve's clock: HEARD_AT
    assert all(row[OPT_OUT_COLUMN] == "" for key, row in rows.items() if key != SOHEE)
    after = outbox(sample)
    assert after[SOHEE] == before[SOHEE] and after.total() > before.total()  # others do

    assert server.terminate() == 0
    log = server.log()
    lines = [json.loads(line) for line in log.splitlines()]
    assert [line["event"] for line in lines] == ["serve", "heard", "serve_stopped"]
    assert lines[1]["kind"] == "opt_out" and lines[-1]["answered"] == {"2xx": 1}
    for private in (SOHEE, "sohee", SECRET, url.rsplit("/", 1)[1]):  # counts only
        assert private not in log


def test_sheetcrm_run_answers_the_links_too_so_one_unit_does_everything(
        sample: Path, start: Callable[..., Daemon]) -> None:
    port = free_port()
    with_server(sample, port)
    synced_to_day2(sample)
    url = https_target(ads(sample)[SOHEE])
    daemon = start("--every-seconds", "0.3", now=DAY2, env=ENV)
    [started] = daemon.wait_for("the start line", lambda: daemon.events("start"))
    assert started["endpoint"] == f"127.0.0.1:{port}"
    assert request(url, "POST", ONE_CLICK, FORM)[0] == 200
    daemon.wait_for("the opt-out cell",
                    lambda: read_sheet(sample)[1][SOHEE].get(OPT_OUT_COLUMN))
    assert read_sheet(sample)[1][SOHEE][OPT_OUT_COLUMN] == "2026-11-25 opted out"
    assert daemon.terminate()[0] == 0
    [stopped] = daemon.events("endpoint_stopped")
    assert stopped["answered"] == {"2xx": 1}
    assert [kind for kind, _, _ in opt_events(sample)] == ["opt_out"]


def test_the_daemons_endpoint_follows_a_reloaded_config_or_says_to_restart(
        sample: Path, start: Callable[..., Daemon]) -> None:
    port = free_port()
    with_server(sample, port)
    synced_to_day2(sample)
    url = https_target(ads(sample)[SOHEE])
    config = sample / "config.toml"  # the customers' page in the sample's Korean
    config.write_text(config.read_text(encoding="utf-8").replace(
        'language = "en"', 'language = "ko"'), encoding="utf-8")
    daemon = start("--every-seconds", "0.3", now=DAY2, env=ENV)
    daemon.wait_for("the start line", lambda: daemon.events("start"))
    assert "소담 클래스에서" in request(url)[2].decode()
    config = sample / "config.toml"
    save(config, config.read_text(encoding="utf-8").replace(
        'sender_name = "소담 클래스"', 'sender_name = "소담 아카데미"'))
    daemon.wait_for("the reload", lambda: daemon.events("config_reloaded"))
    assert "소담 아카데미에서" in request(url)[2].decode()
    assert not daemon.events("endpoint_restart_needed")
    save(config, config.read_text(encoding="utf-8") + 'rate_limit = "10/1m"\n')
    daemon.wait_for("the warning", lambda: daemon.events("endpoint_restart_needed"))
    assert request(url)[0] == 200  # still serving, as started
    assert daemon.terminate()[0] == 0


@pytest.mark.parametrize("command", ["serve", "run"])
def test_a_taken_port_is_a_clear_error_and_exit_2(sample: Path, command: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with_server(sample, port)
        result = cli(sample, command, timeout=30)
    assert result.returncode == 2
    assert f"server.listen: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_without_a_server_table_says_what_to_add(sample: Path) -> None:
    result = cli(sample, "serve", timeout=30)
    assert result.returncode == 2
    assert "server: there is no [server] table" in result.stderr
