"""corehour's JupyterHub config: load the site file, gather what wiring needs, apply it, then
load jupyterhub_config.d/."""

import os
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))

from centre.site import DEFAULT_SITE, load_site_or_exit  # noqa: E402
from roots.hub import DEFAULT_STATE_DIR, apply_site, gather  # noqa: E402

c = get_config()  # noqa: F821 (provided by JupyterHub)
site_path = os.environ.get("COREHOUR_SITE", DEFAULT_SITE)
site = load_site_or_exit(site_path)
facts = gather(site)
apply_site(c, site, facts, os.environ.get("COREHOUR_STATE_DIR", DEFAULT_STATE_DIR), site_path)

for extra in sorted((here / "jupyterhub_config.d").glob("*.py")):
    load_subconfig(str(extra))  # noqa: F821 (provided by JupyterHub)
