"""``python -m sheetcrm.cli``: the same as the ``sheetcrm`` command."""

from sheetcrm.cli import main

main()
