"""The config file the daemon follows: re-read when its content changes, before a run.

A new version is adopted only if a run could use it: the file loads, its schedule,
every rule and every template a flow sends compile (with ``[rules]``, the rules kept
in the sheet, checked with the new file). Otherwise it is logged, once
per version, and the previous config kept; ``rejection`` says why, for the alert.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path

from sheetcrm.app.rules import check_with_tabs
from sheetcrm.app.schedule import Schedule
from sheetcrm.config import Config, load_config, use_language_of
from sheetcrm.core.rules import compile_rules
from sheetcrm.daemon.logs import emit
from sheetcrm.errors import ConfigError, SheetcrmError, TemplateError
from sheetcrm.i18n import _
from sheetcrm.templates import Templates


def file_digest(path: Path) -> str | None:
    """sha256 of a file's bytes (None when unreadable): the config's identity."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def check_config(config: Config) -> None:
    """What a run needs beyond a valid file: every rule and every template compiles.

    Raises ConfigError naming the key path (and the template file and line). With
    ``[rules]``, the rules kept in the sheet are what is checked with the file
    (``check_with_tabs``); an edit of the tabs themselves is taken by the next run.
    """
    if config.rule_tabs:
        check_with_tabs(config)
        return
    compile_rules(config)
    templates = Templates(config.templates_dir)
    checked: set[str] = set()
    for flow_name, flow in config.flows.items():
        for i, step in enumerate(flow.steps):
            variants = [f"{step.template}.{v}" for v in step.variants or ()]
            for name in [step.template, *(v for v in variants if v in templates.names())]:
                if name in checked:
                    continue
                try:
                    templates.check(name)
                except TemplateError as exc:
                    raise ConfigError(str(exc), path=f"flows.{flow_name}.steps[{i}]."
                                      "template") from None
                checked.add(name)


class ConfigFile:
    """Watches one config file; each version of its content is judged once."""

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.env = env
        self._seen_digest = file_digest(path)
        self.rejection: str | None = None  # why the version judged by the last call was not

    def new_version(self, schedule: Schedule | None) -> tuple[Config, Schedule] | None:
        """The file's new content as a config a run can use, with its schedule.

        None when the content is unchanged, or when the new version is rejected
        (logged as ``config_rejected``). ``schedule`` (from the command line) wins
        over the file's ``[schedule]``.
        """
        self.rejection = None
        digest = file_digest(self.path)
        if digest == self._seen_digest:
            return None
        self._seen_digest = digest  # judge each version once, not at every tick
        if digest is None:
            self.rejection = _("{path} cannot be read", path=self.path)
            emit("config_rejected", logging.ERROR, error=self.rejection,
                 message=_("keeping the loaded config"))
            return None
        try:
            use_language_of(self.path, self.env)  # the new version's language, errors too
            config = load_config(self.path, self.env)
            check_config(config)
        except Exception as exc:  # ConfigError, or the file vanished mid-read
            error = str(exc) if isinstance(exc, SheetcrmError) else f"{type(exc).__name__}: {exc}"
            self.rejection = error
            emit("config_rejected", logging.ERROR, error=error,
                 message=_("keeping the loaded config"))
            return None
        return config, schedule or Schedule.from_config(config)
