"""One log format for every corehour process (centre/logs.py): what a line looks like, and
that a real JupyterHub application and a plain process of ours write corehour's records in
it, at the site's level."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys

import pytest
from traitlets.config import Config

from centre.logs import configure_process, formatter, hub_logging_config

pytestmark = pytest.mark.unit

TEXT_LINE = re.compile(
    r"^\[I \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} corehour\.meter test_logs:\d+\] "
    r"charged 3 jobs$"
)


def record(level=logging.INFO, msg="charged %d jobs", args=(3,), exc_info=None, **extra):
    made = logging.LogRecord(
        "corehour.meter", level, __file__, 42, msg, args, exc_info, func="cycle"
    )
    made.__dict__.update(extra)
    return made


def test_a_text_line_has_jupyterhubs_layout_without_colour():
    line = formatter("text").format(record())
    assert TEXT_LINE.match(line), line
    assert "\x1b" not in line


def test_a_json_line_parses_and_names_time_level_logger_and_message():
    line = formatter("json").format(record(account="phys101"))
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["level"] == "INFO"
    assert parsed["logger"] == "corehour.meter"
    assert parsed["message"] == "charged 3 jobs"
    assert parsed["module"] == "test_logs"
    assert parsed["line"] == 42
    assert parsed["account"] == "phys101"  # extra= fields are kept as fields
    when = dt.datetime.fromisoformat(parsed["time"])
    assert when.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.UTC) - when).total_seconds()) < 60


def test_a_json_line_carries_the_traceback_as_one_field():
    try:
        raise ValueError("ledger locked")
    except ValueError:
        failed = record(logging.ERROR, "metering failed", (), sys.exc_info())
    parsed = json.loads(formatter("json").format(failed))
    assert parsed["level"] == "ERROR"
    assert "ValueError: ledger locked" in parsed["exc_info"]


def test_an_unknown_format_or_level_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="'xml' is not one of text, json"):
        formatter("xml")
    with pytest.raises(ValueError, match="'LOUD' is not one of DEBUG, INFO"):
        hub_logging_config("LOUD", "text")


@pytest.fixture
def clean_logging():
    """Put back what these tests change in the process-wide logging state."""
    names = ("", "corehour", "tornado", "JupyterHub")
    saved = {
        n: (lg.handlers[:], lg.level, lg.propagate) for n in names if (lg := logging.getLogger(n))
    }
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_jupyterhub_writes_corehour_records_through_its_own_handler(clean_logging, capsys):
    from jupyterhub.app import JupyterHub

    JupyterHub.clear_instance()
    hub = JupyterHub(config=Config({"Application": hub_logging_config("DEBUG", "json")}))
    try:
        capsys.readouterr()
        hub.log.info("hub line")
        logging.getLogger("corehour.status").debug("watching alpha")
        # A library no other test configures (alembic's level is set by the migrations that
        # earlier tests run, so it would not show the default).
        logging.getLogger("some_library.module").info("below WARNING: not written")
        logging.getLogger("some_library.module").warning("a library's warning")
        lines = json_lines(capsys.readouterr().err)
    finally:
        JupyterHub.clear_instance()
    assert [(line["logger"], line["message"]) for line in lines] == [
        ("JupyterHub", "hub line"),
        ("corehour.status", "watching alpha"),  # once: no second handler
        ("some_library.module", "a library's warning"),
    ]


def test_jupyterhub_in_text_mode_keeps_its_layout_for_corehour_lines(clean_logging, capsys):
    from jupyterhub.app import JupyterHub

    JupyterHub.clear_instance()
    hub = JupyterHub(config=Config({"Application": hub_logging_config("INFO", "text")}))
    try:
        capsys.readouterr()
        hub.log.info("hub line")
        logging.getLogger("corehour.meter").info("charged %d jobs", 3)
        logging.getLogger("corehour.meter").debug("below INFO: not written")
        lines = capsys.readouterr().err.splitlines()
    finally:
        JupyterHub.clear_instance()
    assert len(lines) == 2
    assert re.match(r"^\[I \S+ \S+ JupyterHub test_logs:\d+\] hub line$", lines[0])
    assert TEXT_LINE.match(lines[1]), lines[1]


def test_a_process_of_ours_logs_at_the_sites_level(clean_logging, capsys):
    configure_process("WARNING", "json")
    logging.getLogger("corehour.billing").info("below WARNING: not written")
    logging.getLogger("corehour.billing").warning("ledger slow")
    logging.getLogger("tornado.access").warning("404 GET /nope")
    lines = json_lines(capsys.readouterr().err)
    assert [(line["level"], line["logger"]) for line in lines] == [
        ("WARNING", "corehour.billing"),
        ("WARNING", "tornado.access"),
    ]
