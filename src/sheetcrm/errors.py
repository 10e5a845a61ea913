"""One exception base with typed subclasses, and the exit statuses they map to.

The command line turns an error into a message and its class's ``exit_code`` in one
place (``sheetcrm.cli.main``); commands return an ``ExitStatus`` and never exit.
"""

from __future__ import annotations

from enum import IntEnum

from sheetcrm.i18n import _


class ExitStatus(IntEnum):
    """What ``sheetcrm`` exits with (documented in the README)."""

    OK = 0
    FAILED = 1  # the run finished but something failed (a send, a check, a rule)
    USAGE = 2  # configuration or usage error
    BACKEND = 3  # the table backend or the state file failed
    CHANNEL_DOWN = 4  # a channel failed as a whole: its sends wait
    LOCKED = 5  # another sheetcrm run holds the lock
    INTERRUPTED = 130  # Ctrl-C


class SheetcrmError(Exception):
    """Base of every error sheetcrm raises on purpose."""

    exit_code = ExitStatus.FAILED


class ConfigError(SheetcrmError):
    """The configuration (config.toml, a template, a rule) is wrong.

    The message names the key path, the bad value and the expected form.
    """

    exit_code = ExitStatus.USAGE

    def __init__(self, message: str, *, path: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class RuleError(ConfigError):
    """An expression in [tags] or [flows] does not compile (syntax, unknown name)."""


class TemplateError(ConfigError):
    """A template is missing or fails to render."""


class BackendError(SheetcrmError):
    """The table backend failed (file unreadable, API outage, permission)."""

    exit_code = ExitStatus.BACKEND


class ChannelError(SheetcrmError):
    """A channel could not deliver a message.

    ``retryable`` says whether the same message may be tried again later.
    ``channel_down`` says the channel as a whole cannot deliver (refused login,
    server unreachable, untrusted certificate, a webhook URL that answers 401 or
    404): the message was not delivered, the run stops using the channel, and no
    customer is failed for it; the next run tries again.
    ``uncertain`` says the message may have been delivered although the channel
    could not confirm it (an SMTP server's reply to DATA lost to a timeout or a
    dropped connection): like a crash at that point, it is never sent again.
    """

    exit_code = ExitStatus.CHANNEL_DOWN

    def __init__(self, message: str, *, retryable: bool = False,
                 channel_down: bool = False, uncertain: bool = False) -> None:
        self.uncertain = uncertain
        self.retryable = (retryable or channel_down) and not uncertain
        self.channel_down = channel_down and not uncertain
        super().__init__(message)


class CellError(ValueError):
    """One cell does not parse as its field's type. Marks the row, never stops the run."""

    def __init__(self, column: str, value: str, expected: str, fix: str = "") -> None:
        self.column = column
        self.value = value
        self.expected = expected
        self.fix = fix  # what the operator can change when a form needs a setting
        # As written, quoted: a backslash (the won sign in CP949) is shown once.
        shown = repr(value).replace("\\\\", "\\")
        message = _("{column}: {shown} is not {expected}", column=column, shown=shown,
                    expected=expected)
        super().__init__(f"{message}; {fix}" if fix else message)


class LockedError(SheetcrmError):
    """Another sheetcrm process holds the lock for this config."""

    exit_code = ExitStatus.LOCKED
