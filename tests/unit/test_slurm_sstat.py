"""One sstat for many running jobs: the command, and each job's steps summed."""

import pytest

from centre.slurm_sstat import JobNow, cpu_seconds, parse_sstat, size_bytes, sstat_argv
from voila_apps.kit.jobs import use_in_words

# What Slurm 22.05 printed for two running jobs on the test bed (sstat -a -P -n).
CAPTURE = (
    "1.extern|cpu=00:00:00,energy=0,fs/disk=2332,mem=0,pages=0,vmem=0\n"
    "1.batch|cpu=00:00:28,energy=0,fs/disk=48344,mem=9548K,pages=0,vmem=16544K\n"
    "2.batch|cpu=01:00:27.500,energy=0,fs/disk=48344,mem=1.50G,pages=1,vmem=16544K\n"
    "2.0|cpu=1-00:00:00,mem=512M\n"
)


def test_each_jobs_steps_are_summed():
    assert parse_sstat(CAPTURE) == {
        "1": JobNow(cpu_seconds=28.0, memory_bytes=9548 * 1024),
        "2": JobNow(cpu_seconds=3627.5 + 86400, memory_bytes=int(1.5 * 1024**3) + 512 * 1024**2),
    }


@pytest.mark.parametrize(
    "junk", ["", "garbage", "x.batch|cpu=00:01", "|||", "3.batch|cpu=later,mem=lots"]
)
def test_junk_lines_are_skipped_or_zero(junk):
    assert parse_sstat(junk).get("x") is None
    assert all(v.cpu_seconds >= 0 and v.memory_bytes >= 0 for v in parse_sstat(junk).values())


def test_one_command_for_all_jobs_and_only_job_ids_in_it():
    argv = sstat_argv(["12", "13", "14_2"])
    assert argv[-2:] == ["-j", "12,13,14_2"]
    assert "--allsteps" in argv and "--parsable2" in argv
    assert sstat_argv(["12", "12;rm -rf /", "-a"])[-1] == "12"
    with pytest.raises(ValueError):
        sstat_argv(["--help"])


def test_slurm_number_formats():
    assert cpu_seconds("2-01:00:00") == 2 * 86400 + 3600
    assert cpu_seconds("00:34.989") == pytest.approx(34.989)
    assert size_bytes("9548K") == 9548 * 1024
    assert size_bytes("123") == 123
    assert size_bytes("12Q") == 0


def test_the_app_panel_says_the_average_against_the_cores():
    use = JobNow(cpu_seconds=60.0, memory_bytes=2 * 1024**3)
    assert use_in_words(use, 2, 0, 60) == "Use: CPU 1.00 of 2 cores on average · Mem 2.00 GiB now"
    assert use_in_words(use, 1, 1, 30).endswith(
        "GPU use: on My jobs (read each minute from the GPU driver)"
    )
    assert "not measured yet" in use_in_words(None, 2, 0, 60)
    assert "not measured yet" in use_in_words(JobNow(0.0, 0), 2, 0, 60)
