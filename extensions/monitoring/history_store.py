"""Where the job history lives: one row per job per minute, thinned out as it ages.

A database of its own (SQLite in the hub's state dir, or ``COREHOUR_HISTORY_DB_URL``): the
history is not the ledger and never bills anything, and a reset of the hub's database must
not lose it.  The rows' format and ageing are centre/job_samples.py's; this is the shell.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from sqlalchemy import (
    BigInteger,
    Float,
    Index,
    Integer,
    String,
    case,
    create_engine,
    delete,
    event,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from centre.job_samples import AGES, KEEP_S, Sample, downsample, minute_of

# How often the hub thins the history out (it does so after a report, at most this often).
THIN_EVERY_S = 3600


class _Base(DeclarativeBase):
    pass


class JobSample(_Base):
    __tablename__ = "job_sample"
    # My jobs reads one person's rows of every job at once.
    __table_args__ = (Index("ix_job_sample_username", "username"),)

    cluster: Mapped[str] = mapped_column(String(64), primary_key=True)
    job_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    t: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # In the key: a row is its writer's alone, so nobody's report can replace another's
    # minute, whatever job number it names.
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    seconds: Mapped[int] = mapped_column(Integer)
    cpu_cores: Mapped[float] = mapped_column(Float)
    allocated_cores: Mapped[int | None] = mapped_column(Integer, nullable=True)
    memory_bytes: Mapped[int] = mapped_column(BigInteger)
    memory_limit_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gpu_percent: Mapped[float | None] = mapped_column(Float, nullable=True)
    gpu_memory_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    def sample(self) -> Sample:
        return Sample(
            t=self.t,
            seconds=self.seconds,
            cpu_cores=self.cpu_cores,
            allocated_cores=self.allocated_cores,
            memory_bytes=self.memory_bytes,
            memory_limit_bytes=self.memory_limit_bytes,
            gpu_percent=self.gpu_percent,
            gpu_memory_bytes=self.gpu_memory_bytes,
        )


def _row(cluster: str, job_id: int, username: str, sample: Sample) -> JobSample:
    return JobSample(
        cluster=cluster,
        job_id=job_id,
        username=username,
        t=sample.t,
        seconds=sample.seconds,
        cpu_cores=sample.cpu_cores,
        allocated_cores=sample.allocated_cores,
        memory_bytes=sample.memory_bytes,
        memory_limit_bytes=sample.memory_limit_bytes,
        gpu_percent=sample.gpu_percent,
        gpu_memory_bytes=sample.gpu_memory_bytes,
    )


class HistoryStore:
    def __init__(self, url: str):
        self.engine = create_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        _Base.metadata.create_all(self.engine)
        self._thinned_at = 0.0
        self._thin_lock = threading.Lock()

    def __deepcopy__(self, memo) -> HistoryStore:
        # The hub deep-copies its config, handler arguments included; a store is one shared
        # connection pool, never a value to copy.
        return self

    def add(self, cluster: str, job_id: int, username: str, samples: Iterable[Sample]) -> int:
        """Store a job's samples, one row per minute (a later sample of a minute replaces it)."""
        by_minute = {minute_of(s.t): s for s in samples}
        rows = [
            _row(cluster, job_id, username, Sample(**{**vars(s), "t": minute}))
            for minute, s in by_minute.items()
        ]
        with Session(self.engine) as session, session.begin():
            session.execute(
                delete(JobSample).where(
                    JobSample.cluster == cluster,
                    JobSample.job_id == job_id,
                    JobSample.username == username,
                    JobSample.t.in_(list(by_minute)),
                )
            )
            session.add_all(rows)
        return len(rows)

    def samples(self, username: str, cluster: str, job_id: int) -> list[Sample]:
        """The person's own samples of one job, oldest first (nothing of anyone else's)."""
        with Session(self.engine) as session:
            rows = session.scalars(
                select(JobSample)
                .where(
                    JobSample.username == username,
                    JobSample.cluster == cluster,
                    JobSample.job_id == job_id,
                )
                .order_by(JobSample.t)
            )
            return [row.sample() for row in rows]

    def summaries(self, username: str) -> dict[tuple[str, int], tuple[int, float | None]]:
        """(cluster, job) → (rows, mean GPU use in percent or None) for the person's jobs."""
        gpu_weighted = func.sum(JobSample.gpu_percent * JobSample.seconds)
        gpu_seconds = func.sum(
            case((JobSample.gpu_percent.is_not(None), JobSample.seconds), else_=0)
        )
        query = (
            select(JobSample.cluster, JobSample.job_id, func.count(), gpu_weighted, gpu_seconds)
            .where(JobSample.username == username)
            .group_by(JobSample.cluster, JobSample.job_id)
        )
        with Session(self.engine) as session:
            return {
                (cluster, job_id): (count, weighted / seconds if seconds else None)
                for cluster, job_id, count, weighted, seconds in session.execute(query)
            }

    def thin_if_due(self, now: float | None = None) -> bool:
        """Thin the history out if the last time was over an hour ago; True if it did."""
        now = time.time() if now is None else now
        if now - self._thinned_at < THIN_EVERY_S or not self._thin_lock.acquire(blocking=False):
            return False
        try:
            self._thinned_at = now
            self.thin(now)
            return True
        finally:
            self._thin_lock.release()

    def thin(self, now: float) -> None:
        """Merge old minutes into coarser rows (centre/job_samples.py's ages); drop the oldest."""
        youngest_bucketed = now - AGES[0][0]
        with Session(self.engine) as session, session.begin():
            session.execute(delete(JobSample).where(JobSample.t < now - KEEP_S))
            # Only jobs with a row that is not yet its bucket's one merged row need merging (a
            # merged row starts its bucket); a part-filled bucket is then left alone.
            finer = [
                (JobSample.t < now - age) & (JobSample.t % bucket != 0) for age, bucket in AGES
            ]
            jobs = session.execute(
                select(JobSample.cluster, JobSample.job_id, JobSample.username)
                .where(JobSample.t < youngest_bucketed)
                .where(finer[0] | finer[1])
                .distinct()
            ).all()
            for cluster, job_id, username in jobs:
                old = session.scalars(
                    select(JobSample).where(
                        JobSample.cluster == cluster,
                        JobSample.job_id == job_id,
                        JobSample.username == username,
                        JobSample.t < youngest_bucketed,
                    )
                ).all()
                kept = downsample([row.sample() for row in old], now)
                for row in old:
                    session.delete(row)
                session.flush()
                session.add_all(_row(cluster, job_id, username, s) for s in kept)


def _sqlite_pragmas(connection, _record) -> None:
    # The history is not the ledger: a crash may lose the last report, never corrupt the file.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
