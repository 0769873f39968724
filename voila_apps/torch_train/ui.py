"""GPU training with PyTorch: the widgets around core.py, run by Voila in the person's server."""

from __future__ import annotations

import html
from pathlib import Path

import ipywidgets as w

from voila_apps.kit.jobs import JobState
from voila_apps.kit.plots import LineChart
from voila_apps.kit.prebuilt import take
from voila_apps.kit.shell import WIDE, BatchApp, Defaults, read_run_file
from voila_apps.torch_train.core import (
    DIGITS_SAMPLES,
    MAX_EPOCHS,
    MAX_HIDDEN_UNITS,
    MODEL,
    PARAMS,
    PROGRESS,
    RESULT,
    check_inputs,
    curves,
    job_command,
    params_json,
    parse_progress,
    parse_result,
    progress_line,
    summary,
)
from voila_apps.torch_train.params import MODELS, Params

LOG_TAIL_LINES = 15


class TorchTrain(BatchApp):
    slug = "torch-train"
    title = "GPU training with PyTorch"
    intro = (
        "Train a small neural network to read handwritten digits (scikit-learn's 1,797 "
        "8×8 images; a quarter is held back to test it). Watch the loss fall epoch by epoch, "
        "then download the trained model. On the <i>GPU</i> profile it runs on a GPU; "
        "on <i>CPU</i> it runs on the cores you ask for."
    )
    image = "gpu"
    profiles = ("gpu", "cpu")
    defaults = Defaults("gpu", cores=2, memory_gb=8, gpus=1, walltime_hours=0.5)
    downloads = ("job.out", PROGRESS, RESULT, MODEL)

    def __init__(self, site=None):
        start = Params()
        self.model = w.Dropdown(
            options=[(label, key) for key, label in MODELS.items()],
            value=start.model,
            description="Network",
            style=WIDE,
        )
        # Plain number boxes: core.check_inputs refuses bad values with a message, where
        # bounded boxes would silently clamp them.
        self.epochs = w.IntText(
            value=start.epochs, description="Epochs", style=WIDE,
            tooltip=f"1 to {MAX_EPOCHS} passes over the training images",
        )  # fmt: skip
        self.batch_size = w.IntText(
            value=start.batch_size, description="Batch size", style=WIDE,
            tooltip=f"1 to {DIGITS_SAMPLES} images per step",
        )  # fmt: skip
        self.learning_rate = w.FloatText(
            value=start.learning_rate, step=0.001, description="Learning rate", style=WIDE,
            tooltip="Adam's step size, above 0 and at most 1",
        )  # fmt: skip
        self.hidden_units = w.IntText(
            value=start.hidden_units, description="Hidden units", style=WIDE,
            tooltip=f"1 to {MAX_HIDDEN_UNITS} units in the hidden layer",
        )  # fmt: skip
        # Units go in the titles: a y-axis label would overlap the tick labels.
        self.loss_chart = LineChart(
            "Loss (cross-entropy)", "epoch", ["train", "test"], whole_x=True
        )
        self.accuracy_chart = LineChart("Test accuracy (%)", "epoch", ["accuracy"], whole_x=True)
        self.progress = w.HTML()
        self.progress.add_class("ch-progress")
        self.result = w.HTML()
        self.result.add_class("ch-result")
        self.epochs_requested = start.epochs
        super().__init__(site)

    def inputs(self) -> list[w.Widget]:
        return [
            w.HTML("<h4>Training</h4>"),
            w.HBox(
                [
                    w.VBox([self.model, self.epochs, self.batch_size]),
                    w.VBox([self.learning_rate, self.hidden_units]),
                ],
                layout=w.Layout(flex_flow="row wrap"),
            ),
        ]

    def check(self, request) -> Params:
        raw = {
            "model": self.model.value,
            "epochs": self.epochs.value,
            "batch_size": self.batch_size.value,
            "learning_rate": self.learning_rate.value,
            "hidden_units": self.hidden_units.value,
        }
        return check_inputs(raw, request)

    def prepare(self, params: Params, request, run_dir: Path) -> str:
        (run_dir / PARAMS).write_text(params_json(params))
        self.epochs_requested = params.epochs
        self.loss_chart.update([], [[], []])
        self.accuracy_chart.update([], [[]])
        self.progress.value = ""
        self.result.value = ""
        return self.job_env() + job_command(self.python(), str(run_dir))

    def show(self, run_dir: Path, state: JobState) -> None:
        epochs = parse_progress(read_run_file(run_dir / PROGRESS))
        if epochs:
            x, train_loss, test_loss, accuracy = curves(epochs)
            self.loss_chart.update(x, [train_loss, test_loss])
            self.accuracy_chart.update(x, [accuracy])
        result = parse_result(read_run_file(run_dir / RESULT))
        if result is not None:
            self.progress.value = ""
            lines = summary(result, epochs)
            self.result.value = "<br>".join(html.escape(line) for line in lines)
        elif state.ended:
            log = "\n".join(read_run_file(run_dir / "job.out").splitlines()[-LOG_TAIL_LINES:])
            self.result.value = (
                f"<b>The job ended ({html.escape(state.describe())}) without a result.</b> "
                f"The end of its log:<pre>{html.escape(log)}</pre>"
            )
        elif state.state == "RUNNING":
            self.progress.value = html.escape(progress_line(epochs, self.epochs_requested))

    def results(self) -> list[w.Widget]:
        for chart in (self.loss_chart, self.accuracy_chart):
            chart.figure.layout.width = "auto"
            chart.figure.layout.flex = "1 1 320px"  # side by side when there is room
        charts = w.HBox(
            [self.loss_chart.figure, self.accuracy_chart.figure],
            layout=w.Layout(flex_flow="row wrap"),
        )
        return [self.progress, charts, self.result]


def build() -> w.Widget:
    return TorchTrain().widget()


def main() -> w.Widget:
    return take(__name__, build)
