"""Site-file validation: a bad file names the bad key."""

import copy

import pytest
import yaml

from spawners.site_config import SiteConfigError, load_site, parse_site

from .conftest import EXAMPLE_SITE


@pytest.fixture
def raw():
    return yaml.safe_load(EXAMPLE_SITE.read_text())


def test_example_site_loads(site):
    assert list(site.clusters) == ["alpha", "beta"]
    assert site.clusters_for("cpu") == ("alpha", "beta")
    assert site.clusters_for("gpu") == ("alpha",)
    assert site.clusters_for("bigmem") == ("beta",)
    assert site.clusters["alpha"].partitions["gpu"].gpus_per_node == 4


def _mutate(raw, path, value):
    data = copy.deepcopy(raw)
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (["clusters", "alpha", "slurm_cnf"], "/x", "clusters.alpha.slurm_cnf: unknown key"),
        (["profiles", "cpu", "cores", "max"], "lots", "profiles.cpu.cores.max"),
        (["profiles", "cpu", "cores", "default"], 99, "profiles.cpu.cores"),
        (
            ["profiles", "cpu", "images"],
            ["base", "nope"],
            "profiles.cpu.images: unknown image 'nope'",
        ),
        (["profiles", "gpu", "clusters"], ["beta"], "cluster 'beta' has no partition 'gpu'"),
        (["profiles", "cpu", "gpus"], {"min": 0, "max": 1, "default": 0}, "profiles.cpu.gpus.max"),
        (["default_profile"], "huge", "default_profile: 'huge' is not a profile"),
        (["clusters", "Alpha!"], {"partitions": {"cpu": {}}}, "clusters.Alpha!"),
        (["images", "base", "prefix"], "relative/path", "images.base.prefix"),
        (["clusters", "alpha", "partitions"], {}, "clusters.alpha"),
        (["hub", "poll_interval"], -1, "hub.poll_interval"),
        (
            ["profiles", "cpu", "cores"],
            {"min": 0, "max": 4, "default": 1},
            "profiles.cpu.cores.min",
        ),
        (["profiles"], KeyError, "profiles: Field required"),
    ],
)
def test_bad_site_names_the_key(raw, path, value, named):
    with pytest.raises(SiteConfigError) as bad:
        parse_site(_mutate(raw, path, value), "site.yaml")
    assert named in str(bad.value)
    assert str(bad.value).startswith("The site file site.yaml is not valid")


def test_unreadable_and_non_yaml_files(tmp_path):
    with pytest.raises(SiteConfigError, match="Cannot read the site file"):
        load_site(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("clusters: [unclosed\n")
    with pytest.raises(SiteConfigError, match="not valid YAML"):
        load_site(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(SiteConfigError, match="YAML mapping"):
        load_site(listing)
