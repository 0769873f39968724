"""One log format for every corehour process: the hub, the billing service, the idle culler.

An operator reads one stream (the hub's stderr, which its services share), so every line has
the same layout, whoever wrote it.  The text layout is JupyterHub's own, without its colour
codes; the JSON layout is one object per line for a log shipper, with the same facts.

Two ways in, because the processes are of two kinds:

* :func:`hub_logging_config` for traitlets applications (JupyterHub, the idle culler): the
  settings that make the application's own handler carry corehour's loggers too.  Pure.
* :func:`configure_process` for a plain process of ours (the billing service).

``logging.level`` applies to corehour's loggers and the process's own (JupyterHub, tornado,
the culler); other libraries log WARNING and above, so DEBUG does not flood the log with,
say, every SQL statement.

Only the hub's environment has python-json-logger; app servers never import this module.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from centre.site import LOG_FORMATS as FORMATS
from centre.site import LOG_LEVELS as LEVELS

TEXT_FORMAT = "[%(levelname).1s %(asctime)s.%(msecs)03d %(name)s %(module)s:%(lineno)d] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
# The fields of a JSON line, besides "time" and any extra= fields a call passes.
JSON_FIELDS = "%(levelname)s %(name)s %(module)s %(lineno)d %(message)s"
JSON_NAMES = {"levelname": "level", "name": "logger", "lineno": "line"}

# Loggers that log at the configured level; the root logger (every other library) at WARNING.
OWN_LOGGERS = ("corehour", "tornado")
OTHERS_LEVEL = "WARNING"


class JsonLinesFormatter(JsonFormatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, module, line, message,
    plus exc_info and any ``extra=`` fields of the call.

    It takes ``logging.Formatter``'s arguments, so ``logging.config.dictConfig`` can name it
    as a formatter's class; the time is always UTC, whatever ``datefmt`` says.
    """

    def __init__(self, fmt: str = JSON_FIELDS, datefmt: str | None = None, *args, **kwargs):
        kwargs.setdefault("rename_fields", JSON_NAMES)
        kwargs.setdefault("timestamp", "time")
        super().__init__(fmt, datefmt, *args, **kwargs)


def _check(level: str = "INFO", fmt: str = "text") -> None:
    # The site model allows only these, so a wrong value here is a caller's mistake.
    if level not in LEVELS:
        raise ValueError(f"log level '{level}' is not one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"log format '{fmt}' is not one of {', '.join(FORMATS)}")


def formatter(fmt: str) -> logging.Formatter:
    """The formatter for ``fmt`` ("text" or "json")."""
    _check(fmt=fmt)
    if fmt == "json":
        return JsonLinesFormatter()
    return logging.Formatter(TEXT_FORMAT, DATE_FORMAT)


def configure_process(level: str, fmt: str) -> None:
    """Log this process's records to stderr in ``fmt``: ours and tornado's at ``level``,
    everyone else's at WARNING.  For our own processes; the hub uses
    :func:`hub_logging_config`."""
    _check(level, fmt)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(OTHERS_LEVEL)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(level)


def hub_logging_config(level: str, fmt: str) -> dict:
    """``Application`` traits (name → value) for a traitlets application: its log level, its
    format, and a ``logging_config`` that sends corehour's loggers, and every other library's
    warnings, through the application's own "console" handler.

    traitlets merges ``logging_config`` into its default (one handler and one formatter, both
    named "console", on stderr), so this changes that handler's formatter instead of adding
    a second handler: each record is written once.  Pure: the application applies it.
    """
    _check(level, fmt)
    log_format = JSON_FIELDS if fmt == "json" else TEXT_FORMAT
    console = {"format": log_format, "datefmt": DATE_FORMAT}
    if fmt == "json":
        console["class"] = f"{__name__}.{JsonLinesFormatter.__name__}"
    # In text mode the application keeps its own formatter class (JupyterHub's drops
    # coroutine frames from tracebacks); only the layout changes.
    return {
        "log_level": level,
        "log_format": log_format,
        "log_datefmt": DATE_FORMAT,
        "logging_config": {
            "formatters": {"console": console},
            "loggers": {"corehour": {"level": level}},
            "root": {"level": OTHERS_LEVEL, "handlers": ["console"]},
        },
    }
