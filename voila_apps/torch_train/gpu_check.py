"""Check the training on a real GPU: ``python -m voila_apps.torch_train.gpu_check``.

Runs ``train`` once on CUDA when torch can see a GPU (the CPU otherwise, or exit 3 with
``--require-cuda``), prints the device, each epoch and the time, and exits 1 if the loss is
not finite or did not fall.  Needs torch and scikit-learn only, not the portal's packages.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import torch

from voila_apps.torch_train.params import MODELS, Params
from voila_apps.torch_train.train import train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--model", choices=list(MODELS), default="mlp")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--require-cuda", action="store_true", help="exit 3 without a GPU")
    args = parser.parse_args(argv)

    cuda = torch.cuda.is_available()
    if cuda:
        device, name = "cuda", torch.cuda.get_device_name(0)
    elif args.require_cuda:
        print(f"FAIL: torch {torch.__version__} sees no GPU (CUDA build: {torch.version.cuda})")
        return 3
    else:
        device, name = "cpu", f"CPU, {torch.get_num_threads()} threads (no GPU visible)"
    print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}")
    print(f"device: {device} ({name})")

    params = Params(model=args.model, epochs=args.epochs, batch_size=args.batch_size)
    losses: list[float] = []

    def on_epoch(numbers: dict) -> None:
        losses.append(numbers["train_loss"])
        print(
            f"epoch {numbers['epoch']:>3}  train loss {numbers['train_loss']:.4f}  "
            f"test loss {numbers['test_loss']:.4f}  "
            f"accuracy {100 * numbers['test_accuracy']:.1f} %  {numbers['seconds']:.3f} s"
        )

    began = time.perf_counter()
    summary, model = train(params, device, on_epoch)
    wall = time.perf_counter() - began
    on_device = {p.device.type for p in model.parameters()}
    print(
        f"test accuracy {100 * summary['test_accuracy']:.1f} %, "
        f"training {summary['seconds']:.2f} s, with data loading {wall:.2f} s, "
        f"weights on {', '.join(sorted(on_device))}"
    )
    if not all(math.isfinite(loss) for loss in losses):
        print(f"FAIL: a loss is not finite: {losses}")
        return 1
    if len(losses) < 2 or losses[-1] >= losses[0]:
        print(f"FAIL: the loss did not fall: {losses}")
        return 1
    if on_device != {device}:
        print(f"FAIL: the weights are on {on_device}, not {device}")
        return 1
    print(f"OK: the loss fell from {losses[0]:.4f} to {losses[-1]:.4f} on {device}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
