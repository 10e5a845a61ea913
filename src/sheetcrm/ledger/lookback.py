"""What the rules read back in time, and whether ``[ledger] keep`` covers it.

The rules read the history: ``sent_count(days=30)``, ``clicked(days=14)``,
``event_count('paid', days=60)``, ``frequency_cap = "2/7d"``, ``min_gap``. The
windows are read from each condition's syntax tree (a number written in the call);
the ledger's load (``recent``) and its pruning (``retention``) both go by them.

History kept for less than the rules read would make them count less, and a
customer would be messaged who would not have been. Such a config is refused, naming
the condition and both windows, rather than quietly keeping more than the operator
asked for (a file bigger than expected, with no word why) or counting less. A
helper that reads the whole history (``sent_count()`` without ``days``,
``last_event``) is refused with ``keep`` for the same reason. The refusal comes when
a run reads the ledger (``history_scope``): ``plan`` shows it and ``sync`` stops
before anything is sent. The config layer cannot tell: it reads no expression.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

from jinja2 import nodes

from sheetcrm.config import quote_key
from sheetcrm.errors import ConfigError, RuleError
from sheetcrm.expressions.parse import parse
from sheetcrm.i18n import _

if TYPE_CHECKING:
    from sheetcrm.config import Config

#: The helpers that read the sends, and those that read what came back, with a window.
SENDS_HELPERS = frozenset({"sent_count"})
EVENTS_HELPERS = frozenset({"clicked", "opened", "replied", "event_count", "last_event"})
#: Helpers that read the applied ``[events.NAME]`` events (the others read clicks,
#: opens and replies, which are never marked applied).
APPLIED_HELPERS = frozenset({"event_count", "last_event"})
ENGAGEMENT_HELPERS = frozenset({"clicked", "opened", "replied"})


def helper_days(source: str, helpers: Iterable[str]) -> list[float | None]:
    """The ``days`` of each call of one of ``helpers`` in a condition, read from its
    syntax tree: None where the call reads the whole history (no ``days``, or not a
    number written in the call, or ``last_event``), or the text is not a condition."""
    wanted = frozenset(helpers)
    if not any(name in source for name in wanted):
        return []
    try:
        tree = parse(source, "")
    except RuleError:  # a tag name as a trigger; or not a condition: assume the worst
        return [None]
    found: list[float | None] = []
    calls = [tree] if isinstance(tree, nodes.Call) else []  # find_all skips the root
    for call in [*calls, *tree.find_all(nodes.Call)]:
        if not (isinstance(call.node, nodes.Name) and call.node.name in wanted):
            continue
        given = [kw.value for kw in call.kwargs if kw.key == "days"]
        if call.node.name == "sent_count":
            given = given or call.args[:1]
        elif call.node.name == "event_count":
            given = given or call.args[1:2]
        elif call.node.name != "last_event":
            given = given or call.args[:1]
        days = given[0].value if given and isinstance(given[0], nodes.Const) else None
        found.append(float(days) if isinstance(days, int | float) and not isinstance(
            days, bool) else None)
    return found


def conditions(config: Config) -> list[tuple[str, str]]:
    """(key path, condition) of every condition in the config: tags, triggers (but
    those naming a tag), goals."""
    found = [(f"tags.{quote_key(tag)}", source) for tag, source in config.tags.items()]
    for name, flow in config.flows.items():
        where = f"flows.{quote_key(name)}"
        if flow.trigger not in config.tags:
            found.append((f"{where}.trigger", flow.trigger))
        if flow.goal:
            found.append((f"{where}.goal", flow.goal))
    return found


def check_keep(config: Config) -> None:
    """``[ledger] keep`` must cover every window the rules read; ConfigError naming the
    first that it does not."""
    keep = config.model.ledger.keep
    if keep is None:
        return
    shown = _days_text(keep)
    for path, source in conditions(config):
        for days in helper_days(source, SENDS_HELPERS | EVENTS_HELPERS):
            if days is None:
                raise ConfigError(_(
                    "{source} reads the whole history, but [ledger] keep = {keep} forgets "
                    "what is older than {keep}; give it days=N (N at most {keep}) or "
                    "remove keep", source=repr(source), keep=shown), path=path)
            if timedelta(days=days) > keep:
                raise ConfigError(_(
                    "{source} reads {days} days back, but [ledger] keep = {keep} forgets "
                    "what is older; make keep at least {days}d or the window shorter",
                    source=repr(source), days=f"{days:g}", keep=shown), path=path)
    sending = config.sending
    windows = [("sending.frequency_cap", sending.frequency_cap and sending.frequency_cap[1]),
               ("sending.min_gap", sending.min_gap)]
    for path, window in windows:
        if window is not None and window > keep:
            raise ConfigError(_(
                "{path} looks {window} back, but [ledger] keep = {keep} forgets what is "
                "older; make keep at least {window}", path=path, window=_days_text(window),
                keep=shown), path="ledger.keep")


def _days_text(span: timedelta) -> str:
    """``"400d"``, or ``"36h"`` for a span that is not whole days."""
    seconds = int(span.total_seconds())
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds}s"
