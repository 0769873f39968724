"""What every app shares.  ``APPS_ROOT``: the folder that holds ``voila_apps`` and ``centre``,
as `deploy/envs.sh apps` installed it; jobs and kernels put it on their PYTHONPATH."""

from pathlib import Path

APPS_ROOT = Path(__file__).resolve().parents[2]
