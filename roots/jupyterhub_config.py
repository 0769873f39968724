"""corehour's JupyterHub config: load the site file, gather what wiring needs, apply it, then
load the site's own ``jupyterhub_config.d/*.py``.

JupyterHub runs this file (``corehour-hub`` passes it with ``-f``), so it ships inside the
package and works the same from a checkout and from the wheel.
"""

import os
from pathlib import Path

from centre.site import DEFAULT_SITE, load_site_or_exit
from roots.hub import DEFAULT_STATE_DIR, apply_site, config_d
from roots.hub_facts import gather_apart
from roots.malloc import limit_malloc_arenas
from spawners import board_metrics
from spawners.spawner import status_boards

# Before the hub starts its thread pools (roots/malloc.py says why).
limit_malloc_arenas()
# Jobs by state per cluster on /hub/metrics, from the status board's own queries.
board_metrics.register(status_boards)

c = get_config()  # noqa: F821 (provided by JupyterHub)
site_path = os.environ.get("COREHOUR_SITE", DEFAULT_SITE)
site = load_site_or_exit(site_path)
facts = gather_apart(site_path)
apply_site(c, site, facts, os.environ.get("COREHOUR_STATE_DIR", DEFAULT_STATE_DIR), site_path)

# Site-specific Python that the YAML cannot say, loaded in name order with the same `c`.
for extra in sorted(Path(config_d(site_path)).glob("*.py")):
    load_subconfig(str(extra))  # noqa: F821 (provided by JupyterHub)
