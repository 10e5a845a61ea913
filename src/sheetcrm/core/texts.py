"""Turn a rendered template into a text message for a Korean provider (Solapi, NHN Cloud).

Called by ``messages.build_message`` for a step on a text channel, in place of the
email forms. What it makes:

- the recipient: the ``to`` field's number in one form (``01012345678``); a cell that
  is not a mobile number stays as written, and the channel refuses it for that row;
- for **AlimTalk**: the approved template's text with each ``#{변수}`` filled from
  the row (``texting.fill_alimtalk``), and the payload the channel sends: the template
  id and the variables (``{"alimtalk": {"template": id, "variables": {...}}}``);
- for **SMS/LMS**: the text (an ad in its §50 form: ``(광고)`` and the sender's name
  first, the free 080 opt-out last), ``meta["type"]`` SMS or LMS by its size, and
  the subject an LMS carries.

A text that cannot be sent (a variable with no value, over the size limits, an ad
marked otherwise than ``(광고)``) raises TemplateError naming the template: ``check``
finds it on every row before ``sync`` would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sheetcrm.config import Config
from sheetcrm.config.channels import TextSettings
from sheetcrm.errors import TemplateError
from sheetcrm.i18n import _
from sheetcrm.model import Message
from sheetcrm.templates import Rendered
from sheetcrm.texting import (
    TextProblem,
    ad_text,
    fill_alimtalk,
    normalize_mobile,
    sms_type,
    subject_for,
)


def alimtalk_template_id(settings: TextSettings, name: str, step_template: str) -> str:
    """The approved id of template ``name`` (an A/B variant's own, else its step's)."""
    return settings.templates.get(name) or settings.templates[step_template]


def text_message(base: Message, rendered: Rendered, context: Mapping[str, Any],
                 settings: TextSettings, config: Config, template: str) -> Message:
    """``base`` (ids, meta, kind) made into the provider's text message.

    ``template`` is the file rendered (a variant's, or the step's own).
    """
    cell = context.get(settings.to)
    try:
        recipient = normalize_mobile(cell or "")
    except ValueError:
        recipient = "" if cell is None else str(cell)  # refused by the channel: a row error
    meta = dict(base.meta)
    payload = None
    step_template = base.meta.get("template", template)
    try:
        if settings.mode == "alimtalk":
            text, variables = fill_alimtalk(rendered.text.strip(), rendered.payload, context)
            payload = {"alimtalk": {"template": alimtalk_template_id(settings, template,
                                                                     step_template),
                                    "variables": variables}}
            meta["type"] = "ATA"
        else:
            text = rendered.text.strip()
            if base.kind == "ad":
                sender = settings.sender_name or config.sending.sender_name or ""
                text = ad_text(text, sender, settings.opt_out_number or "")
            meta["type"] = sms_type(text)
    except TextProblem as exc:
        raise TemplateError(_("template {name}: {problem}", name=repr(template),
                              problem=exc)) from None
    return Message(
        idempotency_key=base.idempotency_key,
        recipient=recipient,
        subject=subject_for(rendered.subject),
        text=text,
        kind=base.kind,
        payload=payload,
        meta=meta,
    )
