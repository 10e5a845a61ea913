"""Python imports this at start-up when its folder is on PYTHONPATH: the plugin
``tests.support.without_posix`` puts it there, so a ``sheetcrm`` subprocess a test
starts refuses POSIX-only imports as the test process does."""

import os

if os.environ.get("SHEETCRM_WITHOUT_POSIX"):
    from tests.support import without_posix

    without_posix.install()
