"""Benchmarks, run as modules from the repository root (``python -m bench.bench_plan``),
so they import ``sheetcrm`` and the test suite's emulators (``tests.support``) as
packages."""
