"""Every command but the daemon works on Windows: nothing POSIX-only is reached.

Three guards, from cheap to whole: the refusal that ``tests.support.without_posix``
installs behaves as Windows does; every command runs, end to end on the sample, in
an interpreter where sheetcrm cannot import a POSIX-only module; and no module
outside the daemon names a POSIX-only function or signal (``os.fork``,
``signal.SIGKILL``), which no import refusal can catch. ``.ci/run`` also runs the
command-line test files under the plugin.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import without_posix
from tests.support.sample import DAY0, ROOT

SOURCE = ROOT / "src" / "sheetcrm"

# Names that exist only on POSIX systems (or, for set_blocking, not before Python 3.12
# on Windows), by module.
POSIX_NAMES = {
    "os": {"fork", "forkpty", "getuid", "geteuid", "getgid", "getegid", "getgroups",
           "setuid", "setgid", "setsid", "getsid", "setpgrp", "getpgrp", "getpgid",
           "killpg", "fchmod", "fchown", "chown", "lchown", "mkfifo", "mknod", "sync",
           "O_NOFOLLOW", "O_CLOEXEC", "O_NONBLOCK", "O_SYNC", "O_DSYNC", "getloadavg",
           "uname", "nice", "wait3", "wait4", "WNOHANG", "pipe2", "set_blocking",
           "get_blocking", "statvfs", "fstatvfs", "sysconf", "pathconf", "openpty",
           "ttyname", "ctermid", "posix_spawn", "register_at_fork", "initgroups"},
    "signal": {"SIGKILL", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD",
               "SIGPIPE", "SIGURG", "SIGIO", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN",
               "SIGTTOU", "SIGWINCH", "SIGXCPU", "SIGPROF", "SIGVTALRM", "SIGPOLL",
               "SIGSYS", "SIGTRAP", "SIGBUS", "alarm", "setitimer", "getitimer", "pause",
               "pthread_kill", "pthread_sigmask", "sigwait", "siginterrupt", "sigpending"},
    "select": {"poll", "epoll", "kqueue", "devpoll"},
    "time": {"tzset"},
    "shutil": {"chown"},
}

# Uses that are never reached on Windows, each for the reason given.
ALLOWED = {
    ("fsutil.py", "os.fchmod"): "behind hasattr(os, 'fchmod')",
    ("fsutil.py", "signal.SIGURG"): "after fcntl.F_SETLEASE was found: Linux only",
    ("faults.py", "signal.SIGKILL"): "only with SHEETCRM_KILL_AT, set by the crash tests",
}


def posix_names_used(path: Path) -> set[str]:
    """``module.name`` for each POSIX-only name the module refers to."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.attr in POSIX_NAMES.get(node.value.id, ())):
            found.add(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module in POSIX_NAMES:
            found |= {f"{node.module}.{a.name}" for a in node.names
                      if a.name in POSIX_NAMES[node.module]}
    return found


def test_no_module_outside_the_daemon_names_a_posix_only_function_or_signal() -> None:
    checked = 0
    problems = []
    for path in sorted(SOURCE.rglob("*.py")):
        relative = path.relative_to(SOURCE)
        if relative.parts[0] == "daemon":
            continue
        checked += 1
        for name in sorted(posix_names_used(path)):
            if (relative.as_posix(), name) not in ALLOWED:
                problems.append(f"{relative}: {name}")
    assert checked > 100
    assert problems == [], "POSIX only, reached on Windows: " + "; ".join(problems)


def test_the_audit_sees_a_posix_only_name(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os, signal\nfrom os import fork\n"
                      "os.kill(os.getpid(), signal.SIGKILL)\nos.geteuid()\n")
    assert posix_names_used(module) == {"signal.SIGKILL", "os.geteuid", "os.fork"}


def test_a_posix_only_import_is_refused_to_sheetcrm_and_not_to_libraries() -> None:
    refuse = without_posix._import
    for name in ("fcntl", "termios", "pwd", "grp", "resource"):
        with pytest.raises(ModuleNotFoundError, match="POSIX only"):
            refuse(name, {"__name__": "sheetcrm.fsutil"})
        with pytest.raises(ModuleNotFoundError):
            refuse(name, {"__name__": "sheetcrm"}, None, ("x",))
    # A library takes its own POSIX branch here (portalocker: fcntl; msvcrt on Windows).
    assert refuse("fcntl", {"__name__": "portalocker.portalocker"}).__name__ == "fcntl"
    assert refuse("os", {"__name__": "sheetcrm.fsutil"}).__name__ == "os"
    assert not without_posix.refused("fcntl", "sheetcrmx")


COMMANDS = [["check"], ["plan"], ["sync"], ["status"], ["report"], ["--json", "plan"],
            ["preview", "minjun.choi@example.com"], ["sync"], ["--help"]]

SCRIPT = """
import json, sys
from tests.support import without_posix
without_posix.install()
from sheetcrm.cli import main
codes = []
for args in json.loads(sys.argv[1]):
    try:
        main(args)
    except SystemExit as exc:
        codes.append(exc.code or 0)
print(json.dumps({"codes": codes}))
"""


def test_every_command_but_the_daemon_runs_where_posix_modules_are_missing(
        sample: Path) -> None:
    commands = [["--now", DAY0, *args] for args in COMMANDS]
    result = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(commands)],
                            cwd=sample, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"},
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    # check finds the sample's bad rows on purpose (1); every other command succeeds.
    assert answer["codes"] == [1, 0, 0, 0, 0, 0, 0, 0, 0], result.stderr
    assert "No module named" not in result.stderr
    assert (sample / "outbox").is_dir() and any((sample / "outbox").glob("*.eml"))
