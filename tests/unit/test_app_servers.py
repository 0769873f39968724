"""What an app server gets by its kind, where it lands in the person's home, where it opens."""

import pytest

from spawners.apps import app_files

pytestmark = pytest.mark.unit

APPS = {
    "job-composer": {"notebook": "job_composer/app.ipynb"},
    "evil": {"notebook": "../x.ipynb"},
    "course-lab": {"kind": "lab", "folder": "course_lab"},
    "evil-lab": {"kind": "lab", "folder": "../../etc"},
    "desktop": {"kind": "proxy", "proxy_path": "desktop"},
    "evil-proxy": {"kind": "proxy", "proxy_path": "../hub/admin"},
    "no-kind": {"kind": "shell", "notebook": "x/app.ipynb"},
}
ROOT = "/opt/corehour/apps/voila_apps"


def test_an_app_server_gets_its_notebook_in_the_home_folder():
    files = app_files("app-job-composer", APPS, "/opt/corehour/apps/voila_apps", "/home/alice")
    assert files.source == "/opt/corehour/apps/voila_apps/job_composer/app.ipynb"
    assert files.notebook == "/home/alice/corehour-apps/job-composer/app.ipynb"
    assert files.page == "voila/render/corehour-apps/job-composer/app.ipynb"
    assert files.place_argvs() == [
        ["mkdir", "-p", "/home/alice/corehour-apps/job-composer"],
        ["cp", f"{ROOT}/job_composer/app.ipynb", files.notebook],
    ]


@pytest.mark.parametrize(
    "name",
    ["", "gpu", "app-unknown", "app-evil", "app-", "app-../etc", "app-evil-lab", "app-evil-proxy", "app-no-kind"],
)  # fmt: skip
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


def test_a_lab_app_copies_only_new_files_and_opens_its_folder_in_jupyterlab():
    files = app_files("app-course-lab", APPS, ROOT, "/home/alice")
    assert files.place_argvs() == [
        ["mkdir", "-p", "/home/alice/corehour-apps/course-lab"],
        ["cp", "-rn", f"{ROOT}/course_lab/.", "/home/alice/corehour-apps/course-lab"],
    ]
    assert files.server_args("/user/alice/app-course-lab/", preheat=True) == [
        "--ServerApp.default_url=/lab/tree/corehour-apps/course-lab"
    ]
    assert not files.needs_app_code


def test_a_proxy_app_places_nothing_and_opens_its_web_process():
    files = app_files("app-desktop", APPS, ROOT, "/home/alice")
    assert files.place_argvs() == []
    assert files.server_args("/user/alice/app-desktop/", preheat=True) == [
        "--ServerApp.default_url=/desktop/"
    ]


def test_a_voila_app_server_gets_the_light_page_and_the_preheated_kernel():
    files = app_files("app-job-composer", APPS, ROOT, "/home/alice")
    args = files.server_args("/user/alice/app-job-composer/", preheat=True)
    assert args == files.page_args("/user/alice/app-job-composer/") + files.preheat_args()
    assert files.server_args("/", preheat=False) == files.page_args("/")
    assert files.needs_app_code
