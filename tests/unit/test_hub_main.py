"""``corehour-hub``: JupyterHub that imports only the classes it runs."""

import subprocess
import sys

from roots.hub_main import CONFIG, names_a_config

from .conftest import EXAMPLE_SITE

# A fresh interpreter, so that modules other tests imported do not count.
LOADED_AFTER_START = """
import sys
from roots.hub_main import CorehourHub
app = CorehourHub()
app.classes
print(app.log.name)
print(" ".join(sorted(m for m in sys.modules if m.startswith(("oauthenticator", "requests")))))
"""


def test_the_hub_imports_no_installed_authenticator_it_was_not_configured_with():
    done = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER_START], capture_output=True, text=True, check=True
    )
    logger, loaded = done.stdout.splitlines()
    # Stock JupyterHub imports every entry point here: oauthenticator's GitHub, CILogon,
    # Bitbucket... with requests; about 9 MB kept for the life of the hub.
    assert loaded == ""
    # Log searches and dashboards keep finding the hub's lines under JupyterHub's name.
    assert logger == "JupyterHub"


def test_corehour_config_is_the_default_and_an_explicit_one_replaces_it():
    assert CONFIG.name == "jupyterhub_config.py" and CONFIG.exists()
    assert not names_a_config(["--debug"])
    assert names_a_config(["-f", "/srv/test/jupyterhub_config.py"])
    assert names_a_config(["--config=/srv/test/jupyterhub_config.py"])
    assert names_a_config(["--JupyterHub.config_file=/srv/x.py"])


# The hub's whole config, applied to a billed site, in a fresh interpreter.
LEDGER_LOADED_BY_CONFIG = """
import sys
from traitlets.config import Config
from centre.site import load_site
from roots.hub import apply_site
from roots.hub_facts import HubFacts
apply_site(Config(), load_site(sys.argv[1]), HubFacts(apps={}), sys.argv[2], sys.argv[1])
ledger = ("billing_hooks.models", "billing_hooks.ledger", "billing_hooks.service",
          "extensions.courses.store", "extensions.courses.settings")
print(" ".join(sorted(m for m in sys.modules if m in ledger or m.startswith(ledger[2]))))
"""


def test_the_hub_keeps_no_ledger_code_it_asks_the_billing_service(tmp_path):
    # The ledger's mapped classes, engines and statement caches cost the hub 2 MB; the
    # billing service, which owns the ledger, answers the hub's reads instead.
    site = tmp_path / "site.yaml"
    site.write_text(EXAMPLE_SITE.read_text())
    done = subprocess.run(
        [sys.executable, "-c", LEDGER_LOADED_BY_CONFIG, str(site), str(tmp_path / "state")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == ""
