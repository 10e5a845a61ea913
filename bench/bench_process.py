"""Whole ``sheetcrm`` processes, timed from outside and broken down from inside.

``bench_plan`` times the library call; an operator waits for the process: the
interpreter's start, the imports, the run, the garbage collections and the teardown
(freeing every object at exit). Each command here runs as a real ``sheetcrm`` process
in a fresh interpreter (``python -m bench.bench_process --probe OUT -- ARGS``), which
records from inside, with ``gc.callbacks`` and the clock:

- ``import_s``: importing ``sheetcrm.cli`` (what every command pays before it starts);
- ``main_s``: the command itself, imports it makes on the way included;
- ``gc_s``: time spent in the cyclic collector during the command;
- the moment the command returned, so that the parent, which waits for the process
  to end, can tell ``teardown_s`` (from that moment to the exit);

and the parent reads the process's peak RSS from ``wait4``. Output goes to a file,
so ``--json``'s size is counted and its writing timed, not a terminal's.
"""

from __future__ import annotations

import compileall
import functools
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def probe(out: Path, argv: list[str]) -> None:
    """Run ``sheetcrm ARGV`` in this process, recording where its time goes."""
    started = time.perf_counter()
    gc_time = [0.0]
    mark = [0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            mark[0] = time.perf_counter()
        else:
            gc_time[0] += time.perf_counter() - mark[0]

    gc.callbacks.append(on_gc)
    from sheetcrm.cli import main

    imported = time.perf_counter()
    status = 0
    try:
        main(argv)
    except SystemExit as exc:
        status = int(exc.code or 0)
    done = time.perf_counter()
    sys.stdout.flush()
    out.write_text(json.dumps({
        "import_s": imported - started, "main_s": done - imported, "gc_s": gc_time[0],
        "returned_at": time.time(), "status": status,
    }))
    sys.exit(status)


@functools.cache
def _bytecode_written() -> None:
    """Compile sheetcrm once, as installing it does: where ``PYTHONDONTWRITEBYTECODE``
    is set, every process would otherwise compile its ~90 modules again (0.17 s)."""
    import sheetcrm

    compileall.compile_dir(Path(sheetcrm.__file__).parent, quiet=1)


def run(argv: list[str], *, cwd: Path | None = None, stdout: Path | None = None
        ) -> dict[str, float]:
    """``sheetcrm ARGV`` in a fresh process: wall time, breakdown and peak RSS."""
    _bytecode_written()
    report = Path(os.environ.get("TMPDIR", "/tmp")) / f"sheetcrm-bench-{os.getpid()}.json"
    report.unlink(missing_ok=True)
    sink = open(stdout, "wb") if stdout is not None else subprocess.DEVNULL  # noqa: SIM115
    here = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(here) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        t = time.perf_counter()
        began = time.time()
        proc = subprocess.Popen([sys.executable, "-m", "bench.bench_process", "--probe",
                                 str(report), "--", *argv], cwd=cwd, stdout=sink,
                                stderr=subprocess.PIPE, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        ended = time.time()
    finally:
        if stdout is not None:
            sink.close()  # type: ignore[union-attr]
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    inside = json.loads(report.read_text())
    report.unlink()
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise RuntimeError(f"sheetcrm {' '.join(argv)} failed: {err[-2000:]}")
    return {
        "wall_s": wall, "import_s": inside["import_s"], "main_s": inside["main_s"],
        "gc_s": inside["gc_s"], "teardown_s": max(0.0, ended - inside["returned_at"]),
        # the interpreter's own start, before the first import of sheetcrm
        "startup_s": max(0.0, inside["returned_at"] - began - inside["import_s"]
                         - inside["main_s"]),
        "rss_mb": usage.ru_maxrss / 1024,
        "out_mb": stdout.stat().st_size / 1e6 if stdout is not None else 0.0,
    }


def best_of(n: int, argv: list[str], **kwargs: Any) -> dict[str, float]:
    """The fastest of ``n`` runs (a shared machine only ever adds time)."""
    runs = [run(argv, **kwargs) for _ in range(n)]
    return min(runs, key=lambda r: r["wall_s"])


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--probe" and sys.argv[3] == "--":
        probe(Path(sys.argv[2]), sys.argv[4:])
    else:
        sys.exit("usage: python -m bench.bench_process --probe OUT -- SHEETCRM-ARGS")
