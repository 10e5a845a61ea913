"""A command loads only what it uses, and a one-shot command keeps the collector off
the tables it built.

``sheetcrm --help`` is typed often and must answer at once: it prints every command's
summary, so every command is registered, but none of them may import its use case
(the planner, the ledger, the channels) or the heavy libraries they need before it
runs. ``check`` is typed after every edit of the config: it loads the config, the
planner, the ledger and the templates it checks, and nothing for the sections the
config does not have (alerts, rules kept in the sheet) nor what only other commands
use (the scheduler, the progress bar, the channels). Measured in a fresh
interpreter, as the operator's shell starts one.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys

from sheetcrm.app.collector import gc_paused, long_running, one_shot

_LOADED = """
import json, sys
from sheetcrm.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""

HEAVY = ["pydantic", "jinja2", "requests", "gspread", "pyairtable", "waitress", "apprise",
         "babel", "sqlite3", "apscheduler", "sheetcrm.config", "sheetcrm.app.runner",
         "sheetcrm.core.engine", "sheetcrm.ledger", "sheetcrm.channels", "sheetcrm.table",
         "sheetcrm.daemon.service"]

# What ``check`` on the sample (no [alerts], no [rules], no --connect) never needs.
NOT_FOR_CHECK = ["apscheduler", "asyncio", "apprise", "requests", "gspread", "pyairtable",
                 "waitress", "rich.progress", "sheetcrm.alerts", "sheetcrm.app.alerts",
                 "sheetcrm.app.stall", "sheetcrm.app.schedule", "sheetcrm.app.rules",
                 "sheetcrm.config.rule_tabs", "sheetcrm.channels", "sheetcrm.mailbox",
                 "sheetcrm.cli.running", "sheetcrm.daemon", "sheetcrm.app.runner"]


def _modules_after(argv: list[str]) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", _LOADED.format(argv=argv)],
                          capture_output=True, text=True, timeout=60, check=True)
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


def test_help_loads_no_use_case_and_no_heavy_library() -> None:
    loaded = _modules_after(["--help"])
    assert "click" in loaded
    assert [m for m in HEAVY if m in loaded] == []


def test_a_command_loads_its_use_case_when_it_runs(sample) -> None:
    loaded = _modules_after(["--config", str(sample / "config.toml"), "check"])
    assert {"sheetcrm.config", "sheetcrm.app.checks", "pydantic"} <= loaded
    assert "sheetcrm.daemon.service" not in loaded  # only `run` needs the daemon


def test_check_loads_nothing_for_sections_the_config_does_not_have(sample) -> None:
    loaded = _modules_after(["--config", str(sample / "config.toml"), "check"])
    assert {"sheetcrm.core.engine", "sheetcrm.ledger", "jinja2", "rich.table"} <= loaded
    assert [m for m in NOT_FOR_CHECK if m in loaded] == []


def test_a_sync_on_the_outbox_loads_no_provider_client(sample) -> None:
    # The providers' channels and the follow-up of their reports bring requests: a run
    # with none of them configured imports neither (the sample sends to the outbox).
    loaded = _modules_after(["--config", str(sample / "config.toml"), "sync"])
    assert {"sheetcrm.channels.outbox", "sheetcrm.app.deliveries"} <= loaded
    assert [m for m in ("requests", "urllib3", "sheetcrm.channels.nhn",
                        "sheetcrm.channels.solapi", "sheetcrm.channels.webhook")
            if m in loaded] == []


def test_a_one_shot_command_freezes_what_it_built_and_thaws_at_its_end() -> None:
    gc.unfreeze()
    with one_shot():
        with gc_paused():
            built = [[i] for i in range(1000)]
        assert gc.get_freeze_count() >= len(built)
        assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_the_daemon_does_not_freeze_each_run() -> None:
    gc.unfreeze()
    with one_shot():
        long_running()
        with gc_paused():
            built = [[i] for i in range(1000)]
        assert gc.get_freeze_count() == 0
        assert len(built) == 1000
