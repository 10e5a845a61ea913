"""The endpoint: how sheetcrm hears back from customers and providers.

``app.py`` is the WSGI application (routing, limits), ``serve.py`` serves it with
waitress; each concern's routes are a module of their own. Everything heard is
stored as an event in the ledger before it is answered, and written into the sheet
by the next run.
"""
