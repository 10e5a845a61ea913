"""The daemon's /health endpoint: 503 after a failed run, a busy port refused as a
config error, and only requests addressed to a loopback name answered.

The daemon harness (``Daemon``, the ``start`` fixture) is described in
``tests.support.daemon``.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sheetcrm.daemon.health import HealthServer
from tests.support.daemon import cli, get_health
from tests.support.sample import CSV


def test_health_answers_503_after_a_failed_run(sample: Path, start) -> None:
    (sample / CSV).unlink()
    d = start("--every", "1h", "--health-port", "0")
    d.wait_runs(1, status="failed")
    port = d.events("start")[0]["health_port"]
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
    assert info.value.code == 503
    assert json.load(info.value)["consecutive_failures"] == 1
    assert d.terminate()[0] == 0


def test_a_busy_health_port_is_a_clear_config_error(sample: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli(sample, "run", "--every", "1h", "--health-port", str(port))
    assert result.returncode == 2
    assert f"schedule.health_port: cannot listen on 127.0.0.1:{port}" in result.stderr


def test_health_answers_only_requests_addressed_to_a_loopback_name() -> None:
    server = HealthServer(0, lambda: {"healthy": True})
    server.start()
    port = server.port
    try:
        for host in ("127.0.0.1", f"127.0.0.1:{port}", "localhost", f"localhost:{port}",
                     "LocalHost", "[::1]", f"[::1]:{port}"):
            assert get_health(port, host) == (200, {"healthy": True}), host
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example",
                     "localhost.evil.example", f"attacker.localhost:{port}", "0.0.0.0",
                     "192.168.0.10", "[::1]evil", ""):
            code, body = get_health(port, host)
            assert code == 403 and "healthy" not in body, host
    finally:
        server.stop()
