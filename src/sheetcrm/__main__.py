"""``python -m sheetcrm``: the same as the ``sheetcrm`` command."""

from sheetcrm.cli import main

main()
