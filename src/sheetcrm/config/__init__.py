"""The operator's whole interface: ``config.toml``, read once, typed all the way down.

One module per concern:

- ``base``: the settings model base, durations, how a value may be shown;
- ``explain``: the one formatter from validation errors to a ``ConfigError`` line;
- ``table``: ``[table]``, one model per backend, picked by ``backend``;
- ``channels``: ``[channels.NAME]``, one model per channel type, picked by ``type``;
- ``sections``: ``[fields]``, ``[writeback]``, ``[flows.*]``, ``[sending]``;
- ``schedule``: ``[schedule]`` and crontab lines read as crontab reads them;
- ``alerts``: ``[alerts]``, the apprise URLs the operator is alerted through;
- ``language``: the top-level ``language``, read early (config errors are messages too);
- ``report``: ``[report]``, what ``sheetcrm report`` adds (revenue, language);
- ``load``: reading the file, ``${ENV}``, and the checks across sections.

This package sits below the adapters: the table backends and the channels import
their settings from here, never the other way round.
"""

from sheetcrm.config.alerts import AlertSettings
from sheetcrm.config.base import SettingError, Settings, parse_duration, quote_key
from sheetcrm.config.channels import (
    CHANNEL_SETTINGS,
    ChannelSettings,
    EmailSettings,
    OutboxSettings,
    SmtpSettings,
    WebhookSettings,
    parse_channel_settings,
)
from sheetcrm.config.hearing import EventSettings, MailboxSettings, ServerSettings
from sheetcrm.config.language import peek_language, use_language_of
from sheetcrm.config.load import (
    RECORD_ID_FIELD,
    Config,
    ConfigModel,
    config_from_dict,
    load_config,
    with_rules,
)
from sheetcrm.config.report import ReportSettings
from sheetcrm.config.rules import RulesSettings
from sheetcrm.config.schedule import ScheduleSettings, crontab_trigger, crontab_weekdays
from sheetcrm.config.sections import (
    FieldSettings,
    FlowSettings,
    QuietHours,
    SendingSettings,
    StepSettings,
    WritebackSettings,
)
from sheetcrm.config.table import (
    TABLE_SETTINGS,
    AirtableSettings,
    CsvTableSettings,
    GoogleSheetsSettings,
    TableSettings,
    parse_table_settings,
)

_quote_key = quote_key  # the name the planner's modules import

__all__ = [
    "AlertSettings",
    "EventSettings",
    "MailboxSettings",
    "ServerSettings",
    "CHANNEL_SETTINGS",
    "TABLE_SETTINGS",
    "RECORD_ID_FIELD",
    "AirtableSettings",
    "ChannelSettings",
    "Config",
    "ConfigModel",
    "CsvTableSettings",
    "EmailSettings",
    "FieldSettings",
    "FlowSettings",
    "GoogleSheetsSettings",
    "OutboxSettings",
    "QuietHours",
    "ReportSettings",
    "RulesSettings",
    "ScheduleSettings",
    "SendingSettings",
    "SettingError",
    "Settings",
    "SmtpSettings",
    "StepSettings",
    "TableSettings",
    "WebhookSettings",
    "WritebackSettings",
    "config_from_dict",
    "crontab_trigger",
    "crontab_weekdays",
    "load_config",
    "parse_channel_settings",
    "parse_duration",
    "parse_table_settings",
    "peek_language",
    "quote_key",
    "use_language_of",
    "with_rules",
]
