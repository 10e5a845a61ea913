"""The test suite: a package, so test modules import their shared support as
``tests.support`` (never each other, never through ``sys.path``)."""
