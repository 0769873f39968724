"""GPU training with PyTorch: checking inputs, the job's command, reading the job's files.

The fixtures are real runs of ``voila_apps.torch_train.run`` (see fixtures/torch_train/README.md).
Training for real, in the gpu image's own Python, is in tests/integration/test_app_codes.py.
"""

import json
import math
import shlex

import pytest

from voila_apps.kit.jobs import InputError, batch_script, check_resources
from voila_apps.torch_train.core import (
    DeviceChoice,
    Epoch,
    check_inputs,
    check_training,
    choose_device,
    curves,
    job_command,
    loss_fell,
    params_from_json,
    params_json,
    parse_progress,
    parse_result,
    progress_line,
    summary,
)
from voila_apps.torch_train.params import Params

from .conftest import FIXTURES

pytestmark = pytest.mark.unit

RUNS = FIXTURES / "torch_train"
NAN = float("nan")


@pytest.fixture
def gpu_request(site):
    return check_resources({"profile": "gpu", "cluster": "alpha", "gpus": 1}, site)


def read(run: str, name: str) -> str:
    return (RUNS / run / name).read_text()


# --- inputs --------------------------------------------------------------------------------
def test_defaults_and_the_edges_of_every_range_are_accepted(gpu_request):
    assert check_inputs({}, gpu_request) == Params()
    edges = {"epochs": 500, "batch_size": 1797, "learning_rate": 1, "hidden_units": 1024}
    params = check_inputs({**edges, "model": "cnn", "seed": 0}, gpu_request)
    assert params == Params("cnn", 500, 1797, 1.0, 1024, 0)
    assert isinstance(params.learning_rate, float)
    low = check_inputs({"epochs": 1, "batch_size": 1, "learning_rate": 1e-9}, gpu_request)
    assert (low.epochs, low.batch_size, low.learning_rate) == (1, 1, 1e-9)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("epochs", 501),
        ("epochs", -3),
        ("epochs", True),
        ("epochs", 2.5),
        ("epochs", 10.0),
        ("epochs", "10"),
        ("epochs", "10; rm -rf ~"),
        ("epochs", None),
        ("epochs", NAN),
        ("batch_size", 0),
        ("batch_size", 1798),
        ("batch_size", False),
        ("batch_size", "64"),
        ("batch_size", [64]),
        ("learning_rate", 0),
        ("learning_rate", 0.0),
        ("learning_rate", -0.01),
        ("learning_rate", 1.0001),
        ("learning_rate", NAN),
        ("learning_rate", float("inf")),
        ("learning_rate", True),
        ("learning_rate", "0.01"),
        ("learning_rate", None),
        ("hidden_units", 0),
        ("hidden_units", 1025),
        ("hidden_units", True),
        ("hidden_units", 64.0),
        ("model", "resnet"),
        ("model", "MLP"),
        ("model", None),
        ("model", 1),
        ("model", "mlp\n#SBATCH --gres=gpu:8"),
        ("seed", -1),
        ("seed", 2**31),
        ("seed", True),
    ],
)
def test_bad_input_is_refused_naming_the_field(gpu_request, field, value):
    with pytest.raises(InputError) as caught:
        check_inputs({field: value}, gpu_request)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_refusals_say_what_is_allowed_and_what_was_sent():
    with pytest.raises(InputError, match=r"epochs: a whole number from 1 to 500; got 0"):
        check_training({"epochs": 0})
    with pytest.raises(InputError, match=r"batch_size: a whole number from 1 to 1797; got 'x'"):
        check_training({"batch_size": "x"})
    with pytest.raises(InputError, match=r"learning_rate: .*greater than 0 and at most 1.*nan"):
        check_training({"learning_rate": NAN})
    with pytest.raises(InputError, match=r"learning_rate: .*got bool"):
        check_training({"learning_rate": True})
    with pytest.raises(InputError, match=r"model: choose one of mlp, cnn"):
        check_training({"model": "x" * 1000})
    with pytest.raises(InputError) as caught:
        check_training({"model": "x" * 1000})
    assert len(str(caught.value)) < 100  # a long value is shortened, not echoed whole


def test_unknown_keys_such_as_the_resources_are_ignored():
    assert check_training({"cores": 4, "profile": "gpu", "prologue": "x"}) == Params()


def test_params_round_trip_through_the_file_the_job_reads():
    params = Params("cnn", 7, 32, 0.003, 48, 5)
    assert params_from_json(params_json(params)) == params
    assert params_from_json(read("mlp-cpu", "params.json")) == Params()


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("", "params.json"),
        ('{"epochs": 5', "params.json"),
        ("[1, 2]", "params.json"),
        ('{"epochs": 100000}', "epochs"),
        ('{"learning_rate": NaN}', "learning_rate"),
        ('{"batch_size": true}', "batch_size"),
    ],
)
def test_the_job_checks_its_params_file_again(text, field):
    with pytest.raises(InputError) as caught:
        params_from_json(text)
    assert caught.value.field == field


# --- the job -------------------------------------------------------------------------------
def test_the_job_command_runs_the_module_with_quoted_paths():
    body = job_command("/opt/corehour/images/gpu/bin/python", "/home/al ice/runs/$(x);1")
    last = body.splitlines()[-1]
    assert shlex.split(last) == [
        "exec",
        "/opt/corehour/images/gpu/bin/python",
        "-m",
        "voila_apps.torch_train.run",
        "/home/al ice/runs/$(x);1",
    ]
    assert 'export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"' in body.splitlines()


def test_the_batch_script_asks_for_the_gpu_before_any_command(gpu_request):
    body = "export PYTHONPATH=/opt/corehour/apps\n" + job_command("/py", "/home/alice/run")
    script = batch_script(
        gpu_request, name="torch-train", workdir="/home/alice/run", body=body, output="job.out"
    )
    lines = script.splitlines()
    directives = [i for i, line in enumerate(lines) if line.startswith("#SBATCH")]
    assert "#SBATCH --gres=gpu:1" in lines and "#SBATCH --partition=gpu" in lines
    assert max(directives) < lines.index("export PYTHONPATH=/opt/corehour/apps")


@pytest.mark.parametrize(
    ("available", "build", "visible", "device", "note"),
    [
        (True, "13.0", "0", "cuda", ""),
        (
            False,
            "13.0",
            None,
            "cpu",
            "No GPU is visible to this job, CUDA_VISIBLE_DEVICES is not set; trained on the CPU",
        ),
        (
            False,
            None,
            "",
            "cpu",
            "No GPU is visible to this job, CUDA_VISIBLE_DEVICES=(empty); trained on the CPU",
        ),
        (
            False,
            "13.0",
            "0,1",
            "cpu",
            "No GPU is visible to this job, CUDA_VISIBLE_DEVICES=0,1; trained on the CPU",
        ),
        (
            False,
            None,
            "0",
            "cpu",
            "This job was given GPU 0, but its PyTorch is a CPU-only build; trained on the CPU",
        ),
    ],
)
def test_the_device_is_cuda_when_torch_sees_it_or_the_cpu_with_the_reason(
    available, build, visible, device, note
):
    assert choose_device(available, build, visible) == DeviceChoice(device, note)


# --- the job's files -----------------------------------------------------------------------
def test_progress_of_a_real_run_parses_into_falling_finite_losses():
    epochs = parse_progress(read("mlp-cpu", "progress.jsonl"))
    assert [e.epoch for e in epochs] == list(range(1, 21))
    assert all(math.isfinite(e.train_loss) and math.isfinite(e.test_loss) for e in epochs)
    assert epochs[0].train_loss == pytest.approx(1.5650, abs=1e-4)
    assert epochs[-1].train_loss == pytest.approx(0.0312, abs=1e-4)
    assert 0.9 < epochs[-1].test_accuracy <= 1
    assert loss_fell(epochs)


def test_progress_cut_anywhere_gives_the_epochs_written_so_far():
    text = read("mlp-cpu", "progress.jsonl")
    whole = parse_progress(text)
    ends = [i + 1 for i, c in enumerate(text) if c == "\n"]
    for cut in range(len(text) + 1):
        complete = sum(end <= cut for end in ends)
        # The last line may be whole but not yet ended by its newline: JSON can still parse it.
        assert parse_progress(text[:cut]) in (whole[:complete], whole[: complete + 1])


def test_progress_skips_lines_that_are_not_epochs_and_reads_null_as_nan():
    good = '{"epoch": 1, "train_loss": 2.0, "test_loss": 1.9, "test_accuracy": 0.5, "seconds": 1}'
    lines = [
        good,
        "",
        "garbage",
        "[1, 2]",
        '{"epoch": true, "train_loss": 1, "test_loss": 1, "test_accuracy": 1, "seconds": 1}',
        '{"epoch": 2, "train_loss": "1", "test_loss": 1, "test_accuracy": 1, "seconds": 1}',
        '{"epoch": 2, "train_loss": 1.0}',
        good,  # epoch 1 again: not a new epoch
        '{"epoch": 2, "train_loss": null, "test_loss": null, "test_accuracy": 0.1, "seconds": 1}',
    ]
    epochs = parse_progress("\n".join(lines))
    assert [e.epoch for e in epochs] == [1, 2]
    assert math.isnan(epochs[1].train_loss) and epochs[1].test_accuracy == 0.1
    assert not loss_fell(epochs)


def test_the_result_of_a_real_run_agrees_with_its_progress():
    result = parse_result(read("mlp-cpu", "result.json"))
    epochs = parse_progress(read("mlp-cpu", "progress.jsonl"))
    assert result is not None
    assert (result.device, result.epochs, result.epochs_requested) == ("cpu", 20, 20)
    assert result.final_train_loss == epochs[-1].train_loss
    assert result.first_train_loss == epochs[0].train_loss
    assert result.test_accuracy == epochs[-1].test_accuracy
    assert result.seconds > 0 and result.stopped == ""


def test_a_partial_or_foreign_result_is_not_a_result():
    text = read("mlp-cpu", "result.json")
    assert all(parse_result(text[:cut]) is None for cut in range(len(text.rstrip())))
    data = json.loads(text)
    for key in ("device", "epochs", "final_train_loss", "test_accuracy"):
        assert parse_result(json.dumps({k: v for k, v in data.items() if k != key})) is None
    assert parse_result(json.dumps({**data, "epochs": True})) is None
    assert parse_result(json.dumps({**data, "device": ""})) is None
    assert parse_result("[]") is None


def test_the_summary_of_a_cpu_run_says_where_and_how_well_it_trained():
    epochs = parse_progress(read("mlp-cpu", "progress.jsonl"))
    lines = summary(parse_result(read("mlp-cpu", "result.json")), epochs)
    assert lines[0] == (
        "Device: cpu (No GPU is visible to this job, CUDA_VISIBLE_DEVICES is not set;"
        " trained on the CPU)"
    )
    assert lines[1] == "Processor: AMD EPYC, 2 threads"
    assert "Final loss: 0.0312 (from 1.5650 at epoch 1)" in lines
    assert "Test loss: 0.0959" in lines
    assert "Test accuracy: 97.3 %" in lines
    assert "Epochs: 20" in lines
    assert any(line.startswith("Training time: ") for line in lines)
    assert not any("did not fall" in line for line in lines)


def test_the_summary_of_a_gpu_job_on_a_cpu_only_torch_says_so():
    epochs = parse_progress(read("cnn-lr1", "progress.jsonl"))
    lines = summary(parse_result(read("cnn-lr1", "result.json")), epochs)
    assert lines[0].startswith("Device: cpu (This job was given GPU 0, but its PyTorch is a CPU")
    assert "Epochs: 5" in lines and "Test accuracy: 10.2 %" in lines
    assert "job 102" in read("cnn-lr1", "job.out")


def test_the_summary_of_a_gpu_run_names_the_gpu_and_of_a_diverged_run_says_why():
    result = parse_result(read("mlp-cpu", "result.json"))
    on_gpu = result.__class__(
        **{**vars(result), "device": "cuda", "note": "", "device_name": "H100"}
    )
    assert summary(on_gpu, [])[0] == "Device: cuda (H100)"
    epochs = [Epoch(1, 2.3, 2.2, 0.1, 1.0), Epoch(2, NAN, NAN, 0.1, 1.0)]
    diverged = result.__class__(
        **{
            **vars(result),
            "epochs": 2,
            "final_train_loss": NAN,
            "stopped": "stopped: the loss became nan at epoch 2",
        }
    )
    lines = summary(diverged, epochs)
    assert "Epochs: 2 of 20 (stopped: the loss became nan at epoch 2)" in lines
    assert "Final loss: not a number (training diverged) (from 1.5650 at epoch 1)" in lines
    assert lines[-1].startswith("The loss did not fall")


def test_loss_fell_compares_the_first_and_last_epochs():
    def run(*losses):
        return [Epoch(i + 1, loss, loss, 0.5, 1.0) for i, loss in enumerate(losses)]

    assert loss_fell(run(2.0, 3.0, 1.0))
    assert not loss_fell(run(2.0))
    assert not loss_fell(run(2.0, 2.0))
    assert not loss_fell(run(1.0, 0.5, 1.5))
    assert not loss_fell(run(NAN, 1.0))
    assert not loss_fell(run(2.0, float("-inf")))


def test_curves_and_the_running_line_come_from_the_epochs():
    epochs = parse_progress(read("mlp-cpu", "progress.jsonl"))[:3]
    x, train_loss, test_loss, accuracy = curves(epochs)
    assert x == [1, 2, 3]
    assert train_loss == [e.train_loss for e in epochs]
    assert test_loss == [e.test_loss for e in epochs]
    assert accuracy == pytest.approx([82.2222, 90.8889, 94.0], abs=1e-3)
    assert progress_line(epochs, 20) == "Epoch 3 of 20: loss 0.2526, test accuracy 94.0 %"
    assert progress_line([], 20) == "Waiting for the first epoch."
