"""The job history's pure core: report checks (hostile input), keys, samples and ageing."""

import math

import pytest

from centre.job_samples import (
    KEEP_S,
    MAX_SAMPLES_PER_REPORT,
    ReportError,
    Sample,
    downsample,
    gpu_efficiency,
    key_owner,
    minute_of,
    parse_report,
    report_key,
    sample_since,
)
from extensions.monitoring.history import running_server_job
from extensions.monitoring.history_store import HistoryStore

NOW = 1_800_000_000
SECRET = b"s" * 32


def row(t=NOW - 120, cpu=1.5, gpu=None):
    return [t, 60, cpu, 2, 1_000_000, 2_000_000_000, gpu, None]


def test_a_key_names_its_owner_and_cluster_and_cannot_be_bent():
    key = report_key(SECRET, "chtest1", "alpha")
    assert key_owner(SECRET, key) == ("chtest1", "alpha")
    digest = key.rpartition(".")[2]
    # The attack: keep the MAC, claim someone else or another cluster.
    assert key_owner(SECRET, f"alpha/chtest2.{digest}") is None
    assert key_owner(SECRET, f"beta/chtest1.{digest}") is None
    assert key_owner(b"t" * 32, key) is None
    for junk in ("", ".", "alpha/", "chtest1." + digest, "alpha/chtest1"):
        assert key_owner(SECRET, junk) is None


def test_a_good_report_parses():
    report = parse_report({"job_id": 42, "samples": [row(), row(gpu=55.5)]}, NOW)
    assert report.job_id == 42
    assert report.samples[0].cpu_cores == 1.5
    assert report.samples[1].gpu_percent == 55.5


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (None, "JSON object"),
        ([], "JSON object"),
        ({"job_id": 1, "samples": [row()], "user": "root"}, "unknown field 'user'"),
        ({"job_id": 1, "samples": [row()], "cluster": "beta"}, "unknown field 'cluster'"),
        ({"job_id": 0, "samples": [row()]}, "job_id"),
        ({"job_id": "7", "samples": [row()]}, "job_id"),
        ({"job_id": True, "samples": [row()]}, "job_id"),
        ({"job_id": 2**40, "samples": [row()]}, "job_id"),
        ({"job_id": 1, "samples": []}, "samples"),
        ({"job_id": 1, "samples": [row()] * (MAX_SAMPLES_PER_REPORT + 1)}, "samples"),
        ({"job_id": 1, "samples": [row()[:-1]]}, "samples[0]"),
        ({"job_id": 1, "samples": [row(t=NOW - 3 * 86400)]}, "samples[0].t"),
        ({"job_id": 1, "samples": [row(t=NOW + 3600)]}, "samples[0].t"),
        ({"job_id": 1, "samples": [row(), row(cpu=-1)]}, "samples[1].cpu_cores"),
        ({"job_id": 1, "samples": [row(cpu=math.nan)]}, "samples[0].cpu_cores"),
        ({"job_id": 1, "samples": [row(cpu=math.inf)]}, "samples[0].cpu_cores"),
        ({"job_id": 1, "samples": [row(cpu="1")]}, "samples[0].cpu_cores"),
        ({"job_id": 1, "samples": [row(gpu=101)]}, "samples[0].gpu_percent"),
        ({"job_id": 1, "samples": [[NOW, 0, 1, 2, 3, 4, None, None]]}, "samples[0].seconds"),
        ({"job_id": 1, "samples": [[NOW, 60, 1, 2, -3, 4, None, None]]}, "memory_bytes"),
        ({"job_id": 1, "samples": [[NOW, 60, 1, 0, 3, 4, None, None]]}, "allocated_cores"),
    ],
)
def test_a_bad_report_names_the_field(body, field):
    with pytest.raises(ReportError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_report(body, NOW)


def test_a_sample_is_the_mean_over_its_span():
    sample = sample_since(
        (NOW, 100.0),
        (NOW + 60, 160.0),
        allocated_cores=4,
        memory_bytes=5,
        memory_limit_bytes=10,
        gpu_percents=[20, 40],
        gpu_memory_bytes=[1, 2],
    )
    assert sample == Sample(NOW, 60, 1.0, 4, 5, 10, 30.0, 3)
    # Too short a span, or a counter that went back (a restarted meter): no sample.
    assert sample_since((NOW, 1.0), (NOW + 0.5, 2.0), **_given()) is None
    assert sample_since((NOW, 10.0), (NOW + 60, 5.0), **_given()) is None


def _given():
    return {"allocated_cores": 1, "memory_bytes": 0, "memory_limit_bytes": None}


def test_old_minutes_become_ten_minute_then_hourly_means_and_then_go():
    def minute(age, cpu, memory=100):
        return Sample(minute_of(NOW - age), 60, cpu, 2, memory, 1000, None, None)

    recent = [minute(60 * i, 1.0) for i in range(1, 5)]
    # Two minutes of one ten-minute span, a day and an hour ago.
    span = (NOW - 86_400 - 3600) // 600 * 600
    day_old = [
        Sample(span + 60 * i, 60, cpu, 2, 100 * i, 1000, None, None) for i, cpu in enumerate([0, 2])
    ]
    hour = (NOW - 8 * 86_400) // 3600 * 3600
    week_old = [Sample(hour + 60 * i, 60, 1.0, 2, 100, 1000, None, None) for i in range(3)]
    gone = [minute(KEEP_S + 60, 1.0)]
    kept = downsample([*recent, *day_old, *week_old, *gone], NOW)
    assert [s for s in kept if NOW - s.t < 86_400] == sorted(recent, key=lambda s: s.t)
    merged_day = [s for s in kept if 86_400 < NOW - s.t < 7 * 86_400]
    assert len(merged_day) == 1
    assert merged_day[0].t % 600 == 0
    assert merged_day[0].cpu_cores == pytest.approx(1.0)  # the mean of 0 and 2
    assert merged_day[0].memory_bytes == 100  # the peak, not the mean
    merged_week = [s for s in kept if NOW - s.t > 7 * 86_400]
    assert len(merged_week) == 1 and merged_week[0].t % 3600 == 0
    assert merged_week[0].seconds == 180
    assert all(NOW - s.t <= KEEP_S for s in kept)


def test_gpu_efficiency_weighs_by_time_and_ignores_minutes_without_a_gpu():
    samples = [
        Sample(NOW, 60, 1, 1, 1, 1, 10.0, 1),
        Sample(NOW + 60, 180, 1, 1, 1, 1, 50.0, 1),
        Sample(NOW + 240, 60, 1, 1, 1, 1, None, None),
    ]
    assert gpu_efficiency(samples) == pytest.approx(40.0)
    assert gpu_efficiency(samples[2:]) is None


class _Spawner:
    def __init__(self, job_id, cluster):
        self.job_id, self.cluster = job_id, cluster


def test_only_a_running_server_of_the_person_may_report():
    spawners = [_Spawner("17", "alpha"), _Spawner("", "")]
    assert running_server_job(spawners, "alpha", 17)
    assert not running_server_job(spawners, "beta", 17)
    assert not running_server_job(spawners, "alpha", 18)
    assert not running_server_job([], "alpha", 17)


def test_the_store_keeps_a_minute_once_and_shows_each_person_only_their_own(tmp_path):
    store = HistoryStore(f"sqlite:///{tmp_path / 'h.sqlite'}")
    first = Sample(NOW + 5, 60, 1.0, 2, 10, 20, None, None)
    again = Sample(NOW + 30, 60, 2.0, 2, 10, 20, 50.0, 7)  # the same minute, later
    assert store.add("alpha", 5, "chtest1", [first]) == 1
    store.add("alpha", 5, "chtest1", [again, Sample(NOW + 65, 60, 0.5, 2, 1, 20, None, None)])
    samples = store.samples("chtest1", "alpha", 5)
    assert [(s.t, s.cpu_cores) for s in samples] == [
        (minute_of(NOW), 2.0),
        (minute_of(NOW) + 60, 0.5),
    ]
    assert store.samples("chtest2", "alpha", 5) == []
    assert store.summaries("chtest1") == {("alpha", 5): (2, 50.0)}
    assert store.summaries("chtest2") == {}


def test_the_store_thins_old_rows(tmp_path):
    store = HistoryStore(f"sqlite:///{tmp_path / 'h.sqlite'}")
    old = [
        Sample(minute_of(NOW - 2 * 86_400) + 60 * i, 60, float(i), 2, 1, 2, None, None)
        for i in range(10)
    ]
    store.add("alpha", 9, "chtest1", old)
    store.add("alpha", 9, "chtest1", [Sample(minute_of(NOW - 120), 60, 1.0, 2, 1, 2, None, None)])
    assert store.thin_if_due(NOW)
    assert not store.thin_if_due(NOW + 60)  # at most once an hour
    samples = store.samples("chtest1", "alpha", 9)
    assert len(samples) <= 3  # ten minutes fall into one or two 10-minute rows, plus the recent one
    assert samples[-1].t == minute_of(NOW - 120)
    total = sum(s.cpu_cores * s.seconds for s in samples[:-1])
    assert total == pytest.approx(sum(60.0 * i for i in range(10)))


def test_nobodys_report_replaces_another_persons_minute(tmp_path):
    store = HistoryStore(f"sqlite:///{tmp_path / 'h.sqlite'}")
    mine = Sample(NOW, 60, 1.0, 2, 10, 20, None, None)
    store.add("alpha", 5, "chtest1", [mine])
    # The attack: the same cluster, job and minute, written under another person's key.
    store.add("alpha", 5, "chtest2", [Sample(NOW, 60, 0.0, 2, 0, 20, None, None)])
    assert [s.cpu_cores for s in store.samples("chtest1", "alpha", 5)] == [1.0]
