"""Monthly statements: one bill line per job, the month's money movements, CSV and PDF.

A job's bill is the sum of its charge rows (hour buckets sharing cluster, job id and start).
A month holds the rows whose bucket *starts* in it, so a job that runs across midnight at the
end of a month is billed on both statements, each for its own hours, and no row is counted
twice.  Months are calendar months in UTC.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import LongTable, Paragraph, SimpleDocTemplate, Spacer, Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from billing_hooks.ledger import insert_for
from billing_hooks.models import Account, Charge, Statement, Transaction, now
from centre.pricing import format_credits

MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
GROUPING_WORK_MEM = "64MB"  # about 1 kB per job: room for 60,000 jobs in a month
HOURS_PLACES = Decimal("0.0001")  # 0.36 s: finer than any bill needs
CSV_HEADER = (
    "cluster",
    "partition",
    "job_id",
    "job_name",
    "user",
    "cores",
    "gpus",
    "start",
    "end",
    "core_hours",
    "gpu_hours",
    "amount",
)
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def month_bounds(month: str) -> tuple[int, int]:
    """``'2026-11'`` → epoch seconds of 1 November and 1 December 2026, 00:00 UTC."""
    match = MONTH.fullmatch(month) if isinstance(month, str) else None
    if match is None or not 1 <= int(match[2]) <= 12 or not 1970 <= int(match[1]) < 9999:
        raise ValueError(f"month: use YYYY-MM, e.g. 2026-11; got {month!r}")
    year, number = int(match[1]), int(match[2])
    first = dt.datetime(year, number, 1, tzinfo=dt.UTC)
    after = dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=dt.UTC)
    return int(first.timestamp()), int(after.timestamp())


def hours(seconds: int) -> Decimal:
    """Resource-seconds as hours, rounded half up to 4 places (exact for whole hours)."""
    return (Decimal(seconds) / 3600).quantize(HOURS_PLACES, rounding=ROUND_HALF_UP)


def iso_utc(moment: int) -> str:
    return dt.datetime.fromtimestamp(moment, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_safe(text: str) -> str:
    """Text a spreadsheet shows as text: a leading ``= + - @`` gets an apostrophe."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@dataclass(frozen=True)
class JobLine:
    """One job's part of a month: its charge rows added up."""

    cluster: str
    partition: str
    job_id: str
    job_name: str
    username: str
    cpus: int
    gpus: int
    start: int
    end: int
    cpu_seconds: int
    gpu_seconds: int
    amount_mc: int

    @property
    def core_hours(self) -> Decimal:
        return hours(self.cpu_seconds)

    @property
    def gpu_hours(self) -> Decimal:
        return hours(self.gpu_seconds)


@dataclass(frozen=True)
class TransactionLine:
    kind: str
    amount_mc: int
    actor: str
    reason: str
    created_at: int


@dataclass(frozen=True)
class StatementData:
    """Everything a statement shows; the totals are computed from the lines they total."""

    account_name: str
    account_display: str
    account_kind: str
    month: str
    lines: tuple[JobLine, ...]
    transactions: tuple[TransactionLine, ...]
    balance_mc: int
    generated_at: int = field(default_factory=now)

    @property
    def jobs(self) -> int:
        return len(self.lines)

    @property
    def cpu_seconds(self) -> int:
        return sum(line.cpu_seconds for line in self.lines)

    @property
    def gpu_seconds(self) -> int:
        return sum(line.gpu_seconds for line in self.lines)

    @property
    def charges_mc(self) -> int:
        return sum(line.amount_mc for line in self.lines)

    @property
    def credits_mc(self) -> int:
        return sum(item.amount_mc for item in self.transactions)

    @property
    def core_hours(self) -> Decimal:
        return hours(self.cpu_seconds)

    @property
    def gpu_hours(self) -> Decimal:
        return hours(self.gpu_seconds)


def job_lines(session: Session, account_id: int, month: str) -> list[JobLine]:
    """The account's jobs in the month, earliest first: one grouped query, no rows loaded."""
    first, after = month_bounds(month)
    start = func.min(Charge.interval_start)
    query = (
        select(
            Charge.cluster,
            func.min(Charge.partition),
            Charge.job_id,
            func.max(Charge.job_name),
            func.min(Charge.username),
            func.max(Charge.cpus),
            func.max(Charge.gpus),
            start,
            func.max(Charge.interval_end),
            func.sum(Charge.cpu_seconds),
            func.sum(Charge.gpu_seconds),
            func.sum(Charge.amount_mc),
        )
        .where(
            Charge.account_id == account_id,
            Charge.interval_start >= first,
            Charge.interval_start < after,
        )
        .group_by(Charge.cluster, Charge.job_id, Charge.job_start)
        .order_by(start, Charge.cluster, Charge.job_id, Charge.job_start)
    )
    if session.get_bind().dialect.name == "postgresql":
        # A busy month is a million rows in tens of thousands of jobs.  With the default 4 MB
        # PostgreSQL sorts them on disk; with this it adds them up in a hash table in memory,
        # about twice as fast.  LOCAL: it ends with the caller's transaction.
        session.connection().exec_driver_sql(f"SET LOCAL work_mem = '{GROUPING_WORK_MEM}'")
    # PostgreSQL sums BIGINT as NUMERIC (Decimal here); the sums are whole numbers.
    return [JobLine(*row[:9], *map(int, row[9:])) for row in session.execute(query)]


def month_transactions(session: Session, account_id: int, month: str) -> list[TransactionLine]:
    first, after = month_bounds(month)
    rows = session.execute(
        select(
            Transaction.kind,
            Transaction.amount_mc,
            Transaction.actor,
            Transaction.reason,
            Transaction.created_at,
        )
        .where(
            Transaction.account_id == account_id,
            Transaction.created_at >= first,
            Transaction.created_at < after,
        )
        .order_by(Transaction.created_at, Transaction.id)
    )
    return [TransactionLine(*row) for row in rows]


def build_statement(session: Session, account: Account, month: str) -> StatementData:
    """The account's statement for the month; also records its totals as the Statement row.

    The caller owns the transaction (``with session.begin():``), as for every ledger write.
    """
    month_bounds(month)
    data = StatementData(
        account_name=account.name,
        account_display=account.display_name or account.name,
        account_kind=account.kind,
        month=month,
        lines=tuple(job_lines(session, account.id, month)),
        transactions=tuple(month_transactions(session, account.id, month)),
        # Read afresh: the loaded Account may predate charges booked since.
        balance_mc=session.scalar(select(Account.balance_mc).where(Account.id == account.id)),
    )
    totals = dict(
        jobs=data.jobs,
        cpu_seconds=data.cpu_seconds,
        gpu_seconds=data.gpu_seconds,
        charges_mc=data.charges_mc,
        credits_mc=data.credits_mc,
        generated_at=data.generated_at,
    )
    session.execute(
        insert_for(session)(Statement)
        .values(account_id=account.id, month=month, **totals)
        .on_conflict_do_update(index_elements=["account_id", "month"], set_=totals)
    )
    return data


PADDING = 2  # points either side of a PDF table cell
ROW_HEIGHT = 7 * 1.2 + 2  # a line of 7-point text and a point of padding above and below
TEXT_COLUMNS = 5  # cluster, partition, job_id, job_name, user: the rest are numbers and times


def _cells(line: JobLine) -> list[str]:
    """A job line as the statement's columns (CSV_HEADER), for CSV and PDF alike."""
    return [
        line.cluster,
        line.partition,
        line.job_id,
        line.job_name,
        line.username,
        str(line.cpus),
        str(line.gpus),
        iso_utc(line.start),
        iso_utc(line.end),
        str(line.core_hours),
        str(line.gpu_hours),
        format_credits(line.amount_mc),
    ]


def render_csv(data: StatementData) -> str:
    """One row per job under a header, then a total row; amounts in credits, exact."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for line in data.lines:
        cells = _cells(line)
        writer.writerow([csv_safe(cell) for cell in cells[:TEXT_COLUMNS]] + cells[TEXT_COLUMNS:])
    total = [str(data.core_hours), str(data.gpu_hours), format_credits(data.charges_mc)]
    writer.writerow(["total", *[""] * 8, *total])
    return out.getvalue()


def render_pdf(data: StatementData) -> bytes:
    """The statement as an A4 (landscape) PDF; long job tables continue over pages."""
    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7, leading=8.5)
    grid = [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 7),
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 7),
        ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f2f2f2")]),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
        ("LEFTPADDING", (0, 0), (-1, -1), PADDING),
        ("RIGHTPADDING", (0, 0), (-1, -1), PADDING),
    ]

    widths = [50, 50, 50, 150, 64, 30, 26, 78, 78, 56, 50, 56]
    jobs = [list(CSV_HEADER)]
    for line in data.lines:
        cells = _cells(line)
        for column in range(TEXT_COLUMNS):
            cells[column] = _fit(cells[column], widths[column] - 2 * PADDING)
        jobs.append(cells)
    # Every row is one line: fixed heights spare reportlab measuring the rest of the table
    # again at each page break, which makes long statements quadratic.
    job_table = LongTable(jobs, colWidths=widths, rowHeights=[ROW_HEIGHT] * len(jobs), repeatRows=1)
    job_table.setStyle([*grid, ("ALIGN", (5, 0), (-1, -1), "RIGHT")])

    totals = Table(
        [
            ["Jobs", str(data.jobs)],
            ["Core-hours", str(data.core_hours)],
            ["GPU-hours", str(data.gpu_hours)],
            ["Charges", f"{format_credits(data.charges_mc)} credits"],
            ["Credits this month", f"{format_credits(data.credits_mc)} credits"],
            ["Balance now", f"{format_credits(data.balance_mc)} credits"],
        ],
        colWidths=[90, 110],
        hAlign="LEFT",
    )
    totals.setStyle(
        [
            ("FONT", (0, 0), (-1, -1), "Helvetica", 9),
            ("FONT", (0, 0), (0, -1), "Helvetica-Bold", 9),
            ("ALIGN", (1, 0), (1, -1), "RIGHT"),
        ]
    )

    story = [
        Paragraph("corehour statement", styles["Title"]),
        Paragraph(
            f"Account <b>{escape(data.account_name)}</b> ({escape(data.account_kind)})"
            f" &mdash; {escape(data.account_display)}",
            styles["BodyText"],
        ),
        Paragraph(f"Month {escape(data.month)} (UTC)", styles["BodyText"]),
        Spacer(1, 4 * mm),
        totals,
        Spacer(1, 6 * mm),
        Paragraph("Jobs", styles["Heading2"]),
    ]
    if data.lines:
        story.append(job_table)
    else:
        story.append(Paragraph("No jobs were charged this month.", styles["BodyText"]))
    story.append(Paragraph("Top-ups, adjustments and refunds", styles["Heading2"]))
    if data.transactions:
        moves = [["date", "kind", "amount", "by", "reason"]]
        moves += [
            [
                iso_utc(item.created_at),
                item.kind,
                format_credits(item.amount_mc),
                _fit(item.actor, 70 - 2 * PADDING),
                Paragraph(escape(item.reason), small),
            ]
            for item in data.transactions
        ]
        moves_table = LongTable(moves, colWidths=[80, 60, 60, 70, 400], repeatRows=1)
        moves_table.setStyle([*grid, ("ALIGN", (2, 0), (2, -1), "RIGHT")])
        story.append(moves_table)
    else:
        story.append(Paragraph("None this month.", styles["BodyText"]))
    story += [
        Spacer(1, 6 * mm),
        Paragraph(f"Generated {iso_utc(data.generated_at)} by corehour.", small),
    ]

    out = io.BytesIO()
    document = SimpleDocTemplate(
        out,
        pagesize=landscape(A4),
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=f"corehour statement {data.account_name} {data.month}",
        author="corehour",
        invariant=1,
        pageCompression=0,
    )
    document.build(story)
    return out.getvalue()


def _fit(text: str, width: float, font: str = "Helvetica", size: float = 7) -> str:
    """The text on one line, cut short with an ellipsis where it would reach the next column."""
    text = " ".join(text.split())
    if stringWidth(text, font, size) <= width:
        return text
    fits, too_long = 0, len(text)  # the longest prefix that fits with its ellipsis, by halving
    while too_long - fits > 1:
        middle = (fits + too_long) // 2
        if stringWidth(text[:middle] + "…", font, size) <= width:
            fits = middle
        else:
            too_long = middle
    return text[:fits] + "…"
