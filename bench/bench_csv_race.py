"""Stress the CSV backend's write against an operator saving the file in a tight loop.

A second process saves the file over and over (a new file renamed over it, or the file
rewritten in place, or both at random) while sheetcrm writes its status cells into it
again and again. Before each save the operator checks that its previous save is still
in the file; a save that is gone is a loss. The harness is the suite's stress test
(``tests/support/csv_stress.py``, run by ``tests/test_csv_race.py``), run longer here.

Per run the table shows the operator's saves, sheetcrm's writes that landed, the
writes that gave up ("file keeps changing"), the concurrent saves sheetcrm detected,
how many of them landed in the instant before the swap and were given back, and the
losses. ``fallback`` runs the same with the atomic exchange switched off (check, then
``os.replace``), which is what systems without renameat2 get.

Usage: python -m bench.bench_csv_race [--seconds 10] [--styles rename,inplace,both]
       [--modes exchange,fallback] [--pause 0.002] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from sheetcrm import fsutil
from tests.support.csv_stress import stress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--styles", default="rename,inplace,both")
    parser.add_argument("--modes", default="exchange,fallback")
    parser.add_argument("--pause", type=float, default=0.002,
                        help="the operator waits up to this long between saves (seconds)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    results = []
    exchange = fsutil._renameat2
    for mode in args.modes.split(","):
        fsutil._renameat2 = exchange if mode == "exchange" else (lambda: None)
        for style in args.styles.split(","):
            with tempfile.TemporaryDirectory() as folder:
                figures = stress(Path(folder), style=style, seconds=args.seconds,
                                 pause=args.pause)
            figures["mode"] = mode
            results.append(figures)
            saves = sum(figures["saves"].values())
            print(f"{mode:9} {style:8} saves {saves:6}  writes {figures['writes']:5}  "
                  f"gave up {figures['gave_up']:4}  detected {figures['concurrent_saves']:5}  "
                  f"given back {figures['saves_given_back']:4}  losses {figures['losses']}",
                  flush=True)
    fsutil._renameat2 = exchange
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
