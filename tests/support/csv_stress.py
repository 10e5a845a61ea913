"""An operator process saving the CSV in a tight loop while sheetcrm writes it.

The stress harness of tests/test_csv_race.py, which bench/bench_csv_race.py runs
longer. A second Python process saves the file again and again (a new file renamed
over it, or the file rewritten in place, or both at random); before each save it
checks that its previous save is still in the file. Meanwhile the real ``CsvTable``
writes its status cells over and over; ``stress`` returns the figures of both.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from sheetcrm.errors import BackendError
from sheetcrm.model import CellUpdate
from sheetcrm.table.csv import CsvTable


def leftovers(folder: Path) -> list[str]:
    """Files beside customers.csv: temporary files a write left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name != "customers.csv")


#: The operator: saves ``save N`` into every row's note, by rename or in place, in a
#: tight loop. Before each save it checks that its previous save is still in the file
#: (sheetcrm's writes keep the notes), waiting up to 0.2 s for a swap in flight.
OPERATOR = r"""
import json, os, random, sys, time
path, style, seconds, pause, rows, seed = sys.argv[1:7]
seconds, pause, rows, rng = float(seconds), float(pause), int(rows), random.Random(int(seed))

def content(n):
    lines = ["id,name,note,status"] + [f"{k},고객 {k},save {n},new" for k in range(1, rows + 1)]
    return ("\r\n".join(lines) + "\r\n").encode()

def marker(data):
    lines = data.split(b"\r\n", 2)
    return lines[1].split(b",")[2].decode() if len(lines) > 2 else ""

def holds(n):
    deadline = time.monotonic() + 0.2
    while True:
        with open(path, "rb") as handle:
            if marker(handle.read()) == f"save {n}":
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.0005)

with open(path, "wb") as handle:
    handle.write(content(0))
print("ready", flush=True)
saves = {"rename": 0, "inplace": 0}
losses, lost, last = 0, [], 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    if not holds(last):
        losses += 1
        lost.append(last)
    data = content(last + 1)
    how = rng.choice(["rename", "inplace"]) if style == "both" else style
    if how == "rename":
        with open(path + ".saving", "wb") as handle:
            handle.write(data)
        os.replace(path + ".saving", path)
    else:
        with open(path, "wb") as handle:
            handle.write(data)
    saves[how] += 1
    last += 1
    if pause:
        time.sleep(rng.uniform(0, pause))
print(json.dumps({"saves": saves, "losses": losses, "lost": lost[:10], "last": last}))
"""


def stress(folder: Path, *, style: str = "both", seconds: float = 2.0, pause: float = 0.002,
           rows: int = 200, seed: int = 1) -> dict:
    """Run the operator process against sheetcrm's repeated writes; return the figures."""
    path = folder / "customers.csv"
    args = [sys.executable, "-c", OPERATOR, str(path), style, str(seconds), str(pause),
            str(rows), str(seed)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        table = CsvTable(path)
        writes = gave_up = attempts = 0
        deadline = time.monotonic() + seconds + 30
        while proc.poll() is None and time.monotonic() < deadline:
            attempts += 1
            updates = [CellUpdate(str(k), "status", f"w{attempts}") for k in (1, 2, 3)]
            try:
                table.write("id", updates)
                writes += 1
            except BackendError as exc:
                if "keeps changing" not in str(exc):
                    raise
                gave_up += 1
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    result = json.loads(out)
    table.write("id", [CellUpdate(str(k), "status", "final") for k in (1, 2, 3)])
    lines = path.read_bytes().split(b"\r\n")
    final_ok = (all(line.split(b",")[2] == f"save {result['last']}".encode()
                    for line in lines[1:-1])
                and [line.split(b",")[3] for line in lines[1:4]] == [b"final"] * 3)
    return {"style": style, "seconds": seconds, "saves": result["saves"],
            "writes": writes, "gave_up": gave_up,
            "concurrent_saves": table.concurrent_saves,
            "saves_given_back": table.saves_given_back,
            "losses": result["losses"] + (0 if final_ok else 1), "lost": result["lost"],
            "final_ok": final_ok, "leftovers": leftovers(folder)}
