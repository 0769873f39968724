"""Which notebook an app server gets, and where it lands in the person's home."""

import pytest

from spawners.apps import app_files

pytestmark = pytest.mark.unit

APPS = {"job-composer": {"notebook": "job_composer/app.ipynb"}, "evil": {"notebook": "../x.ipynb"}}


def test_an_app_server_gets_its_notebook_in_the_home_folder():
    files = app_files("app-job-composer", APPS, "/opt/corehour/apps/voila_apps", "/home/alice")
    assert files.source == "/opt/corehour/apps/voila_apps/job_composer/app.ipynb"
    assert files.notebook == "/home/alice/corehour-apps/job-composer/app.ipynb"
    assert files.render_path == "voila/render/corehour-apps/job-composer/app.ipynb"


@pytest.mark.parametrize("name", ["", "gpu", "app-unknown", "app-evil", "app-", "app-../etc"])
def test_other_servers_get_nothing(name):
    assert app_files(name, APPS, "/opt/corehour/apps/voila_apps", "/home/alice") is None


def test_an_app_server_starts_with_a_preheated_kernel_for_its_folder():
    files = app_files("app-job-composer", APPS, "/opt/corehour/apps/voila_apps", "/home/alice")
    assert files.preheat_args() == [
        "--ServerApp.kernel_manager_class=voila_apps.kit.preheat.PreheatedKernelManager",
        "--PreheatedKernelManager.preheat_path=corehour-apps/job-composer",
        "--PreheatedKernelManager.preheat_module=voila_apps.job_composer.ui",
    ]


def test_an_app_page_is_cached_by_the_browser_and_loads_no_lab_extensions():
    files = app_files("app-job-composer", APPS, "/opt/corehour/apps/voila_apps", "/home/alice")
    assert files.page_args("/user/alice/app-job-composer/") == [
        "--ServerApp.static_immutable_cache=/user/alice/app-job-composer/voila/labextensions/",
        "--VoilaConfiguration.extension_denylist=@jupyter-server/resource-usage",
        "--VoilaConfiguration.extension_denylist=@voila-dashboards/jupyterlab-preview",
    ]
