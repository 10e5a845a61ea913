"""Clicks and opens: a real sync writes tracked links into the mail, the real endpoint
(waitress on loopback) redirects a real HTTP client to the link the message held, and
what it hears is stored, people's hits apart from machines'."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests

from sheetcrm.core import rules
from sheetcrm.core.rules import RowContext
from sheetcrm.ledger import Ledger
from sheetcrm.model import EventKind
from sheetcrm.server import tracking
from sheetcrm.server.app import ServerContext, make_app
from sheetcrm.server.serve import Endpoint
from sheetcrm.tokens import make_token, read_token
from tests.support.journeys import SEOUL, World
from tests.support.servers import WebhookServer

PUBLIC = "https://crm.example.com"
SECRET = "a secret of at least sixteen characters"
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"
TEMPLATE = """{{% block subject %}}결제 안내{{% endblock %}}
{{% block text %}}결제 이어하기: {landing}/checkout?c=1&d=2.
문의: mailto:help@example.com
수신 거부: {public}/u/already-signed
{{% endblock %}}
{{% block html %}}<html><body><p><a href="{landing}/checkout?c=1&amp;d=2">결제 이어하기</a>
<a href="mailto:help@example.com">문의</a></p></body></html>{{% endblock %}}
"""


@dataclass
class Setup:
    world: World
    landing: WebhookServer
    endpoint: Endpoint
    clock: list[datetime]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.endpoint.port}"

    def mail(self) -> email.message.EmailMessage:
        [path] = sorted((self.world.folder / "outbox").glob("*.eml"))
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        return message

    def body(self, subtype: str) -> str:
        part = self.mail().get_body(preferencelist=(subtype,))
        assert part is not None
        return str(part.get_content())

    def links(self, purpose: str = "c") -> list[str]:
        """The message's tracked links, as its text holds them, through the local proxy."""
        found = re.findall(rf"{re.escape(PUBLIC)}/{purpose}/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+",
                           self.body("plain") + self.body("html"))
        return [link.replace(PUBLIC, self.base) for link in found]

    def events(self) -> list:
        ledger = Ledger.open(self.world.folder / "state.db")
        try:
            return ledger.load_state().events_for("a@x.com")
        finally:
            ledger.close()

    def clicked(self) -> bool:
        ledger = Ledger.open_readonly(self.world.folder / "state.db")
        try:
            ctx = RowContext(self.clock[0], SEOUL, ledger.load_state())
        finally:
            ledger.close()
        ctx.key = "a@x.com"
        return rules.clicked(ctx, days=7)


@pytest.fixture
def setup(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Setup]:
    opens = getattr(request, "param", False)
    with WebhookServer(path="/") as landing:
        landing_url = f"http://127.0.0.1:{landing.port}"
        world = World.create(tmp_path, {})
        world.customers = {"a@x.com": {"applied": world.date(-3)}}
        world.write_sheet()
        (tmp_path / "templates" / "p1.j2").write_text(
            TEMPLATE.format(landing=landing_url, public=PUBLIC), encoding="utf-8")
        config = tmp_path / "config.toml"
        config.write_text(config.read_text(encoding="utf-8") + (
            f'\n[server]\npublic_url = "{PUBLIC}"\nsecret = "{SECRET}"\n'
            f"track_opens = {str(opens).lower()}\n"), encoding="utf-8")
        world.sync(0)  # payment step 1, delivered at day 0 10:00
        clock = [world.day(0, 10, 30)]
        ctx = ServerContext(world.config, lambda: Ledger.open(tmp_path / "state.db"),
                            lambda: clock[0])
        endpoint = Endpoint(make_app(ctx, [tracking]), "127.0.0.1", 0)
        endpoint.start()
        try:
            yield Setup(world, landing, endpoint, clock)
        finally:
            endpoint.stop()


def test_a_click_follows_the_redirect_to_the_link_the_message_held(setup: Setup) -> None:
    original = f"http://127.0.0.1:{setup.landing.port}/checkout?c=1&d=2"
    text_link, html_link = setup.links()
    assert original not in setup.body("plain") and original not in setup.body("html")

    answer = requests.get(text_link, headers={"User-Agent": BROWSER}, timeout=10)
    assert answer.status_code == 200 and answer.url == original
    assert [r.status_code for r in answer.history] == [302]
    assert answer.history[0].headers["Cache-Control"].startswith("no-store")
    assert [r.target for r in setup.landing.requests] == ["/checkout?c=1&d=2"]
    # The HTML's link (written with &amp;) holds the same URL.
    again = requests.get(html_link, headers={"User-Agent": BROWSER}, timeout=10,
                         allow_redirects=False)
    assert again.status_code == 302 and again.headers["Location"] == original

    [click] = setup.events()
    assert (click.kind, click.machine, click.data["url"]) == (EventKind.CLICK, False, original)
    assert click.idem_key and click.idem_key.startswith("sc-payment-e1-s1-")
    assert setup.clicked()


def test_an_altered_or_foreign_token_does_not_redirect_and_records_nothing(
        setup: Setup) -> None:
    [link, _] = setup.links()
    base, token = link.rsplit("/", 1)
    body, mac = token.split(".")
    evil = make_token(b"another secret, at least sixteen", "c",
                      {"i": read_token(SECRET.encode(), "c", token)["i"],  # type: ignore[index]
                       "u": "https://evil.example.net/"})
    as_open = make_token(SECRET.encode(), "o", {"i": "x", "u": "https://evil.example.net/"})
    swapped = make_token(SECRET.encode(), "c", {"i": "x", "u": "https://evil.example.net/"})
    # The mac's last base64 letter carries 2 bits: the next letter decodes to the same
    # bytes. A different spelling of the token is an altered token all the same.
    respelled = f"{body}.{mac[:-1]}{B64[B64.index(mac[-1]) + 1]}"
    for bad in (f"{body[:-1]}{'A' if body[-1] != 'A' else 'B'}.{mac}",
                f"{body}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}", respelled,
                f"{swapped.split('.')[0]}.{mac}", body, evil, as_open):
        answer = requests.get(f"{base}/{bad}", headers={"User-Agent": BROWSER}, timeout=10,
                              allow_redirects=False)
        assert answer.status_code == 404, bad
        assert "Location" not in answer.headers
    assert setup.events() == []


def test_head_scanner_and_instant_hits_are_kept_as_machine_and_not_counted(
        setup: Setup) -> None:
    [link, _] = setup.links()
    setup.clock[0] = setup.world.day(0, 10, 0) + timedelta(seconds=3)  # as the mail arrives
    answer = requests.get(link, headers={"User-Agent": BROWSER}, timeout=10,
                          allow_redirects=False)
    assert answer.status_code == 302  # a scanner gets where it was going, all the same
    setup.clock[0] = setup.world.day(0, 10, 20)
    assert requests.head(link, headers={"User-Agent": BROWSER}, timeout=10).status_code == 302
    for minute, agent in ((21, "Mozilla/5.0 (compatible; Barracuda Sentinel)"),
                          (21, "python-requests/2.32"), (22, "")):
        setup.clock[0] = setup.world.day(0, 10, minute)
        requests.get(link, headers={"User-Agent": agent}, timeout=10, allow_redirects=False)

    events = setup.events()
    assert [(e.kind, e.machine, e.data["automatic"]) for e in events] == [
        (EventKind.CLICK, True, "seconds after delivery"),
        (EventKind.CLICK, True, "HEAD request"),
        (EventKind.CLICK, True, "scanner or HTTP library"),  # one within the minute
        (EventKind.CLICK, True, "no user agent"),
    ]
    assert not setup.clicked()

    setup.clock[0] = setup.world.day(0, 11, 0)  # the customer, later
    requests.get(link, headers={"User-Agent": BROWSER}, timeout=10)
    requests.get(link, headers={"User-Agent": BROWSER}, timeout=10)  # a double click
    assert [e.machine for e in setup.events()] == [True] * 4 + [False]
    assert setup.clicked()


@pytest.mark.parametrize("setup", [True], indirect=True)
def test_the_open_pixel_is_opt_in_and_records_an_open(setup: Setup) -> None:
    html = setup.body("html")
    assert html.index('width="1" height="1"') < html.index("</body>")
    [pixel] = setup.links("o")
    answer = requests.get(pixel, headers={"User-Agent": BROWSER}, timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "image/gif"
    assert answer.content.startswith(b"GIF89a")
    [opened] = setup.events()
    assert (opened.kind, opened.machine) == (EventKind.OPEN, False)
    altered = pixel[:-2] + ("AA" if not pixel.endswith("AA") else "BB")
    assert requests.get(altered, timeout=10).status_code == 404


def test_without_track_opens_no_pixel_goes_out(setup: Setup) -> None:
    assert setup.links("o") == []
    assert "<img" not in setup.body("html")
