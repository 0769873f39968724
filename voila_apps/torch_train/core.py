"""GPU training with PyTorch, the pure part: checking inputs, the job's command, reading its files.

The job trains a small network on scikit-learn's digits (1,797 8×8 images, shipped inside the
package, so a compute node needs no network).  It writes one JSON line per epoch to
``progress.jsonl`` and, at the end, ``result.json``; the app reads both while the job runs, so
every reader here takes a half-written file without complaint.

No torch, numpy or widgets here: the hub's tests import this module.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from centre.options import SpawnRequest
from voila_apps.kit.jobs import InputError
from voila_apps.torch_train.params import MODELS, Params

DIGITS_SAMPLES = 1797
MAX_EPOCHS = 500
MAX_HIDDEN_UNITS = 1024
MAX_SEED = 2**31 - 1
PROGRESS = "progress.jsonl"
RESULT = "result.json"
PARAMS = "params.json"
MODEL = "model.pt"


# --- inputs --------------------------------------------------------------------------------
def check_inputs(raw: Mapping[str, object], request: SpawnRequest) -> Params:
    """The app's own inputs, each checked; ``request`` (already checked by the kit) may be
    a GPU or a CPU job: training runs on either, so nothing here depends on it."""
    del request
    return check_training(raw)


def check_training(raw: Mapping[str, object]) -> Params:
    """Every value is treated as hostile: wrong types, bools posing as numbers, NaN, junk."""
    defaults = Params()
    model = raw.get("model", defaults.model)
    if not isinstance(model, str) or model not in MODELS:
        raise InputError("model", f"choose one of {', '.join(MODELS)}; got {_shown(model)}")
    learning_rate = raw.get("learning_rate", defaults.learning_rate)
    if (
        isinstance(learning_rate, bool)
        or not isinstance(learning_rate, int | float)
        or not math.isfinite(learning_rate)
        or not 0 < learning_rate <= 1
    ):
        raise InputError(
            "learning_rate",
            f"a number greater than 0 and at most 1, such as 0.01; got {_shown(learning_rate)}",
        )
    return Params(
        model=model,
        epochs=_whole(raw, "epochs", defaults.epochs, 1, MAX_EPOCHS),
        batch_size=_whole(raw, "batch_size", defaults.batch_size, 1, DIGITS_SAMPLES),
        learning_rate=float(learning_rate),
        hidden_units=_whole(raw, "hidden_units", defaults.hidden_units, 1, MAX_HIDDEN_UNITS),
        seed=_whole(raw, "seed", defaults.seed, 0, MAX_SEED),
    )


def _whole(raw: Mapping[str, object], field: str, default: int, low: int, high: int) -> int:
    value = raw.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(field, f"a whole number from {low} to {high}; got {_shown(value)}")
    return value


def _shown(value: object) -> str:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return repr(value)[:40]
    return type(value).__name__


def params_json(params: Params) -> str:
    return json.dumps(asdict(params), indent=1) + "\n"


def params_from_json(text: str) -> Params:
    """``params.json`` lies in the person's home, so the job checks it again before use."""
    try:
        raw = json.loads(text)
    except ValueError:
        raise InputError(PARAMS, "is not JSON; submit the job again from the app") from None
    if not isinstance(raw, dict):
        raise InputError(PARAMS, "must hold a JSON object; submit the job again from the app")
    return check_training(raw)


# --- the job -------------------------------------------------------------------------------
def job_command(python: str, run_dir: str) -> str:
    """The batch script's body after the kit's PYTHONPATH line: the log's first lines say
    where the job ran and which GPUs Slurm gave it, then the training program replaces bash."""
    return (
        'export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"\n'
        'echo "torch-train: job ${SLURM_JOB_ID:-?} on $(hostname),'
        ' CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-<not set>}"\n'
        "command -v nvidia-smi >/dev/null && nvidia-smi -L\n"
        f"exec {shlex.quote(python)} -m voila_apps.torch_train.run {shlex.quote(run_dir)}\n"
    )


@dataclass(frozen=True)
class DeviceChoice:
    device: str  # "cuda" or "cpu"
    note: str = ""  # why not the GPU, for people; empty on a GPU


def choose_device(
    cuda_available: bool, cuda_build: str | None, visible_devices: str | None
) -> DeviceChoice:
    """CUDA when torch can use it; otherwise the CPU, with the reason in plain words."""
    if cuda_available:
        return DeviceChoice("cuda")
    if cuda_build is None and visible_devices not in (None, "", "-1", "NoDevFiles"):
        return DeviceChoice(
            "cpu",
            f"This job was given GPU {visible_devices}, but its PyTorch is a CPU-only build;"
            " trained on the CPU",
        )
    shown = " is not set" if visible_devices is None else f"={visible_devices or '(empty)'}"
    return DeviceChoice(
        "cpu", f"No GPU is visible to this job, CUDA_VISIBLE_DEVICES{shown}; trained on the CPU"
    )


# --- the job's files -----------------------------------------------------------------------
@dataclass(frozen=True)
class Epoch:
    epoch: int
    train_loss: float  # NaN where training diverged (written as null)
    test_loss: float
    test_accuracy: float  # a fraction, 0 to 1
    seconds: float


def parse_progress(text: str) -> list[Epoch]:
    """Epochs in order; a line that is not (yet) whole JSON with the right fields is skipped,
    which covers the half-written last line of a file the job is still appending to."""
    epochs: list[Epoch] = []
    for line in text.splitlines():
        epoch = _epoch(line)
        if epoch is not None and (not epochs or epoch.epoch > epochs[-1].epoch):
            epochs.append(epoch)
    return epochs


def _epoch(line: str) -> Epoch | None:
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    number = data.get("epoch")
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        return None
    values = [_float(data, k) for k in ("train_loss", "test_loss", "test_accuracy", "seconds")]
    if any(v is None for v in values):
        return None
    return Epoch(number, *values)


def _float(data: Mapping[str, object], key: str) -> float | None:
    """A number, or NaN for null (the job writes non-finite losses as null to keep JSON valid);
    None when the key is missing or holds something else."""
    if key not in data:
        return None
    value = data[key]
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(frozen=True)
class Result:
    device: str
    device_name: str
    note: str
    epochs: int
    epochs_requested: int
    first_train_loss: float
    final_train_loss: float
    final_test_loss: float
    test_accuracy: float
    seconds: float
    stopped: str = ""  # why training ended early, if it did


def parse_result(text: str) -> Result | None:
    """``result.json``, or None while it is missing, partial or not what the job writes."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    texts = [data.get(k, "") for k in ("device", "device_name", "note", "stopped")]
    counts = [data.get(k) for k in ("epochs", "epochs_requested")]
    numbers = [
        _float(data, k)
        for k in (
            "first_train_loss",
            "final_train_loss",
            "final_test_loss",
            "test_accuracy",
            "seconds",
        )
    ]
    if (
        not all(isinstance(t, str) for t in texts)
        or not texts[0]
        or not all(isinstance(c, int) and not isinstance(c, bool) for c in counts)
        or any(n is None for n in numbers)
    ):
        return None
    device, device_name, note, stopped = texts
    return Result(device, device_name, note, *counts, *numbers, stopped=stopped)


def loss_fell(epochs: Sequence[Epoch]) -> bool:
    """Whether the training loss is finite and lower at the last epoch than at the first."""
    if len(epochs) < 2:
        return False
    first, last = epochs[0].train_loss, epochs[-1].train_loss
    return math.isfinite(first) and math.isfinite(last) and last < first


def curves(epochs: Sequence[Epoch]) -> tuple[list[int], list[float], list[float], list[float]]:
    """Epoch numbers, train loss, test loss and test accuracy in percent, for the charts."""
    return (
        [e.epoch for e in epochs],
        [e.train_loss for e in epochs],
        [e.test_loss for e in epochs],
        [100 * e.test_accuracy for e in epochs],
    )


def progress_line(epochs: Sequence[Epoch], epochs_requested: int) -> str:
    if not epochs:
        return "Waiting for the first epoch."
    last = epochs[-1]
    return (
        f"Epoch {last.epoch} of {epochs_requested}: loss {_loss(last.train_loss)}, "
        f"test accuracy {100 * last.test_accuracy:.1f} %"
    )


def summary(result: Result, epochs: Sequence[Epoch]) -> list[str]:
    """The finished run in plain sentences, with the numbers a person (or a test) looks for."""
    first_epoch = epochs[0].epoch if epochs else 1
    lines = [
        f"Device: {result.device} ({result.note or result.device_name})",
        f"Final loss: {_loss(result.final_train_loss)} "
        f"(from {_loss(result.first_train_loss)} at epoch {first_epoch})",
        f"Test loss: {_loss(result.final_test_loss)}",
        f"Test accuracy: {100 * result.test_accuracy:.1f} %",
    ]
    if result.note:
        lines.insert(1, f"Processor: {result.device_name}")
    if result.epochs < result.epochs_requested:
        lines.append(
            f"Epochs: {result.epochs} of {result.epochs_requested} ({result.stopped or 'stopped'})"
        )
    else:
        lines.append(f"Epochs: {result.epochs}")
    per_epoch = result.seconds / result.epochs if result.epochs else 0
    lines.append(f"Training time: {result.seconds:.1f} s ({per_epoch:.3f} s per epoch)")
    if not loss_fell(epochs):
        lines.append("The loss did not fall: try a smaller learning rate or more epochs.")
    return lines


def _loss(value: float) -> str:
    return f"{value:.4f}" if math.isfinite(value) else "not a number (training diverged)"
