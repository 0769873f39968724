"""A job's live use: allocation from Slurm's variables, its cgroup, its processes, its GPUs."""

import os
import subprocess
import sys
import time
from types import SimpleNamespace
from unittest import mock

import pynvml
import pytest

from centre.job_usage import (
    UsageMeter,
    allocation_from_environment,
    cores_in_cpuset,
    idle_gpu_notice,
    idle_notice,
    job_cgroup,
    memory_limit,
    read_gpus,
    used_cores,
)

GIB = 1024**3


def test_allocation_from_slurm_variables():
    env = {"SLURM_CPUS_ON_NODE": "4", "SLURM_MEM_PER_NODE": "4096", "SLURM_JOB_GPUS": "1,3"}
    assert allocation_from_environment(env) == allocation_from_environment(dict(env))
    allocation = allocation_from_environment(env)
    assert (allocation.cores, allocation.memory_bytes, allocation.gpus) == (4, 4 * GIB, ("1", "3"))


def test_memory_per_cpu_counts_every_core_and_no_gpu_is_none():
    allocation = allocation_from_environment(
        {"SLURM_CPUS_ON_NODE": "2", "SLURM_MEM_PER_CPU": "1024", "CUDA_VISIBLE_DEVICES": ""}
    )
    assert allocation.memory_bytes == 2 * GIB
    assert allocation.gpus is None


@pytest.mark.parametrize("junk", ["", "-3", "four", "1e9", "0"])
def test_junk_in_slurm_variables_is_no_number(junk):
    allocation = allocation_from_environment(
        {"SLURM_CPUS_ON_NODE": junk, "SLURM_MEM_PER_NODE": junk}
    )
    assert (allocation.cores, allocation.memory_bytes) == (None, None)


def test_the_job_folder_of_a_v2_cgroup():
    text = "0::/system.slice/slurmstepd.scope/job_42/step_batch/user/task_0\n"
    assert job_cgroup(text, "42") == ("v2", "system.slice/slurmstepd.scope/job_42")


def test_the_job_folder_of_v1_cgroups():
    text = (
        "12:cpuacct,cpu:/slurm/uid_1001/job_7/step_0\n"
        "11:memory:/slurm/uid_1001/job_7/step_0/task_0\n"
    )
    assert job_cgroup(text, "7") == ("v1", "slurm/uid_1001/job_7")


@pytest.mark.parametrize(
    "text",
    [
        "0::/system.slice/slurmstepd.scope/job_43/step_0\n",  # another job's folder
        "0::/user.slice/user-1001.slice/session-3.scope\n",  # not in a Slurm job
        "0::/docker/job_42x\n",
        "garbage",
    ],
)
def test_no_job_folder_for_this_job(text):
    assert job_cgroup(text, "42") is None


def test_cgroup_number_formats():
    assert memory_limit("max\n") is None
    assert memory_limit("9223372036854771712\n") is None  # v1's "no limit"
    assert memory_limit("4294967296\n") == 4 * GIB
    assert cores_in_cpuset("0-3,8,10-11\n") == 7
    assert cores_in_cpuset("\n") is None


def test_used_cores_is_a_rate_between_two_readings():
    assert used_cores(None, (5.0, 10.0)) is None
    assert used_cores((5.0, 10.0), (9.0, 12.0)) == 2.0
    assert used_cores((5.0, 10.0), (5.0, 10.0)) is None


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def v2_job(tmp_path, job_id="42"):
    """A real cgroup v2 layout on disk, as Slurm's task/cgroup makes it."""
    folder = tmp_path / "cgroup" / "system.slice" / "slurmstepd.scope" / f"job_{job_id}"
    (folder / "step_0").mkdir(parents=True)
    (folder / "memory.max").write_text(f"{2 * GIB}\n")
    (folder / "memory.current").write_text(f"{GIB // 2}\n")
    (folder / "cpuset.cpus.effective").write_text("0-3\n")
    (folder / "cpu.stat").write_text("usage_usec 1000000\nuser_usec 900000\nsystem_usec 100000\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"0::/system.slice/slurmstepd.scope/job_{job_id}/step_0/user/task_0\n")
    return folder, proc


def test_meter_reads_the_job_cgroup(tmp_path):
    folder, proc = v2_job(tmp_path)
    clock = Clock()
    meter = UsageMeter(
        {"SLURM_JOB_ID": "42", "SLURM_MEM_PER_NODE": "8192"},
        cgroup_root=tmp_path / "cgroup",
        proc_self_cgroup=proc,
        clock=clock,
    )
    first = meter.read()
    assert first.source == "cgroup"
    assert first.used_cores is None  # a rate needs two readings
    (folder / "cpu.stat").write_text("usage_usec 7000000\n")
    clock.now += 2.0
    second = meter.read()
    assert second.used_cores == 3.0
    assert second.allocated_cores == 4  # from the cpuset, since Slurm's variable is missing
    assert second.memory_used_bytes == GIB // 2
    assert second.memory_limit_bytes == 2 * GIB  # the cgroup's limit is what binds
    assert second.gpu_note == "No GPU in this job"


def test_readings_closer_than_a_second_are_the_same_reading(tmp_path):
    folder, proc = v2_job(tmp_path)
    clock = Clock()
    meter = UsageMeter(
        {"SLURM_JOB_ID": "42"}, cgroup_root=tmp_path / "cgroup", proc_self_cgroup=proc, clock=clock
    )
    meter.read()
    clock.now += 2.0
    (folder / "cpu.stat").write_text("usage_usec 3000000\n")
    reading = meter.read()
    (folder / "cpu.stat").write_text("usage_usec 3000001\n")
    clock.now += 0.01
    assert meter.read() is reading


def test_meter_without_a_job_cgroup_counts_the_server_process_tree(tmp_path):
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text("0::/init.scope\n")
    meter = UsageMeter(
        {"SLURM_JOB_ID": "42", "SLURM_CPUS_ON_NODE": "2", "SLURM_MEM_PER_NODE": "1024"},
        cgroup_root=tmp_path,
        proc_self_cgroup=proc,
    )
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        meter.read()
        time.sleep(2)
        reading = meter.read()
    finally:
        burner.kill()
        burner.wait()
    assert reading.source == "processes"
    # The busy child counts as the job's (a share of a core, however busy the machine is).
    assert reading.used_cores >= 0.2
    assert reading.allocated_cores == 2
    assert reading.memory_limit_bytes == GIB
    assert reading.memory_used_bytes > 10 * 1024 * 1024


def test_without_the_nvml_library_the_gpu_job_is_told_why():
    gpus, note = read_gpus(("0",))  # this machine has no NVIDIA driver: the real library fails
    assert gpus == []
    assert note.startswith("GPU use unavailable: NVML could not start")


def nvml_with(devices):
    """pynvml with its device calls answered, its error types real."""
    handles = [SimpleNamespace(index=i) for i in range(len(devices))]
    patches = {
        "nvmlInit": mock.Mock(),
        "nvmlShutdown": mock.Mock(),
        "nvmlDeviceGetCount": mock.Mock(return_value=len(devices)),
        "nvmlDeviceGetHandleByIndex": mock.Mock(side_effect=lambda i: handles[i]),
        "nvmlDeviceGetUUID": mock.Mock(side_effect=lambda h: devices[h.index]["uuid"]),
        "nvmlDeviceGetName": mock.Mock(side_effect=lambda h: devices[h.index]["name"]),
        "nvmlDeviceGetUtilizationRates": mock.Mock(
            side_effect=lambda h: SimpleNamespace(gpu=devices[h.index]["util"], memory=0)
        ),
        "nvmlDeviceGetMemoryInfo": mock.Mock(
            side_effect=lambda h: SimpleNamespace(used=devices[h.index]["used"], total=80 * GIB)
        ),
    }
    return mock.patch.multiple(pynvml, **patches)


DEVICES = [
    {"uuid": "GPU-aaaa", "name": "NVIDIA H100", "util": 5, "used": GIB},
    {"uuid": "GPU-bbbb", "name": "NVIDIA H100", "util": 87, "used": 3 * GIB},
]


def test_only_the_jobs_own_gpus_are_read():
    with nvml_with(DEVICES):
        gpus, note = read_gpus(("1",))
        by_uuid, _ = read_gpus(("GPU-aaaa",))
        pynvml.nvmlShutdown.assert_called()
    assert note == ""
    assert [(g.index, g.utilization_percent, g.memory_used_bytes) for g in gpus] == [
        (1, 87, 3 * GIB)
    ]
    assert [g.index for g in by_uuid] == [0]


def test_a_gpu_nvml_cannot_see_is_said_plainly():
    with nvml_with(DEVICES):
        gpus, note = read_gpus(("7",))
    assert gpus == []
    assert "NVML sees none of this job's GPUs (7)" in note


def test_an_nvml_error_while_reading_is_said_and_nvml_is_shut_down():
    with nvml_with(DEVICES):
        pynvml.nvmlDeviceGetUtilizationRates.side_effect = pynvml.NVMLError(
            pynvml.NVML_ERROR_GPU_IS_LOST
        )
        gpus, note = read_gpus(("0",))
        assert pynvml.nvmlShutdown.called
    assert gpus == []
    assert note.startswith("GPU use unavailable: NVML could not read the GPUs")


def test_the_json_the_status_bar_reads(tmp_path):
    _, proc = v2_job(tmp_path)
    meter = UsageMeter(
        {"SLURM_JOB_ID": "42", "SLURM_JOB_GPUS": "1"},
        cgroup_root=tmp_path / "cgroup",
        proc_self_cgroup=proc,
    )
    with nvml_with(DEVICES):
        body = meter.read().as_json()
    assert body["cpu"] == {"used_cores": None, "allocated_cores": 4}
    assert body["memory"] == {"used_bytes": GIB // 2, "limit_bytes": 2 * GIB}
    assert body["gpus"][0]["utilization_percent"] == 87
    assert body["source"] == "cgroup"


def test_an_hour_under_a_tenth_of_the_cores_is_a_nudge():
    history = [(0.0, 100.0), (1800.0, 150.0), (3600.0, 300.0)]  # 200 CPU s in an hour
    notice = idle_notice(history, 8)
    assert notice.startswith("In the last hour this server used 0.06 of its 8 cores on average")
    assert "1 core would do" in notice


@pytest.mark.parametrize(
    ("history", "allocated"),
    [
        ([(0.0, 0.0), (3600.0, 3600.0)], 8),  # one core of eight: 12.5 %, not idle
        ([(0.0, 0.0), (3000.0, 10.0)], 8),  # less than an hour of readings
        ([(0.0, 0.0), (3600.0, 10.0)], None),  # no allocation known
        ([(3600.0, 10.0)], 8),
    ],
)
def test_no_nudge_for_a_busy_or_young_server(history, allocated):
    assert idle_notice(history, allocated) == ""


def test_the_meter_nudges_after_an_idle_hour_of_its_own_readings(tmp_path):
    folder, proc = v2_job(tmp_path)
    clock = Clock()
    meter = UsageMeter(
        {"SLURM_JOB_ID": "42", "SLURM_CPUS_ON_NODE": "4"},
        cgroup_root=tmp_path / "cgroup",
        proc_self_cgroup=proc,
        clock=clock,
    )
    for minute in range(62):
        (folder / "cpu.stat").write_text(f"usage_usec {1_000_000 + minute * 1_000_000}\n")
        reading = meter.read()
        if minute < 60:
            assert reading.idle_notice == "", minute
        clock.now += 60
    assert "used 0.02 of its 4 cores" in reading.idle_notice


def test_an_hour_of_idle_gpus_is_a_nudge_and_a_busy_hour_is_not(tmp_path):
    folder, proc = v2_job(tmp_path)
    for utilization, nudged in ((3, True), (40, False)):
        clock = Clock()
        meter = UsageMeter(
            {"SLURM_JOB_ID": "42", "SLURM_CPUS_ON_NODE": "1", "SLURM_JOB_GPUS": "1"},
            cgroup_root=tmp_path / "cgroup",
            proc_self_cgroup=proc,
            clock=clock,
        )
        devices = [DEVICES[0], {**DEVICES[1], "util": utilization}]
        with nvml_with(devices):
            for minute in range(62):
                # the one core is busy: only the GPU can be idle
                (folder / "cpu.stat").write_text(f"usage_usec {minute * 60_000_000}\n")
                reading = meter.read()
                clock.now += 60
        assert ("GPUs were" in reading.idle_notice) is nudged, reading.idle_notice
        assert "cores on average" not in reading.idle_notice
    assert idle_gpu_notice([(0.0, 2.0), (1800.0, 2.0)]) == ""  # not an hour yet


def test_the_process_tree_from_proc_matches_psutils_full_scan():
    from centre.job_usage import _process_tree_use, _process_tree_use_psutil

    child = subprocess.Popen(
        [sys.executable, "-c", "import time; x = bytearray(30 << 20); time.sleep(30)"]
    )
    try:
        time.sleep(0.5)
        fast_cpu, fast_memory = _process_tree_use(os.getpid())
        full_cpu, full_memory = _process_tree_use_psutil(os.getpid())
        assert fast_cpu == pytest.approx(full_cpu, abs=0.05)
        # The child's 30 MB are counted: the tree is walked, not only this process.
        assert fast_memory >= 30 << 20
        assert fast_memory == pytest.approx(full_memory, rel=0.05)
    finally:
        child.kill()
        child.wait()
