"""A bad site file stops the hub at start, with a message that names the bad key."""

import subprocess

import yaml

from tests.harness import HUB_BIN, REPO, portal_site


def test_hub_refuses_to_start_with_a_bad_site_file(tmp_path):
    site = portal_site(27500, tmp_path)
    site["profiles"]["gpu"]["gpus"]["max"] = 16  # alpha's gpu partition has 4 per node
    site["clusters"]["beta"]["slurm_cnf"] = "/etc/x"  # a typo
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    hub = subprocess.run(
        [str(HUB_BIN / "corehour-hub")],
        cwd=tmp_path,
        env={
            "PATH": f"{HUB_BIN}:/usr/bin:/bin",
            "COREHOUR_SITE": str(tmp_path / "site.yaml"),
            "COREHOUR_STATE_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert hub.returncode != 0
    assert "clusters.beta.slurm_cnf: unknown key" in hub.stderr
    assert not (tmp_path / "jupyterhub.sqlite").exists()


def test_hub_refuses_to_start_with_a_bad_app_catalogue(tmp_path):
    site = portal_site(27500, tmp_path)
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    catalogue = yaml.safe_load((REPO / "voila_apps" / "catalogue.yaml").read_text())
    catalogue["apps"][0]["resources"]["cores"] = 99
    (tmp_path / "catalogue.yaml").write_text(yaml.safe_dump(catalogue))
    (tmp_path / "job_composer").mkdir()
    (tmp_path / "job_composer" / "app.ipynb").write_text("{}")
    hub = subprocess.run(
        [str(HUB_BIN / "corehour-hub")],
        cwd=tmp_path,
        env={
            "PATH": f"{HUB_BIN}:/usr/bin:/bin",
            "COREHOUR_SITE": str(tmp_path / "site.yaml"),
            "COREHOUR_STATE_DIR": str(tmp_path),
            "COREHOUR_APPS": str(tmp_path / "catalogue.yaml"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert hub.returncode != 0
    assert (
        "apps.job-composer.resources.cores: profile 'CPU notebook' allows 1 to 8 cores"
        in hub.stderr
    )
    assert not (tmp_path / "jupyterhub.sqlite").exists()
