"""What the tests share, and nothing they test.

- ``sample``: the shipped sample copied into a folder, its dates and its known sends.
- ``clock``: the one virtual clock (time moves only when something sleeps).
- ``servers``: loopback HTTP servers with a request log and scripted faults (the
  webhook receiver, and the base the emulators build on), a dripping TCP peer and
  throwaway TLS certificates; ``smtp``: a recording aiosmtpd server; ``imap``: a real
  IMAP server (pymap) and the bounces, auto-replies and replies that arrive in it.
- ``emulators``: the Google Sheets and Airtable HTTP APIs on 127.0.0.1, so the real
  gspread, google-auth and pyairtable code runs.
- ``gsheets``, ``airtable``: what the backend's test files share (the spreadsheet or
  base, the account or token, how a sheet is read back, the sample in that backend).
- ``daemon``: ``sheetcrm run`` as a subprocess with its log; ``expressions``: the
  names, values and helpers conditions are tested on.
- ``journeys``: a small world (config, CSV sheet, daily syncs) for flows over time.
- ``csv_stress``: an operator process saving the CSV in a tight loop.
- ``without_posix``: a pytest plugin (``-p``) under which sheetcrm cannot import a
  POSIX-only module, as on Windows (.ci/run runs the command tests with it).

Test modules and the benchmarks import from here; nothing here imports a test module.
The pytest fixtures built on these are in ``tests/conftest.py``.
"""
