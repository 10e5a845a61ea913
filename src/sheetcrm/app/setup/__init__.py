"""``sheetcrm init``: from an existing sheet to a working set-up.

The use case, apart from the terminal: ``prepare`` reads the sheet and proposes (a
``Survey``); the command line asks the operator only what the survey could not
settle (the key, a date order) and ``write_setup`` writes the rule tabs and then
``config.toml``, the file that makes the set-up exist, last. Nothing that exists is
overwritten without ``force``: every file and tab is looked at before the first one
is written, so a refusal leaves everything as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sheetcrm.app.setup.configfile import Choices, config_text
from sheetcrm.app.setup.infer import Column
from sheetcrm.app.setup.source import Source, locate, open_source
from sheetcrm.app.setup.survey import RULE_TABS, Survey, survey
from sheetcrm.app.setup.tabs import rule_rows, tab_writer
from sheetcrm.errors import ConfigError
from sheetcrm.fsutil import atomic_write
from sheetcrm.i18n import _

__all__ = ["Choices", "Column", "InitRequest", "Prepared", "Survey", "prepare", "write_setup"]

CONFIG_NAME = "config.toml"


@dataclass(frozen=True)
class InitRequest:
    """What the operator pointed ``init`` at, and where the config goes."""

    target: str  # a CSV path, a spreadsheet URL or key, an Airtable base/table
    config: Path | None = None  # None: beside the CSV, else in the current folder
    worksheet: str | None = None
    credentials: str | None = None
    endpoint: str | None = None
    timezone: str = "Asia/Seoul"
    force: bool = False  # replace an existing config and rule tabs


@dataclass
class Prepared:
    """The sheet read and the set-up proposed, before anything is written."""

    request: InitRequest
    config_path: Path
    source: Source
    survey: Survey
    existing: list[str] = field(default_factory=list)  # what writing would overwrite


def prepare(request: InitRequest, env: Mapping[str, str], cwd: Path) -> Prepared:
    """Read the sheet once and propose its set-up; nothing is written.

    What writing would overwrite is refused here already (see ``write_setup``), before
    the operator is asked anything.
    """
    try:
        tz = ZoneInfo(request.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(_("{value!r} is not a time zone; expected e.g. 'Asia/Seoul'",
                            value=request.timezone), path="--timezone") from None
    config_path = _config_path(request, cwd)
    place = locate(request.target, config_path.parent, worksheet=request.worksheet,
                   credentials=request.credentials, endpoint=request.endpoint)
    source = open_source(place, env)
    found = survey(source.table.read(), tz, source.hints)
    prepared = Prepared(request, config_path, source, found)
    prepared.existing = _existing(prepared)
    _refuse_overwriting(prepared)
    return prepared


def _config_path(request: InitRequest, cwd: Path) -> Path:
    if request.config is not None:
        path = request.config if request.config.is_absolute() else cwd / request.config
        return path
    target = Path(request.target).expanduser()
    if target.suffix.lower() in (".csv", ".txt") or target.is_file():
        folder = target.parent if target.is_absolute() else (cwd / target).parent
        return folder / CONFIG_NAME
    return cwd / CONFIG_NAME


def _existing(prepared: Prepared) -> list[str]:
    found = [str(prepared.config_path)] if prepared.config_path.exists() else []
    return found + tab_writer(prepared.source).existing(list(RULE_TABS.values()))


def _refuse_overwriting(prepared: Prepared) -> None:
    """ConfigError naming each file or tab that exists, and ``--force``, unless forced;
    forced, the backends that cannot replace a tab (Airtable) still refuse."""
    if prepared.existing and not prepared.request.force:
        raise ConfigError(_("sheetcrm init does not overwrite what exists: {names}. Move it "
                            "away, or run again with --force to replace it",
                            names=", ".join(prepared.existing)))
    tab_writer(prepared.source).refuse_replacing(prepared.existing)


def write_setup(prepared: Prepared, choices: Choices) -> list[str]:
    """Write the rule tabs, then ``config.toml``; returns where each went.

    Nothing is written when anything would be overwritten without ``force``
    (``InitRequest.force``): each file and tab was looked at by ``prepare``.
    """
    _refuse_overwriting(prepared)
    writer = tab_writer(prepared.source)
    written = [writer.write(RULE_TABS[kind], rows)
               for kind, rows in rule_rows(prepared.survey.tabs).items()]
    written += writer.add_columns(prepared.survey.writeback)
    text = config_text(prepared.source.place, prepared.survey, choices)
    path = prepared.config_path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text.encode("utf-8"), mode=0o644)
    except OSError as exc:
        raise ConfigError(_("{path}: cannot write: {reason}", path=str(path),
                            reason=exc.strerror or str(exc))) from None
    return [*written, str(path)]
