"""Write one benchmark result as bench/results/<name>.json in the shared shape."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def write_result(name: str, metric: str, unit: str, ours: float, baseline: float, **extra) -> dict:
    """``ratio`` is ours / baseline, so below 1 means corehour is faster (or smaller)."""
    result = {
        "metric": metric,
        "unit": unit,
        "ours": round(ours, 3),
        "baseline": round(baseline, 3),
        "ratio": round(ours / baseline, 3) if baseline else None,
        **extra,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{name}: {json.dumps(result)}")
    return result
