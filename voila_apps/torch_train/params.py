"""What one training run needs; shared by the portal's checks and the job, so stdlib only.

The job and ``gpu_check`` import this rather than ``core`` so that training needs nothing
but torch and scikit-learn: they run on a GPU machine without the portal's packages.
"""

from __future__ import annotations

from dataclasses import dataclass

MODELS = {"mlp": "MLP (one hidden layer)", "cnn": "Small CNN (8×8 images)"}


@dataclass(frozen=True)
class Params:
    model: str = "mlp"
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 0.01
    hidden_units: int = 64
    seed: int = 0
