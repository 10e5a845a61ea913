"""Rewriting a message's links for click tracking: the text stays readable, the HTML
stays what it was apart from its links' targets, and only web links are touched."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from sheetcrm.core.links import Tracking, track_html, track_text, tracked
from sheetcrm.tokens import read_token

PUBLIC = "https://crm.example.com"
SECRET = b"a secret of at least sixteen characters"
TRACKING = Tracking(PUBLIC, SECRET, "sc-payment-e1-s1-abc")
_TRACKED = re.compile(re.escape(PUBLIC) + r"/c/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)")


def untracked(text: str) -> str:
    """Each tracked link replaced by the URL its token holds."""
    def back(m: re.Match[str]) -> str:
        payload = read_token(SECRET, "c", m.group(1))
        assert payload is not None and payload["i"] == "sc-payment-e1-s1-abc"
        return str(payload["u"])
    return _TRACKED.sub(back, text)


def test_text_links_are_replaced_one_for_one_and_the_words_around_them_stay() -> None:
    text = ("김수현님, 결제 이어하기: https://class.example.com/checkout?c=1&d=2.\n"
            "강의실은 https://class.example.com/my에서 확인하세요!\n"
            "(자세히: https://ko.wikipedia.org/wiki/Foo_(bar)), 또는 http://a.example/x?\n"
            "문의 mailto:help@example.com · tel:+82-2-123-4567 · ftp://files.example.com/a\n"
            f"수신 거부: {PUBLIC}/u/already-signed\n"
            "끝.\n")
    out = track_text(text, TRACKING)
    assert len(_TRACKED.findall(out)) == 4
    assert untracked(out) == text  # nothing else moved: punctuation, particles, lines
    assert "https://class.example.com" not in out
    assert "mailto:help@example.com" in out and "ftp://files.example.com/a" in out
    assert f"{PUBLIC}/u/already-signed" in out  # the opt-out link goes straight to the page
    assert re.search(r"/c/[\w\-.]+\.\n강의실은 ", out)  # the sentence's period stays after it
    assert re.search(r"/c/[\w\-.]+에서 확인하세요", out)


def test_rewriting_twice_changes_nothing_more_and_nothing_is_tracked_when_off() -> None:
    text = "a https://shop.example.com/x b"
    html = '<p><a href="https://shop.example.com/x">x</a></p>'
    once = tracked(text, html, TRACKING)
    assert tracked(*once, TRACKING) == once
    off = Tracking(PUBLIC, SECRET, "k", clicks=False, opens=False)
    assert tracked(text, html, off) == (text, html)


class Events(HTMLParser):
    """The parse of an HTML body as a list of events, for comparing two bodies."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[tuple] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.events.append(("start", tag, tuple(attrs)))

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.events.append(("startend", tag, tuple(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.events.append(("end", tag))

    def handle_data(self, data: str) -> None:
        self.events.append(("data", data))

    def handle_comment(self, data: str) -> None:
        self.events.append(("comment", data))

    def handle_decl(self, decl: str) -> None:
        self.events.append(("decl", decl))


HTML = """<!DOCTYPE html>
<html><head><style>a[href^="https://x.example"] { color: red }</style></head>
<body>
<!-- <a href="https://commented.example/">not a link</a> -->
<p>김수현님, <A HREF="https://class.example.com/checkout?c=1&amp;d=2" class=btn
   target="_blank">결제 이어하기</A> ·
<a href='https://class.example.com/my' title='"강의실" 바로가기'>강의실</a></p>
<p><a href="mailto:help@example.com">문의</a> <a href="#top">위로</a> <a name="top">앵커</a>
<a href="tel:021234567">전화</a> <a href="https://crm.example.com/u/already-signed">수신 거부</a>
<map><area shape="rect" coords="0,0,1,1" href="https://class.example.com/area"/></map></p>
<script>var s = '<a href="https://script.example/">';</script>
<img src="https://class.example.com/logo.png" alt="로고">
</body></html>"""


def test_html_links_are_tracked_and_everything_else_parses_as_before() -> None:
    out = track_html(HTML, TRACKING)
    before, after = Events(HTML).events, Events(out).events
    assert len(before) == len(after)
    changed = []
    for b, a in zip(before, after, strict=True):
        if b == a:
            continue
        assert b[:2] == a[:2] and b[0] in ("start", "startend")  # only a tag's attributes
        attrs_b, attrs_a = dict(b[2]), dict(a[2])
        assert attrs_b.keys() == attrs_a.keys()
        assert {k: v for k, v in attrs_b.items() if k != "href"} == \
               {k: v for k, v in attrs_a.items() if k != "href"}
        assert untracked(attrs_a["href"]) == attrs_b["href"]
        changed.append(attrs_b["href"])
    assert changed == ["https://class.example.com/checkout?c=1&d=2",
                       "https://class.example.com/my", "https://class.example.com/area"]
    # What was not a link tag is kept byte for byte.
    for kept in ('<!-- <a href="https://commented.example/">not a link</a> -->',
                 "<script>var s = '<a href=\"https://script.example/\">';</script>",
                 '<img src="https://class.example.com/logo.png" alt="로고">',
                 '<a href="https://crm.example.com/u/already-signed">', "<!DOCTYPE html>"):
        assert kept in out


def test_the_open_pixel_goes_before_the_end_of_the_body_or_at_the_end() -> None:
    opens = Tracking(PUBLIC, SECRET, "sc-payment-e1-s1-abc", clicks=False, opens=True)
    out = track_html(HTML, opens)
    pixel = re.search(r'<img src="https://crm\.example\.com/o/([\w\-]+\.[\w\-]+)" width="1" '
                      r'height="1"[^>]*>\n?</body>', out)
    assert pixel and read_token(SECRET, "o", pixel.group(1)) == {"i": "sc-payment-e1-s1-abc"}
    assert out.replace(pixel.group(0), "</body>") == HTML  # nothing else changed
    assert track_html("<p>hi</p>", opens).startswith('<p>hi</p><img src="https://crm.')
