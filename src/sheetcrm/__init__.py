"""sheetcrm: turn a customer spreadsheet into an automated CRM."""

__version__ = "0.1.0"
