"""The batch job: ``python -m voila_apps.torch_train.run <run_dir>``.

Reads ``params.json``, trains on the GPU when torch can see one (the CPU otherwise, saying
why), appends one JSON line per epoch to ``progress.jsonl`` and flushes it so the app can
plot while the job runs, then saves ``model.pt`` and, last, ``result.json``: once that file
exists, everything else is complete.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from voila_apps.kit.jobs import InputError
from voila_apps.torch_train.core import (
    MODEL,
    PARAMS,
    PROGRESS,
    RESULT,
    choose_device,
    params_from_json,
)
from voila_apps.torch_train.train import train


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m voila_apps.torch_train.run RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    try:
        params = params_from_json((run_dir / PARAMS).read_text())
    except (OSError, InputError) as e:
        print(f"torch-train: cannot start: {e}", file=sys.stderr)
        return 2
    use_slurm_cores()
    choice = choose_device(
        torch.cuda.is_available(), torch.version.cuda, os.environ.get("CUDA_VISIBLE_DEVICES")
    )
    device_name = (
        torch.cuda.get_device_name(0)
        if choice.device == "cuda"
        else f"{cpu_model()}, {torch.get_num_threads()} threads"
    )
    print(f"torch {torch.__version__} on {choice.device}: {device_name}", flush=True)
    if choice.note:
        print(choice.note, flush=True)
    print(f"params: {json.dumps(asdict(params))}", flush=True)

    with (run_dir / PROGRESS).open("w") as progress:

        def on_epoch(numbers: dict) -> None:
            progress.write(json.dumps(finite_or_null(numbers)) + "\n")
            progress.flush()
            print(
                f"epoch {numbers['epoch']:>3}  train loss {numbers['train_loss']:.4f}  "
                f"test loss {numbers['test_loss']:.4f}  "
                f"accuracy {100 * numbers['test_accuracy']:.1f} %  {numbers['seconds']:.3f} s",
                flush=True,
            )

        summary, model = train(params, choice.device, on_epoch)

    state = {name: tensor.cpu() for name, tensor in model.state_dict().items()}
    torch.save({"params": asdict(params), "state_dict": state}, run_dir / MODEL)
    result = {
        **summary,
        "device_name": device_name,
        "note": choice.note,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "params": asdict(params),
    }
    partial = run_dir / (RESULT + ".part")
    partial.write_text(json.dumps(finite_or_null(result), indent=1) + "\n")
    partial.replace(run_dir / RESULT)
    print(
        f"done: {summary['epochs']} epochs in {summary['seconds']:.2f} s, "
        f"final loss {summary['final_train_loss']:.4f}, "
        f"test accuracy {100 * summary['test_accuracy']:.1f} %",
        flush=True,
    )
    return 0


def use_slurm_cores() -> None:
    """As many threads as Slurm gave cores: torch's default (every core of the node) would
    oversubscribe a shared node."""
    cores = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if cores.isdigit() and int(cores) > 0:
        torch.set_num_threads(int(cores))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU"


def finite_or_null(data: dict) -> dict:
    """NaN and infinity are not JSON; the readers take null as NaN."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in data.items()
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
