"""Config changes under a running daemon: reloaded when good; rejected, with the old
config kept, when broken or when a run on them would fail (and refused at start).

The daemon harness (``Daemon``, the ``start`` fixture) is described in
``tests.support.daemon``.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.daemon import SOOHYUN, cli, read_sheet, save


def test_config_changes_are_reloaded_and_broken_ones_rejected(sample: Path, start) -> None:
    d = start("--every-seconds", "0.2")
    d.wait_runs(1)
    config = sample / "config.toml"
    text = config.read_text(encoding="utf-8")

    save(config, text.replace("[tags]\n", '[tags]\n"테스트 태그" = "paid"\n', 1))
    d.wait_for("the reload", lambda: d.events("config_reloaded"))
    d.ticks_after(1)
    _, rows = read_sheet(sample)
    assert "테스트 태그" in rows["jihoon.lee@example.com"]["상태 태그"]  # paid

    good = config.read_text(encoding="utf-8")
    save(config, good.replace('timezone = "Asia/Seoul"', 'timezone = "Mars/Olympus"'))
    rejected = d.wait_for("the rejection", lambda: d.events("config_rejected"))
    assert "timezone" in rejected[0]["error"] and "Mars/Olympus" in rejected[0]["error"]
    d.ticks_after(2)  # still running, on the previous config
    assert len(d.events("config_rejected")) == 1  # judged once, not at every tick
    _, rows = read_sheet(sample)
    assert "테스트 태그" in rows["jihoon.lee@example.com"]["상태 태그"]
    assert d.terminate()[0] == 0


def test_a_reload_that_would_fail_is_rejected_and_the_old_config_kept(sample: Path,
                                                                      start) -> None:
    (sample / "templates/broken.j2").write_text(
        "{% block subject %}{{ name {% endblock %}", encoding="utf-8")
    config = sample / "config.toml"
    good = config.read_text(encoding="utf-8")
    edits = {
        "days_snce": good.replace("not paid and days_since(applied_at) >= 1",
                                  "not paid and days_snce(applied_at) >= 1"),
        "flows.onboarding.steps[0].template": good.replace('template = "onboarding_welcome"',
                                                           'template = "onboarding_welcom"'),
        "flows.churn.steps[1].template": good.replace('template = "churn_summary"',
                                                      'template = "broken"'),
        "schedule.cron": good + '\n[schedule]\ncron = "0 9 * * 8"\n',
    }
    d = start("--every-seconds", "0.2")
    d.wait_runs(1)
    for count, (reason, text) in enumerate(edits.items(), 1):
        save(config, text)
        rejected = d.wait_for(f"rejection {count}",
                              lambda n=count: d.events("config_rejected")[n - 1:])
        assert reason in rejected[0]["error"], rejected[0]
        d.ticks_after(1)  # still running, on the config it had
    assert not d.events("config_reloaded")
    assert "broken.j2" in d.events("config_rejected")[2]["error"]
    _, rows = read_sheet(sample)
    assert "결제 대기" in rows[SOOHYUN]["상태 태그"]  # the old rule still tags her
    assert d.terminate()[0] == 0

    # At start, the same checks make it a config error (exit 2), not failing runs.
    save(config, edits["flows.churn.steps[1].template"])
    result = cli(sample, "run", "--every", "1h")
    assert result.returncode == 2
    assert "flows.churn.steps[1].template" in result.stderr and "broken.j2" in result.stderr
