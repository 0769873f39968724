"""Statement formatting without a database: months, hours, CSV cells and PDF pages."""

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest

from billing_hooks.statements import (
    JobLine,
    StatementData,
    TransactionLine,
    csv_safe,
    hours,
    iso_utc,
    month_bounds,
    render_csv,
    render_pdf,
)

pytestmark = pytest.mark.unit


def at(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp())


@pytest.mark.parametrize(
    ("month", "first", "after"),
    [
        ("2026-11", "2026-11-01", "2026-12-01"),
        ("2026-12", "2026-12-01", "2027-01-01"),  # into the next year
        ("2028-02", "2028-02-01", "2028-03-01"),  # a leap February: 29 days
        ("2027-02", "2027-02-01", "2027-03-01"),
        ("1970-01", "1970-01-01", "1970-02-01"),
    ],
)
def test_month_bounds(month, first, after):
    assert month_bounds(month) == (at(first), at(after))


def test_month_bounds_are_whole_utc_days():
    first, after = month_bounds("2028-02")
    assert (after - first) == 29 * 86400


@pytest.mark.parametrize(
    "month",
    [
        "2026-13",
        "2026-00",
        "2026-1",
        "26-11",
        "2026/11",
        "2026-11-01",
        " 2026-11",
        "2026-11\n",
        "",
        "Nov 2026",
        "١٢٣٤-11",  # digits, but not ASCII ones
        "1969-12",  # before epoch seconds begin
        None,
        202611,
    ],
)
def test_month_bounds_refuses(month):
    with pytest.raises(ValueError, match=r"^month: use YYYY-MM, e\.g\. 2026-11"):
        month_bounds(month)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0.0000"),
        (3600, "1.0000"),
        (5400, "1.5000"),
        (1, "0.0003"),  # 0.000277… rounds up
        (2, "0.0006"),
        (3600 * 1_000_000 + 1, "1000000.0003"),
    ],
)
def test_hours(seconds, expected):
    assert hours(seconds) == Decimal(expected)
    assert str(hours(seconds)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("train", "train"),
        ("", ""),
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("a=b", "a=b"),
        ("run-1", "run-1"),
    ],
)
def test_csv_safe(text, expected):
    assert csv_safe(text) == expected


def test_iso_utc():
    assert iso_utc(at("2026-11-26T09:00")) == "2026-11-26T09:00:00Z"


def statement(lines, transactions=()):
    return StatementData(
        account_name="u-alice",
        account_display="alice (personal)",
        account_kind="personal",
        month="2026-11",
        lines=tuple(lines),
        transactions=tuple(transactions),
        balance_mc=-1_250,
        generated_at=at("2026-12-01T03:00"),
    )


def line(job_id, name="job", user="alice", cpus=2, gpus=0, hours_run=1, amount_mc=100):
    start = at("2026-11-05T10:00")
    seconds = int(hours_run * 3600)
    return JobLine(
        cluster="alpha",
        partition="gpu" if gpus else "cpu",
        job_id=job_id,
        job_name=name,
        username=user,
        cpus=cpus,
        gpus=gpus,
        start=start,
        end=start + seconds,
        cpu_seconds=cpus * seconds,
        gpu_seconds=gpus * seconds,
        amount_mc=amount_mc,
    )


def test_totals_come_from_the_lines():
    data = statement(
        [line("1", amount_mc=1), line("2", gpus=1, hours_run=0.5, amount_mc=2_000)],
        [TransactionLine("topup", 5_000, "admin", "grant", at("2026-11-02T00:00"))],
    )
    assert (data.jobs, data.cpu_seconds, data.gpu_seconds, data.charges_mc) == (
        2,
        10800,
        1800,
        2_001,
    )
    assert (data.core_hours, data.gpu_hours, data.credits_mc) == (
        Decimal("3.0000"),
        Decimal("0.5000"),
        5_000,
    )


def test_csv_rows():
    data = statement(
        [
            line("7", name="=cmd|' /C calc'!A0", cpus=1, amount_mc=50),
            line("8", name='a, "quoted"\nname', user="@bob", gpus=2, amount_mc=123_456),
        ]
    )
    rows = list(csv.reader(io.StringIO(render_csv(data))))
    assert rows[0][0] == "cluster"
    assert len(rows[0]) == 12
    assert rows[1:] == [
        [
            "alpha", "cpu", "7", "'=cmd|' /C calc'!A0", "alice", "1", "0",
            "2026-11-05T10:00:00Z", "2026-11-05T11:00:00Z", "1.0000", "0.0000", "0.050",
        ],
        [
            "alpha", "gpu", "8", 'a, "quoted"\nname', "'@bob", "2", "2",
            "2026-11-05T10:00:00Z", "2026-11-05T11:00:00Z", "2.0000", "2.0000", "123.456",
        ],
        ["total", "", "", "", "", "", "", "", "", "3.0000", "2.0000", "123.506"],
    ]  # fmt: skip


def test_csv_of_an_empty_month_has_header_and_zero_total():
    rows = list(csv.reader(io.StringIO(render_csv(statement([])))))
    assert len(rows) == 2
    assert rows[1] == ["total", "", "", "", "", "", "", "", "", "0.0000", "0.0000", "0.000"]


def test_pdf_of_an_empty_month():
    pdf = render_pdf(statement([]))
    assert pdf.startswith(b"%PDF")
    assert b"No jobs were charged this month." in pdf
    assert b"-1.250 credits" in pdf


def test_pdf_is_the_same_for_the_same_statement():
    data = statement([line("1")])
    assert render_pdf(data) == render_pdf(data)


def test_long_pdf_tables_repeat_their_header_on_every_page():
    data = statement(
        [line(str(n), name=f"sim-{n}") for n in range(300)],
        [TransactionLine("topup", 5_000, "admin", "grant <b>& more</b>", at("2026-11-02T00:00"))],
    )
    pdf = render_pdf(data)
    pages = len(re.findall(rb"/Type /Page\b", pdf))
    assert pages > 3
    # The job table's header row is drawn on every page it spans.
    assert pdf.count(b"(core_hours)") >= pages - 1
    assert b"(299)" in pdf
    assert b"Generated 2026-12-01T03:00:00Z" in pdf
    assert b"(grant <) Tj (b) Tj (>) Tj (& more)" in pdf  # markup shown as text


def test_pdf_cuts_long_names_to_their_column():
    pdf = render_pdf(statement([line("1", name="x" * 200, user="y" * 64), line("2", name="a\nb")]))
    assert b"(a b)" in pdf
    assert b"x" * 20 in pdf
    assert b"x" * 200 not in pdf
    assert b"y" * 64 not in pdf
