"""What leaves the machine from a daemon: log lines mask the config's secrets; the
log, /health and the status file hold counts, never customers' data (status, run by
the operator, shows the rows).

The daemon harness (``Daemon``, the ``start`` fixture) is described in
``tests.support.daemon``.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

from sheetcrm.config import load_config
from sheetcrm.daemon.logs import JsonFormatter
from sheetcrm.redact import Redactor
from tests.support.daemon import cli, get_health
from tests.support.sample import DAY0


def test_log_lines_mask_the_config_secrets(sample: Path) -> None:
    config_file = sample / "config.toml"
    text = config_file.read_text(encoding="utf-8")
    section = ('[channels.email]\ntype = "webhook"\nurl = "${HOOK_URL}"\n'
               'secret = "${HOOK_SECRET}"\n\n')
    config_file.write_text(re.sub(r"^\[channels\.email\].*?\n\n", section, text,
                                  flags=re.S | re.M), encoding="utf-8")
    env = {"HOOK_URL": "https://user:pa55word@hooks.example.com/t/abc123token",
           "HOOK_SECRET": "whsec_" + "A" * 32}
    config = load_config(config_file, env)
    redactor = Redactor.for_config(config, env)
    record = logging.LogRecord("sheetcrm.daemon", logging.ERROR, __file__, 1,
                               "failed posting to %s", (env["HOOK_URL"],), None)
    record.event, record.fields = "run", {"error": f"signature {env['HOOK_SECRET']} rejected"}
    line = JsonFormatter(lambda: redactor).format(record)
    assert "abc123token" not in line and "pa55word" not in line and "AAAA" not in line
    assert json.loads(line)["error"] == "signature *** rejected"


# The sample's row errors: keys (addresses) and the cell values they quote.
ROW_ERROR_DATA = ("yuna.shin@example.com", "minjae.kwon@example.com",
                  "gayoung.moon@example.com", "suzy.bae@", "2026-02-30", "몰라")


def test_log_health_and_status_file_hold_counts_status_shows_the_rows(sample: Path,
                                                                      start) -> None:
    d = start("--every", "1h", "--health-port", "0")
    d.wait_runs(1)
    status_file = sample / ".sheetcrm/daemon.json"
    d.wait_for("the status file after the run",
               lambda: status_file.exists() and json.loads(status_file.read_text())["runs"])
    code, body = get_health(d.events("start")[0]["health_port"])
    assert code == 200 and d.runs()[0]["row_errors"] == 6
    assert d.terminate()[0] == 0

    shared = {"the log": d.log_path.read_text(encoding="utf-8"),
              "/health": json.dumps(body, ensure_ascii=False),
              "daemon.json": status_file.read_text(encoding="utf-8")}
    for where, text in shared.items():
        for value in ROW_ERROR_DATA:
            assert value not in text, f"{value!r} in {where}"

    human = cli(sample, "--now", DAY0, "status", env={**os.environ, "COLUMNS": "200"})
    data = json.loads(cli(sample, "--now", DAY0, "--json", "status").stdout)
    for value in ROW_ERROR_DATA:
        assert value in human.stdout, value
    assert data["row_errors"]["count"] == 6
    assert {e["key"] for e in data["row_errors"]["items"]} >= set(ROW_ERROR_DATA[:4])
