"""Read ``config.toml`` once, expand ``${ENV_VAR}``, validate it whole, check its references.

Every mistake becomes a ``ConfigError`` naming the key path, the bad value and the
expected form (``explain.py`` words them); secrets never appear in messages. A file
that is not TOML at all is named by its line; the commonest case, a Korean name
written as a bare key (``이름 = ...``, ``[flows.결제안내]``: TOML allows only ASCII
letters, digits, ``_`` and ``-`` there), gets the line as it should be written. The
sections are typed all the way down: ``[table]`` is the settings of one backend and
each ``[channels.NAME]`` the settings of one channel type, so the rest of the code
reads attributes, never looks keys up.
"""

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from sheetcrm.config.alerts import AlertsTable
from sheetcrm.config.base import SettingError, Settings, quote_key, resolve_path
from sheetcrm.config.channels import ChannelSettings, TextSettings, text_step_problem
from sheetcrm.config.explain import validation_error
from sheetcrm.config.hearing import (
    EventSettings,
    MailboxSettings,
    ServerSettings,
    report_channel,
)
from sheetcrm.config.language import with_language
from sheetcrm.config.report import ReportSettings, check_report
from sheetcrm.config.retention import LedgerSettings
from sheetcrm.config.rules import RuleKind, RulesSettings
from sheetcrm.config.schedule import ScheduleSettings
from sheetcrm.config.sections import (
    FieldSettings,
    FlowSettings,
    SendingSettings,
    WritebackSettings,
)
from sheetcrm.config.table import TableSettings
from sheetcrm.errors import CellError, ConfigError
from sheetcrm.fields import cell_text
from sheetcrm.i18n import Language, _
from sheetcrm.redact import ENV_REFERENCE

_FLOW_NAME = re.compile(r"^\w[\w-]*$")


class ConfigModel(Settings):
    language: Language = "en"  # with_language fills it in from the environment when absent
    timezone: str = "Asia/Seoul"
    state: str = ".sheetcrm/state.db"
    ledger: LedgerSettings = LedgerSettings()  # [ledger] keep: how long history is kept
    templates: str = "templates"
    table: TableSettings
    fields: dict[str, FieldSettings]
    writeback: WritebackSettings = WritebackSettings()
    tags: dict[str, str] = {}
    channels: dict[str, ChannelSettings] = {}
    flows: dict[str, FlowSettings] = {}
    sending: SendingSettings = SendingSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    server: ServerSettings | None = None
    events: dict[str, EventSettings] = {}
    mailbox: MailboxSettings | None = None
    alerts: AlertsTable = None
    report: ReportSettings = ReportSettings()
    rules: RulesSettings | None = None  # tags, flows, templates kept in the sheet's tabs


@dataclass(frozen=True)
class Config:
    """A validated config, with paths resolved against the config file's folder."""

    model: ConfigModel
    path: Path
    base_dir: Path
    tz: ZoneInfo

    # Short-hands the rest of the code reads.
    @property
    def table(self) -> TableSettings:
        return self.model.table

    @property
    def channels(self) -> dict[str, ChannelSettings]:
        return self.model.channels

    @property
    def fields(self) -> dict[str, FieldSettings]:
        return self.model.fields

    @property
    def writeback(self) -> WritebackSettings:
        return self.model.writeback

    @property
    def tags(self) -> dict[str, str]:
        return self.model.tags

    @property
    def flows(self) -> dict[str, FlowSettings]:
        return self.model.flows

    @property
    def sending(self) -> SendingSettings:
        return self.model.sending

    @property
    def server(self) -> ServerSettings | None:
        return self.model.server

    @property
    def events(self) -> dict[str, EventSettings]:
        return self.model.events

    @property
    def rule_tabs(self) -> dict[RuleKind, str]:
        """Kind (tags, flows, templates) -> the tab holding it, for ``[rules]``."""
        return self.model.rules.tabs() if self.model.rules else {}

    @property
    def key_column(self) -> str:
        return self.fields[self.table.key].column

    @cached_property
    def renames(self) -> dict[str, str]:
        """Old flow name -> the flow now carrying its customers (``renamed_from``)."""
        return {f.renamed_from: name for name, f in self.flows.items() if f.renamed_from}

    @cached_property
    def handoffs(self) -> dict[str, list[str]]:
        """Flow -> the flows that hand their finished customers to it."""
        result: dict[str, list[str]] = {}
        for name, flow in self.flows.items():
            if flow.then:
                result.setdefault(flow.then, []).append(name)
        return result

    def resolve(self, relative: str) -> Path:
        return resolve_path(relative, self.base_dir)

    @property
    def state_path(self) -> Path:
        return self.resolve(self.model.state)

    @property
    def templates_dir(self) -> Path:
        return self.resolve(self.model.templates)


def load_config(path: Path | str, env: Mapping[str, str]) -> Config:
    """Read, expand and validate a config file. Raises ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(_("config file {path} not found; pass --config PATH or create "
                            "config.toml", path=repr(str(path)))) from None
    except UnicodeDecodeError:
        raise ConfigError(_("config file {path} is not UTF-8 text",
                            path=repr(str(path)))) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(toml_problem(path, text, str(exc))) from None
    return config_from_dict(raw, env, path=path)


_TOML_AT = re.compile(r"\(at line (\d+), column \d+\)")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_problem(path: Path, text: str, message: str) -> str:
    """One line for a file tomllib refused: where, and for a bare Korean key the fix."""
    at = _TOML_AT.search(message)
    if at is None:
        return f"{path}: not valid TOML: {message}"
    number = int(at.group(1))
    lines = text.splitlines()
    line = lines[number - 1].strip() if number <= len(lines) else ""
    fixed = _quoted_keys(line)
    if fixed is not None:
        bad, written = fixed
        return (f"{path}, line {number}: {bad} needs quotes in TOML (a bare key is only "
                f"letters A-Z, digits, '_' and '-'); write {written}")
    return f"{path}, line {number}: not valid TOML: {message}: {line}"


def _quoted_keys(line: str) -> tuple[str, str] | None:
    """(the first bare key part that needs quotes, the line with them) or None."""
    header = re.fullmatch(r"(\[\[?)([^\]]*)(\]\]?)(.*)", line)
    if header:
        opening, key, closing, rest = header.groups()
    else:
        key, equals, rest = _split_outside_quotes(line, "=")
        if not equals:
            key, rest = line, ""
        opening, closing, rest = "", " = " if equals else "", rest.lstrip()
    parts = _split_key(key)
    bad = next((p for p in parts if not p.startswith(('"', "'")) and p
                and not _BARE_KEY.fullmatch(p)), None)
    if bad is None or bad.isascii() or not re.fullmatch(r"[\w -]+", bad):
        return None  # not a name in Korean (or another script) that only lacks quotes
    quoted = ".".join(p if p.startswith(('"', "'")) or _BARE_KEY.fullmatch(p) else f'"{p}"'
                      for p in parts)
    written = f"{opening}{quoted}{closing}{rest}" if header else f"{quoted}{closing}{rest}"
    return repr(bad), written


def _split_outside_quotes(text: str, sep: str) -> tuple[str, str, str]:
    """``text.partition(sep)`` at the first ``sep`` not inside quotes."""
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == sep:
            return text[:i], sep, text[i + 1 :]
    return text, "", ""


def _split_key(key: str) -> list[str]:
    """A dotted key's parts, stripped; quoted parts keep their quotes."""
    parts = []
    rest = key
    while True:
        part, dot, rest = _split_outside_quotes(rest, ".")
        parts.append(part.strip())
        if not dot:
            return parts


RECORD_ID_FIELD = "record_id"  # Airtable without [table] key: rows are keyed by record id


def config_from_dict(raw: dict[str, Any], env: Mapping[str, str], *, path: Path) -> Config:
    expanded: Any = with_language(_expand_env(raw, env, ""), env)
    table = expanded.get("table")
    if isinstance(table, dict) and table.get("backend") == "airtable" and "key" not in table:
        # Airtable records have an id of their own; the backend shows it as "_id".
        expanded["table"] = {**table, "key": RECORD_ID_FIELD}
        fields = expanded.get("fields") if isinstance(expanded.get("fields"), dict) else {}
        expanded["fields"] = {RECORD_ID_FIELD: {"column": "_id"}, **fields}
    try:
        model = ConfigModel.model_validate(expanded)
    except ValidationError as exc:
        raise validation_error(exc, ConfigModel) from None
    try:
        tz = ZoneInfo(model.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            _("unknown time zone {zone}; expected an IANA name like 'Asia/Seoul'",
              zone=repr(model.timezone)),
            path="timezone",
        ) from None
    _check_rules(model, given_templates="templates" in expanded)
    _check_references(model)
    check_report(model.report, model.fields)
    return Config(model=model, path=path, base_dir=path.resolve().parent, tz=tz)


def with_rules(config: Config, tags: dict[str, str] | None,
               flows: Mapping[str, Any] | None) -> Config:
    """The config with tags and flows read from the sheet's tabs, checked as the file's.

    ``flows`` holds each flow as ``[flows.NAME]`` would (a dict); ``None`` keeps the
    file's own. Raises ConfigError naming the key path (``flows.NAME.steps[1].channel``).
    """
    update: dict[str, Any] = {}
    if tags is not None:
        update["tags"] = dict(tags)
    if flows is not None:
        validated = {}
        for name, raw in flows.items():
            try:
                validated[name] = FlowSettings.model_validate(raw)
            except ValidationError as exc:
                raise validation_error(exc, FlowSettings, ("flows", name)) from None
        update["flows"] = validated
    if not update:
        return config
    model = config.model.model_copy(update=update)
    _check_references(model)
    return Config(model=model, path=config.path, base_dir=config.base_dir, tz=config.tz)


def _expand_env(value: Any, env: Mapping[str, str], where: str) -> Any:
    """Replace ``${NAME}`` in every string; a missing variable is a ConfigError."""
    if isinstance(value, dict):
        return {k: _expand_env(v, env, f"{where}.{k}" if where else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in env:
                raise ConfigError(_("environment variable {name} is not set", name=name),
                                  path=where)
            return env[name]

        return ENV_REFERENCE.sub(sub, value)
    return value


def _check_references(model: ConfigModel) -> None:
    """Names that point elsewhere in the file must exist."""
    if model.table.key not in model.fields:
        raise ConfigError(_not_a_field(model.table.key, model), path="table.key")
    owned = model.writeback.columns()
    if len(set(owned)) != len(owned):
        raise ConfigError(_("writeback columns must differ, got {columns}", columns=owned),
                          path="writeback")
    for column in model.writeback.adopt:
        if column not in owned:
            raise ConfigError(_("{column} is not one of the writeback columns {columns}; "
                                "adopt names a column sheetcrm writes", column=repr(column),
                                columns=owned), path="writeback.adopt")
    for name, field in model.fields.items():
        if field.column in owned:
            raise ConfigError(
                _("column {column} is a writeback column; sheetcrm would overwrite it",
                  column=repr(field.column)),
                path=f"fields.{quote_key(name)}.column",
            )
    for key in ("consent", "unsubscribed"):
        name = getattr(model.sending, key)
        if name is not None and name not in model.fields:
            raise ConfigError(_not_a_field(name, model), path=f"sending.{key}")
    if model.sending.compliance == "kr":
        for key in ("sender_name", "sender_contact", "opt_out"):
            if not getattr(model.sending, key):
                raise ConfigError(_("compliance = 'kr' needs the sender's name, contact and "
                                    "how to opt out for the ad footer"), path=f"sending.{key}")
    for name, event in model.events.items():
        _check_event(model, name, event)
    channels = model.channels
    for name, settings in channels.items():
        to = settings.recipient_field
        if to is not None and to not in model.fields:
            raise ConfigError(_not_a_field(to, model), path=f"channels.{quote_key(name)}.to")
    renamed: dict[str, str] = {}
    for flow_name, flow in model.flows.items():
        where = f"flows.{quote_key(flow_name)}"
        if flow.renamed_from is not None and flow.renamed_from in renamed:
            raise ConfigError(_("{flow} already says it was renamed from {old}",
                                flow=repr(renamed[flow.renamed_from]),
                                old=repr(flow.renamed_from)), path=f"{where}.renamed_from")
        if flow.renamed_from is not None:
            renamed[flow.renamed_from] = flow_name
        if not _FLOW_NAME.match(flow_name):
            raise ConfigError(_("a flow name is letters, digits, '_' or '-'"), path=where)
        if flow.anchor is not None and flow.anchor not in model.fields:
            raise ConfigError(_("{name} is not a field", name=repr(flow.anchor)),
                              path=f"{where}.anchor")
        for i, step in enumerate(flow.steps):
            if step.channel not in channels:
                raise ConfigError(
                    _("unknown channel {name}; defined: {defined}", name=repr(step.channel),
                      defined=sorted(channels) or _("none")),
                    path=f"{where}.steps[{i}].channel",
                )
            channel = channels[step.channel]
            problem = isinstance(channel, TextSettings) and text_step_problem(
                channel, step.template, step.kind, model.sending.sender_name)
            if problem:
                raise ConfigError(problem, path=f"{where}.steps[{i}]")
        if flow.then is not None and flow.then not in model.flows:
            raise ConfigError(_("unknown flow {name}; defined: {defined}",
                                name=repr(flow.then), defined=sorted(model.flows)),
                              path=f"{where}.then")
        old = flow.renamed_from
        if old is not None and (old in model.flows or not _FLOW_NAME.match(old)):
            if old in model.flows:
                problem = _("{old} is still a flow of this config; renamed_from names the "
                            "flow's old name", old=repr(old))
            else:
                problem = _("{old} is not a flow name (letters, digits, '_' or '-'); "
                            "renamed_from names the flow's old name", old=repr(old))
            raise ConfigError(problem, path=f"{where}.renamed_from")
        cycle = _handoff_cycle(model.flows, flow_name)
        if cycle:
            raise ConfigError(
                _("hand-offs go round in a circle ({cycle}): a customer would be messaged "
                  "by these flows forever; remove one 'then'", cycle=" → ".join(cycle)),
                path=f"{where}.then")
        afters = [s.after for s in flow.steps]
        if afters != sorted(afters):
            raise ConfigError(_("step 'after' offsets must not decrease"), path=f"{where}.steps")


def _check_rules(model: ConfigModel, *, given_templates: bool) -> None:
    """``[rules]``: each kind in one place only, on a backend that reads the tabs."""
    if model.rules is None:
        return
    tabs = model.rules.tabs()
    twice = {"tags": bool(model.tags), "flows": bool(model.flows),
             "templates": given_templates}
    for kind, tab in tabs.items():
        if twice[kind]:
            written = {"tags": "[tags]", "flows": "[flows.*]",
                       "templates": "templates = ..."}[kind]
            raise ConfigError(_("{kind} are given twice: in the tab {tab} and in {written} of "
                                "this file; keep one (remove {written}, or rules.{kind})",
                                kind=kind, tab=repr(tab), written=written),
                              path=f"rules.{kind}")


def _check_event(model: ConfigModel, name: str, event: EventSettings) -> None:
    """``[events.NAME]``: a URL-safe name, fields that exist, literals that fit them."""
    where = f"events.{quote_key(name)}"
    if not _FLOW_NAME.match(name):
        raise ConfigError(_("an event name is letters, digits, '_' or '-' (it is the URL "
                            "/e/NAME)"), path=where)
    if model.server is None:
        raise ConfigError(_("events arrive at the endpoint (POST /e/NAME): add a [server] "
                            "section with public_url and secret"), path=where)
    if event.reports:
        try:
            report_channel(event, model.channels)
        except SettingError as exc:
            raise ConfigError(str(exc), path=f"{where}.channel") from None
    for field_name, value in event.set.items():
        field = model.fields.get(field_name)
        if field is None:
            raise ConfigError(_not_a_field(field_name, model), path=f"{where}.set")
        if field_name == model.table.key:
            raise ConfigError(_("{name} is the key: an event finds its row by key and never "
                                "changes it", name=repr(field_name)), path=f"{where}.set")
        if isinstance(value, dict):
            continue  # { from = "path" }: checked on each event as it arrives
        parse = field.parser(field_name, ZoneInfo("UTC"))
        try:
            parse(cell_text(value))
        except CellError as exc:
            raise ConfigError(_("{field}: {value} is not {expected} (the type of field "
                                "{name})", field=field_name, value=repr(value),
                                expected=exc.expected, name=repr(field_name)),
                              path=f"{where}.set") from None
    if event.append and model.table.backend != "csv":
        raise ConfigError(_("append = true adds rows, which only the csv backend does for "
                            "now; with {backend}, add the rows yourself (or collect the form "
                            "into a CSV table)", backend=model.table.backend),
                          path=f"{where}.append")


def _not_a_field(name: str | None, model: ConfigModel) -> str:
    """``'x' is not a field; expected one of [...]``, in the operator's language."""
    return _("{name} is not a field; expected one of {fields}", name=repr(name),
             fields=sorted(model.fields))


def _handoff_cycle(flows: Mapping[str, FlowSettings], start: str) -> list[str]:
    """The flows ``then`` leads through from ``start`` back to it, or [] if it does not."""
    path, name = [start], flows[start].then
    while name is not None and name in flows and name not in path:
        path.append(name)
        name = flows[name].then
    return [*path, name] if name == start else []
