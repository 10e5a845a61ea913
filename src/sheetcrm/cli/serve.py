"""``sheetcrm serve``: the endpoint of ``[server]`` in the foreground, until a signal.

Thin like the other commands: ``app.serve.Served`` binds and serves; this parses,
logs (one JSON line at start and one at stop, counts only) and waits for SIGTERM or
SIGINT. ``sheetcrm run`` serves the same endpoint beside its schedule, so one
systemd unit does both; ``serve`` is for running it apart, or trying it out.
"""

from __future__ import annotations

import os
import signal
from types import FrameType

import click

from sheetcrm.cli.base import State, cli
from sheetcrm.errors import ExitStatus
from sheetcrm.i18n import N_


@cli.command(help=N_("Answer the links in messages and providers' webhooks until "
                     "SIGTERM/SIGINT."))
@click.pass_obj
def serve(state: State) -> ExitStatus:
    from sheetcrm.app.collector import long_running
    from sheetcrm.app.serve import ROUTE_MODULES, Served, running_clock
    from sheetcrm.daemon.logs import emit, setup_logging
    from sheetcrm.daemon.stopflag import StopFlag
    from sheetcrm.redact import Redactor

    long_running()
    config = state.config()
    redactor = Redactor.for_config(config, os.environ)
    setup_logging(lambda: redactor)
    start_at = state.now(config) if state.now_text else None
    served = Served(config, running_clock(config, start_at))  # a taken port: exit 2
    stop = StopFlag()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    served.start()
    emit("serve", listen=served.listen, pid=os.getpid(),
         routes=[m.__name__.rsplit(".", 1)[-1] for m in ROUTE_MODULES])
    try:
        while not stop.wait(1.0):
            pass
    finally:
        served.stop()
        emit("serve_stopped", answered=served.answered())
    return ExitStatus.OK
