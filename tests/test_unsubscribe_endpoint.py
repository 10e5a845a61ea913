"""Unsubscribe links: what every ad carries, and what ``/u/TOKEN`` records and refuses.

The endpoint is the real one (``app.serve.Served``: werkzeug on waitress) on a loopback
port, answering plain HTTP requests; the ads are the ones a real ``sync`` of the sample
wrote into its outbox, and the ledger is the one that sync kept.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from sheetcrm.app.checks import run_checks
from sheetcrm.config import load_config
from sheetcrm.config.hearing import ServerSettings
from sheetcrm.ledger import Ledger
from sheetcrm.tokens import make_token, read_token
from tests.support.endpoint import (
    ENV,
    FORM,
    ONE_CLICK,
    SECRET,
    ads,
    copy_of,
    free_port,
    https_target,
    local,
    opt_events,
    request,
    serving,
    synced_sample,
    with_server,
)
from tests.support.sample import DAY0, copy_sample

SOHEE = "sohee.han@example.com"  # 한소희: in the payment flow, consents to ads
SCANNER = {"User-Agent": "Mozilla/5.0 (compatible; Barracuda Sentinel; link scanner)"}


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synced_sample(tmp_path_factory.mktemp("synced"))


@pytest.fixture
def folder(synced: Path, tmp_path: Path) -> Path:
    return copy_of(synced, tmp_path / "sample")


def link(folder: Path, to: str = SOHEE) -> str:
    return https_target(ads(folder)[to])


# -- what the ads carry ----------------------------------------------------------------


def test_every_ad_links_its_own_signed_page_in_the_header_and_the_footer(folder: Path) -> None:
    sent = ads(folder)
    assert set(sent) == {SOHEE, "soohyun.kim@example.com", "jimin.seo@example.com",
                         "min.namgung@example.com",  # the payment flow's second step
                         "hyunwoo.baek@example.com"}  # the dormant win-back's first
    links = set()
    for to, msg in sent.items():
        url = https_target(msg)
        links.add(url)
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert to not in url and to.split("@")[0] not in url  # nothing names the customer
        token = url.rsplit("/u/", 1)[1]
        assert read_token(SECRET.encode(), "u", token) == {"i": msg["X-Sheetcrm-Key"]}
        footer = msg.get_body(preferencelist=("plain",)).get_content()
        assert f"수신 거부: {url}" in footer  # the footer's opt-out link is the same page
    assert len(links) == 5
    notices = [p for p in (folder / "outbox").glob("*.eml") if b"List-Unsubscribe" not in
               p.read_bytes()]
    assert len(notices) == 20 and not any(b"/u/" in p.read_bytes() for p in notices)


# -- GET and HEAD never record ----------------------------------------------------------------


def test_a_scanner_get_and_a_head_show_the_page_and_record_nothing(folder: Path) -> None:
    with serving(folder) as base:
        url = local(base, link(folder))
        status, headers, body = request(url, headers=SCANNER)
        page = body.decode("utf-8")
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert "광고 메일 수신 거부" in page and '<form method="post">' in page
        assert "소담 클래스" in page and SOHEE not in page
        assert "set-cookie" not in headers and headers["cache-control"] == "no-store"
        assert headers["referrer-policy"] == "no-referrer"
        status, headers, body = request(url, "HEAD", headers=SCANNER)
        assert (status, body) == (200, b"")
    assert opt_events(folder) == []


# -- forged tokens -----------------------------------------------------------------------


def test_a_forged_or_altered_token_records_nothing_and_says_so(folder: Path) -> None:
    url = link(folder)
    token = url.rsplit("/", 1)[1]
    body, mac = token.split(".")
    idem_key = read_token(SECRET.encode(), "u", token)["i"]  # type: ignore[index]
    other = make_token(SECRET.encode(), "u", {"i": "sc-payment-e1-s2-0000000000"})
    bad = [
        f"{body}.{mac[:-2]}{'AB' if mac[-2:] != 'AB' else 'CD'}",  # altered mac
        f"{body[:-1]}{'A' if body[-1] != 'A' else 'B'}.{mac}",  # altered payload
        make_token(b"somebody else's secret, guessed", "u", {"i": idem_key}),  # forged
        make_token(SECRET.encode(), "c", {"i": idem_key}),  # a click token
        other,  # signed, but no send of ours has that key
        body,  # truncated
    ]
    with serving(folder) as base:
        for token in bad:
            for method, data in (("POST", ONE_CLICK), ("GET", None)):
                status, _, page = request(f"{base}/u/{token}", method, data, FORM)
                assert status == 404, (token, method)
                assert "링크를 확인할 수 없습니다" in page.decode("utf-8")
    assert opt_events(folder) == []


# -- POST -----------------------------------------------------------------------------------


def test_a_second_one_click_post_of_the_same_link_records_nothing_more(folder: Path) -> None:
    with serving(folder) as base:
        url = local(base, link(folder))
        for _ in range(3):
            status, headers, body = request(url, "POST", ONE_CLICK, FORM)
            assert (status, body) == (200, b"") and "set-cookie" not in headers
    assert [(kind, key) for kind, key, _ in opt_events(folder)] == [("opt_out", SOHEE)]
    ledger = Ledger.open_readonly(folder / ".sheetcrm/state.db")
    assert ledger.load_state().opted_out(SOHEE) is not None
    ledger.close()


def test_the_page_button_confirms_and_an_undo_then_a_new_opt_out_each_count(
        folder: Path) -> None:
    with serving(folder) as base:
        url = local(base, link(folder))
        status, _, page = request(url, "POST", b"action=opt_out", FORM)
        assert status == 200 and "수신 거부가 완료되었습니다" in page.decode()
        assert 'name="action" value="undo"' in page.decode()  # the undo is offered
        assert "이미 수신 거부하셨습니다" in request(url)[2].decode()
        for _ in range(2):  # a double click on the undo counts once
            status, _, page = request(url, "POST", b"action=undo", FORM)
            assert status == 200 and "수신 거부를 취소했습니다" in page.decode()
        assert "광고 메일 수신 거부" in request(url)[2].decode()
        assert request(url, "POST", ONE_CLICK, FORM)[:1] == (200,)  # changed their mind again
    events = opt_events(folder)
    assert [kind for kind, _, _ in events] == ["opt_out", "opt_in", "opt_out"]
    assert len({event_id for _, _, event_id in events}) == 3
    ledger = Ledger.open_readonly(folder / ".sheetcrm/state.db")
    assert ledger.load_state().opted_out(SOHEE) is not None
    ledger.close()


# -- limits ---------------------------------------------------------------------------------


def test_too_many_requests_from_one_client_get_429_and_record_nothing(folder: Path) -> None:
    with serving(folder, 'rate_limit = "3/1m"\n') as base:
        url = local(base, link(folder))
        assert [request(url)[0] for _ in range(3)] == [200, 200, 200]
        assert request(url, "POST", ONE_CLICK, FORM)[0] == 429
    assert opt_events(folder) == []


def test_each_customer_behind_the_tls_proxy_has_a_rate_limit_of_their_own(
        folder: Path) -> None:
    one, other = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.9"}
    with serving(folder, 'rate_limit = "2/1m"\n') as base:  # the proxy connects from here
        url = local(base, link(folder))
        assert [request(url, headers=one)[0] for _ in range(3)] == [200, 200, 429]
        assert request(url, "POST", ONE_CLICK, {**FORM, **other})[0] == 200
    assert len(opt_events(folder)) == 1


def test_a_body_over_max_body_gets_413_and_records_nothing(folder: Path) -> None:
    with serving(folder, "max_body = 1024\n") as base:
        url = local(base, link(folder))
        big = ONE_CLICK + b"&pad=" + b"x" * 4000
        assert request(url, "POST", big, FORM)[0] == 413
        assert opt_events(folder) == []
        assert request(url, "POST", ONE_CLICK, FORM)[0] == 200
    assert len(opt_events(folder)) == 1


# -- check --------------------------------------------------------------------------------


def findings(folder: Path) -> list[tuple[str, str, str]]:
    config = load_config(folder / "config.toml", ENV)
    now = datetime.fromisoformat(DAY0).replace(tzinfo=config.tz)
    return [(f.level, f.where, f.message) for f in run_checks(config, now)
            if f.where.startswith("server")]


def test_check_warns_when_ads_go_by_email_without_a_server(tmp_path: Path) -> None:
    folder = copy_sample(tmp_path)
    [(level, where, message)] = findings(folder)
    assert (level, where) == ("warning", "server")
    assert "flows.dormant, flows.onboarding, flows.payment, flows.review" in message
    assert "no working one-click unsubscribe link" in message


@pytest.mark.parametrize(("public_url", "warned"), [
    ("http://crm.example.com", True),
    ("https://crm.example.com", False),
    ("http://127.0.0.1:8080", False),  # this machine: trying it out
    ("http://localhost:8080", False),
])
def test_check_warns_when_the_public_url_is_not_https(tmp_path: Path, public_url: str,
                                                      warned: bool) -> None:
    folder = copy_sample(tmp_path)
    with_server(folder, free_port())
    config = folder / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('public_url = "http://127.0.0.1:',
                                   f'public_url = "{public_url}"\n# was "http://127.0.0.1:'),
                      encoding="utf-8")
    found = findings(folder)
    assert bool(found) is warned
    if warned:
        assert found[0][:2] == ("warning", "server.public_url")
        assert "is not https" in found[0][2]


def test_a_hangul_public_url_is_written_in_its_ascii_form_for_the_mail_headers() -> None:
    settings = ServerSettings(public_url="https://고객.한국:8443/crm/", secret=SECRET)
    assert settings.public_url == "https://xn--i49alo.xn--3e0b707e:8443/crm"
    with pytest.raises(ValueError, match="is not a base URL"):
        ServerSettings(public_url="https://crm.example.com/a b", secret=SECRET)


def test_the_endpoint_stops_cleanly_without_a_traceback(folder: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    crashed: list[str] = []
    monkeypatch.setattr(threading, "excepthook",
                        lambda args: crashed.append(f"{args.exc_type.__name__}: {args.exc_value}"))
    began = time.monotonic()
    for _ in range(40):
        with serving(folder) as base:
            assert request(local(base, link(folder)))[0] == 200
    assert crashed == []
    assert time.monotonic() - began < 20  # each stop is prompt: no thread left hanging
