"""The daemon behind ``sheetcrm run``: sync on a schedule, for months, unattended.

One module per concern: ``service`` (the ``Daemon``: ticks, stalls, signals),
``scheduler`` (the job and its back-off), ``reload`` (following the config file),
``logs`` (JSON lines), ``health`` (``/health``), ``statusfile`` (``daemon.json``)
and ``stopflag``. What it shares with ``sheetcrm status`` sits below it, in
``sheetcrm.app``: the ``Schedule`` (``app.schedule``), the ``Stall``
(``app.stall``) and the names of its files (``app.status``).

Why it is built this way:

- APScheduler 3.x fires one job. ``max_instances=1`` and ``coalesce=True`` mean a
  slow run is never overlapped by the next tick and the ticks it missed collapse
  into one. Across processes ``runner.sync`` takes the file lock a manual ``sync``
  takes: a tick that finds it held is skipped and logged, never queued. A
  ``cron`` schedule is read as crontab reads it (``config.crontab_trigger``:
  weekday 0 and 7 are Sunday), not as APScheduler numbers weekdays.
- A signal only sets a flag. The run in progress sees it before its next send
  (``stop`` in ``runner.sync``), still writes back, and the process exits 0. A
  second signal exits at once: the ledger records every send before it leaves, so
  the next start never sends a copy.
- A failing run never ends the daemon. It is logged and the next ticks are skipped
  in a growing, capped number (back-off), so a dead backend is not hammered.
- Only an ``ok`` run is a good run. A run that failed, found a channel down or was
  stopped by the blast-radius guard has stalled sending: the heartbeat is not
  touched, ``/health`` answers 503 saying why and since when, and so does
  ``sheetcrm status`` (from the ledger's run history, which survives restarts).
- The config file is re-read when its content changes, before the next run. The new
  version is adopted only if a run could use it (the file, its schedule, every rule
  and every template a flow sends compile); otherwise it is logged and the previous
  config kept.
- One JSON line per run on stderr (journald keeps it, and logs get shared), the
  ``/health`` body and the status file hold counts and reasons, never customer data
  (row keys, addresses, cell values), and every secret the config holds is masked
  (``sheetcrm.redact``). The rows behind the counts stay in the ledger, where
  ``sheetcrm status`` reads them.
- A status file beside the ledger (``daemon.json``, replaced atomically) tells
  ``sheetcrm status`` whether the daemon is alive and when it runs next.
- ``/health`` listens on 127.0.0.1 and answers only requests addressed to a loopback
  name (``Host: localhost``, ``127.0.0.1``, ``[::1]``): a web page that rebinds its
  own DNS name to 127.0.0.1 gets 403, not the daemon's state.
- Every file it writes beside the ledger is created 0600 and never through a
  symbolic link (``fsutil.open_private``).
"""
