"""Training a small network on scikit-learn's digits: no files, no environment, no printing.

``train(params, device, on_epoch)`` is everything the job does between reading its inputs and
writing its outputs, so it can be called directly on a GPU machine (``gpu_check``) and from
tests.  The seed fixes the split, the initial weights and the batch order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from voila_apps.torch_train.params import Params

TEST_FRACTION = 0.25
CLASSES = 10
PIXEL_MAX = 16.0  # digits' pixels are whole numbers 0..16


def build_model(params: Params) -> nn.Module:
    h = params.hidden_units
    if params.model == "cnn":
        return nn.Sequential(
            nn.Unflatten(1, (1, 8, 8)),
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, h),
            nn.ReLU(),
            nn.Linear(h, CLASSES),
        )
    return nn.Sequential(nn.Linear(64, h), nn.ReLU(), nn.Linear(h, CLASSES))


def digits_split(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train and test tensors (CPU), stratified so both hold every digit in proportion."""
    images, labels = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        images / PIXEL_MAX, labels, test_size=TEST_FRACTION, stratify=labels, random_state=seed
    )
    return (
        torch.tensor(x_train, dtype=torch.float32),
        torch.tensor(x_test, dtype=torch.float32),
        torch.tensor(y_train, dtype=torch.long),
        torch.tensor(y_test, dtype=torch.long),
    )


def train(
    params: Params,
    device: str | torch.device,
    on_epoch: Callable[[dict], None] | None = None,
) -> tuple[dict, nn.Module]:
    """Train; call ``on_epoch`` with each epoch's numbers; return the summary and the model.

    Stops early if the training loss stops being a finite number: later epochs could only
    repeat NaN.  Losses are means over samples, so they compare across batch sizes.
    """
    device = torch.device(device)
    torch.manual_seed(params.seed)
    # The whole data set is ~0.5 MB: it lives on the device, and batches are index slices.
    x_train, x_test, y_train, y_test = (t.to(device) for t in digits_split(params.seed))
    model = build_model(params).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=params.learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    order = torch.Generator().manual_seed(params.seed)
    epochs: list[dict] = []
    stopped = ""
    start = time.perf_counter()
    for epoch in range(1, params.epochs + 1):
        began = time.perf_counter()
        model.train()
        total = torch.zeros((), device=device)
        shuffled = torch.randperm(len(x_train), generator=order).to(device)
        for batch in shuffled.split(params.batch_size):
            optimiser.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimiser.step()
            total += loss.detach() * len(batch)
        model.eval()
        with torch.no_grad():
            logits = model(x_test)
            test_loss = loss_fn(logits, y_test).item()
            accuracy = (logits.argmax(1) == y_test).float().mean().item()
        train_loss = (total / len(x_train)).item()  # .item() waits for the device
        numbers = {
            "epoch": epoch,
            "train_loss": train_loss,
            "test_loss": test_loss,
            "test_accuracy": accuracy,
            "seconds": time.perf_counter() - began,
        }
        epochs.append(numbers)
        if on_epoch is not None:
            on_epoch(numbers)
        if not math.isfinite(train_loss):
            stopped = f"stopped: the loss became {train_loss} at epoch {epoch}"
            break
    last = epochs[-1]
    summary = {
        "device": device.type,
        "epochs": len(epochs),
        "epochs_requested": params.epochs,
        "first_train_loss": epochs[0]["train_loss"],
        "final_train_loss": last["train_loss"],
        "final_test_loss": last["test_loss"],
        "test_accuracy": last["test_accuracy"],
        "seconds": time.perf_counter() - start,
        "train_samples": len(x_train),
        "test_samples": len(x_test),
        "stopped": stopped,
    }
    return summary, model
