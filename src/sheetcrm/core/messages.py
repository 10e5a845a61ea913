"""Turn a planned send and its customer's row into a ready Message.

The template sees every field by name plus where the customer is; an A/B
variant may have a template file of its own; with ``compliance = "kr"`` an ad
gets the ``(광고)`` subject marker and the sender/opt-out footer the law requires.

With ``[server]``, every ad carries its own opt-out page (``/u/TOKEN``, a signed
token holding the send's idempotency key: nothing in the URL names the customer and
nobody can make one for someone else). The footer links it and the email channels
put it in ``List-Unsubscribe``: one URL, made here once per message.

With ``[server]`` an email's links go through the endpoint (``links``), last, so the
footer's links are seen too (and the opt-out link is left as it is).

A step on a text-message channel (AlimTalk, SMS/LMS) takes its own form (``texts``).

A template that reads a field whose cell could not be read on the customer's row is
not rendered for that customer (the planner holds the send until the cell is fixed;
``unreadable_in_template`` says why): a mail with a blank where the course name
belongs is worse than a mail a day later.
"""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from sheetcrm import tokens
from sheetcrm.config import Config, EmailSettings
from sheetcrm.config.channels import TextSettings
from sheetcrm.core.links import Tracking, tracked
from sheetcrm.core.texts import text_message
from sheetcrm.errors import TemplateError
from sheetcrm.i18n import _
from sheetcrm.model import Message, PlannedSend, Record
from sheetcrm.templates import Rendered, Templates

AD_MARKER = "(광고)"
OPT_OUT_LINK = "수신 거부"  # the footer's words before the opt-out page's URL
# Spellings of the marker that the law does not accept: [광고], 광고), ( 광고 ), <광고>...
_MISSPELLED_MARKER = re.compile(r"^\s*[\[(<{【]?\s*광\s*고\s*[\])>}】]?")


def context_for(rec: Record, send: PlannedSend, tags: list[str], now: datetime,
                config: Config) -> dict[str, Any]:
    """Template variables: every field by name, plus where the customer is."""
    return {
        **rec.values,
        "key": rec.key,
        "tags": tags,
        "flow": send.flow,
        "step": send.step + 1,
        "steps": send.steps,
        "variant": send.variant,
        "now": now.astimezone(config.tz),
    }


def template_name(send: PlannedSend, templates: Templates) -> str:
    """``<template>.<variant>`` when that file exists, else the step's template."""
    if send.variant:
        special = f"{send.template}.{send.variant}"
        if special in templates.names():
            return special
    return send.template


def unreadable_in_template(rec: Record, send: PlannedSend, config: Config,
                           templates: Templates) -> str | None:
    """Why this send's template cannot be rendered for ``rec`` yet, or None.

    It uses a field whose cell could not be read on the row. A template that cannot
    be read itself is not this function's business (rendering it says why).
    """
    if not rec.unknown:
        return None
    name = template_name(send, templates)
    try:
        used = templates.reads(name)
    except TemplateError:
        return None
    columns = [config.fields[f].column for f in rec.unknown if f in used and f in config.fields]
    if not columns:
        return None
    shown = ", ".join(repr(c) for c in columns)
    return _("template {name} uses {columns}, which could not be read on this row; "
             "the message waits until the cell is fixed", name=repr(name), columns=shown)


def build_message(rec: Record, send: PlannedSend, tags: list[str], now: datetime,
                  config: Config, templates: Templates) -> Message:
    unreadable = unreadable_in_template(rec, send, config, templates)
    if unreadable:
        raise TemplateError(unreadable)
    name = template_name(send, templates)
    context = context_for(rec, send, tags, now, config)
    rendered = templates.render(name, context)
    channel = config.channels[send.channel]
    meta = {"key": rec.key, "flow": send.flow, "step": str(send.step + 1),
            "template": send.template, "date": format_datetime(now)}
    if send.variant:
        meta["variant"] = send.variant
    if isinstance(channel, TextSettings):  # AlimTalk, SMS/LMS: their own forms (texts.py)
        base = Message(send.idem_key, rec.key, "", "", kind=send.kind, meta=meta)
        return text_message(base, rendered, context, channel, config, name)
    unsubscribe = unsubscribe_link(config, send.idem_key) if send.kind == "ad" else None
    if send.kind == "ad" and config.sending.compliance == "kr":
        rendered = korean_ad(rendered, config, unsubscribe)
    tracking = link_tracking(send, config)
    if tracking is not None and isinstance(channel, EmailSettings):
        text, html = tracked(rendered.text, rendered.html, tracking)
        rendered = Rendered(rendered.subject, text, html, rendered.payload)
    to_field = channel.recipient_field
    recipient = str(rec.values.get(to_field) or "") if to_field else rec.key
    return Message(
        idempotency_key=send.idem_key,
        recipient=recipient,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        kind=send.kind,
        payload=rendered.payload,
        meta=meta,
        unsubscribe=unsubscribe,
    )


def unsubscribe_link(config: Config, idem_key: str) -> str | None:
    """The opt-out page of the message with this idempotency key (None without [server])."""
    server = config.server
    if server is None:
        return None
    secret = server.secret.get_secret_value().encode("utf-8")
    return tokens.link(server.public_url, secret, "u", {"i": idem_key})


def link_tracking(send: PlannedSend, config: Config) -> Tracking | None:
    """How this send's links are tracked (``[server] track_clicks`` / ``track_opens``)."""
    server = config.server
    if server is None or not (server.track_clicks or server.track_opens):
        return None
    return Tracking(server.public_url, server.secret.get_secret_value().encode("utf-8"),
                    send.idem_key, clicks=server.track_clicks, opens=server.track_opens)


def korean_ad(rendered: Rendered, config: Config, unsubscribe: str | None = None
              ) -> Rendered:
    """정보통신망법 §50: '(광고)' first in the subject; sender, contact, free opt-out.

    ``unsubscribe`` (the ad's opt-out page, with ``[server]``) is linked in the footer.
    """
    s = config.sending
    subject = rendered.subject
    if not subject.startswith(AD_MARKER):
        subject = f"{AD_MARKER} {subject}"
    link = f"\n{OPT_OUT_LINK}: {unsubscribe}" if unsubscribe else ""
    footer = f"보낸 곳: {s.sender_name} ({s.sender_contact})\n{s.opt_out}{link}"
    text = rendered.text
    if footer not in text:
        text = f"{text.rstrip()}\n\n---\n{footer}\n"
    html = rendered.html
    if html is not None and s.opt_out and s.opt_out not in html:
        anchor = (f'<br><a href="{_esc(unsubscribe)}">{OPT_OUT_LINK}</a>'
                  if unsubscribe else "")
        html += (f'<hr><p style="font-size:12px;color:#666">보낸 곳: {_esc(s.sender_name)} '
                 f"({_esc(s.sender_contact)})<br>{_esc(s.opt_out)}{anchor}</p>")
    return Rendered(subject, text, html, rendered.payload)


def misspelled_marker(subject: str) -> bool:
    """True when a subject tries to mark an ad but not exactly as '(광고)'."""
    return bool(_MISSPELLED_MARKER.match(subject)) and not subject.startswith(AD_MARKER)


def _esc(text: str | None) -> str:
    from markupsafe import escape

    return str(escape(text or ""))
