"""Tracked links: a message's links go through the endpoint's ``/c/TOKEN``.

Why it is built this way:

- **The token holds the link.** Each ``/c/TOKEN`` carries the send's idempotency key
  and the URL the message held, signed with ``[server] secret``
  (``tokens.make_token(secret, "c", {"i": ..., "u": ...})``): the endpoint redirects
  only to that URL, so it is never an open redirect, and an altered token redirects
  nowhere.
- **Pure.** The message is rewritten where it is built (``messages.build_message``),
  from its text and the settings; nothing is looked up or stored here.
- **The text stays readable.** In the text body only ``http(s)://`` URLs are replaced,
  one for one; the words around them, the punctuation that ends a sentence after a
  URL and a Korean particle written right after it (``https://…/my에서``) stay where
  they were.
- **The HTML stays valid.** The HTML body is read with the standard library's
  ``html.parser`` (so a link inside a comment, a ``<script>`` or an attribute value
  is not taken for one); only the start tags of ``<a>`` and ``<area>`` whose ``href``
  changes are written anew, attributes escaped, and every other byte is kept.
- **Not everything is a link to follow.** ``mailto:``, ``tel:``, fragments and
  anything that is not ``http(s)`` stay as they are, and so does every link into the
  endpoint itself (the unsubscribe link above all: it must work without a redirect).
- **Opens are opt-in.** With ``track_opens`` a 1×1 image ``/o/TOKEN`` goes at the end
  of the HTML body (before ``</body>`` when there is one). Opens are unreliable (image
  proxies and Apple Mail Privacy Protection fetch every image), so they are only ever
  shown as such.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from html.parser import HTMLParser

from sheetcrm.tokens import make_token

CLICK, OPEN = "c", "o"  # token purposes, and the endpoint's path for each

# A URL in plain text: ASCII URL characters only, so a Korean word written right after
# it is not swallowed; the punctuation that usually ends a sentence is cut off below.
_TEXT_URL = re.compile(r"""https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+""", re.I)
_TRAILING = ".,;:!?'\""
_LINK_TAGS = ("a", "area")


@dataclass(frozen=True)
class Tracking:
    """What rewriting one message needs: where the endpoint is, the key, the send."""

    public_url: str  # the endpoint's base URL, without a trailing slash
    secret: bytes
    idem_key: str
    clicks: bool = True
    opens: bool = False

    def click_url(self, url: str) -> str:
        token = make_token(self.secret, CLICK, {"i": self.idem_key, "u": url})
        return f"{self.public_url}/{CLICK}/{token}"

    def open_url(self) -> str:
        return f"{self.public_url}/{OPEN}/{make_token(self.secret, OPEN, {'i': self.idem_key})}"

    def followed(self, url: str) -> bool:
        """Whether ``url`` is a link to send through ``/c/``."""
        head = url[:8].lower()
        if not (head.startswith("http://") or head.startswith("https://")):
            return False
        own = self.public_url.lower()
        return not (url.lower() == own or url.lower().startswith(own + "/"))


def track_text(text: str, tracking: Tracking) -> str:
    """``text`` with every ``http(s)`` URL replaced by its ``/c/`` link."""
    if not tracking.clicks:
        return text
    return _TEXT_URL.sub(lambda m: _replace_in_text(m.group(0), tracking), text)


def _replace_in_text(found: str, tracking: Tracking) -> str:
    url, tail = _split_trailing(found)
    if not tracking.followed(url):
        return found
    return tracking.click_url(url) + tail


def _split_trailing(found: str) -> tuple[str, str]:
    """The URL and the punctuation after it that belongs to the sentence."""
    url = found
    while url and (url[-1] in _TRAILING or (url[-1] == ")" and url.count("(") < url.count(")"))):
        url = url[:-1]
    return url, found[len(url):]


def track_html(html: str, tracking: Tracking) -> str:
    """``html`` with its links' ``href`` through ``/c/`` and, if asked, the open pixel."""
    reader = _LinkReader(html)
    edits: list[tuple[int, int, str]] = []
    if tracking.clicks:
        for start, raw, tag, attrs in reader.links:
            changed = False
            new_attrs: list[tuple[str, str | None]] = []
            for name, value in attrs:
                if name == "href" and value is not None and tracking.followed(value.strip()):
                    value, changed = tracking.click_url(value.strip()), True
                new_attrs.append((name, value))
            if changed:
                edits.append((start, start + len(raw), _start_tag(tag, new_attrs, raw)))
    if tracking.opens:
        at = reader.body_end if reader.body_end is not None else len(html)
        edits.append((at, at, _pixel(tracking.open_url())))
    out, last = [], 0
    for start, end, replacement in sorted(edits, key=lambda e: e[0]):
        out += [html[last:start], replacement]
        last = end
    out.append(html[last:])
    return "".join(out)


def _start_tag(tag: str, attrs: list[tuple[str, str | None]], raw: str) -> str:
    parts = [tag]
    for name, value in attrs:
        parts.append(name if value is None else f'{name}="{escape(value, quote=True)}"')
    close = " />" if raw.rstrip().endswith("/>") else ">"
    return "<" + " ".join(parts) + close


def _pixel(url: str) -> str:
    return (f'<img src="{escape(url, quote=True)}" width="1" height="1" alt="" '
            'style="display:block;width:1px;height:1px;border:0">')


class _LinkReader(HTMLParser):
    """The start tags of links (with their offsets and raw text) and where ``</body>`` is."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self._lines = [0, *(m.end() for m in re.finditer("\n", html))]
        self.links: list[tuple[int, str, str, list[tuple[str, str | None]]]] = []
        self.body_end: int | None = None
        self.feed(html)
        self.close()

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._lines[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raw = self.get_starttag_text()
        if tag in _LINK_TAGS and raw is not None and any(n == "href" for n, _ in attrs):
            self.links.append((self._offset(), raw, tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "body" and self.body_end is None:
            self.body_end = self._offset()


def tracked(text: str, html: str | None, tracking: Tracking) -> tuple[str, str | None]:
    """The text and HTML bodies of one message, their links tracked."""
    return track_text(text, tracking), (None if html is None else track_html(html, tracking))
