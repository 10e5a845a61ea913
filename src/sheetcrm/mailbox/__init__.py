"""The mailbox: bounces and replies, read from the IMAP folder ``[mailbox]`` names.

An adapter like the table and the channels: it reads mail and says what each one is
(``parse``), over a connection that changes nothing in the folder (``imap``). Which
of sheetcrm's sends a mail is about, and what that means for the customer, is the
use case's business (``sheetcrm.app.mailbox``), which asks the ledger.
"""

from sheetcrm.mailbox.imap import (
    BATCH,
    Batch,
    Cursor,
    MailboxError,
    probe,
    read_new_mail,
)
from sheetcrm.mailbox.parse import Bounce, Kind, Mail

__all__ = ["BATCH", "Batch", "Bounce", "Cursor", "Kind", "Mail", "MailboxError", "probe",
           "read_new_mail"]
