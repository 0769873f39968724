"""Config values every spawner shares: the site and the catalogue, one copy per hub."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from centre.shared_config import SharedDict, shared
from spawners.spawner import CorehourSpawner

from .test_hub_root import applied

pytestmark = pytest.mark.unit

SITE = {"clusters": {"alpha": {"partitions": ["cpu", "gpu"], "ssh": None}}, "hub": {"port": 8000}}


def test_spawners_configured_by_the_hub_share_one_site_and_one_catalogue(site):
    c = applied(site)
    first, second = CorehourSpawner(config=c), CorehourSpawner(config=c)
    # traitlets deep-copies plain config values into each spawner it makes.
    assert first.site is second.site
    assert first.apps is second.apps
    assert first._site_key == second._site_key == first.site.fingerprint
    assert first.site_model is second.site_model


def test_a_shared_value_copies_as_itself_and_keeps_its_content():
    value = shared(SITE)
    assert copy.deepcopy(value) is value and copy.copy(value) is value
    assert value == SITE and json.loads(value.fingerprint) == SITE
    assert isinstance(value["clusters"]["alpha"], SharedDict)
    assert pickle.loads(pickle.dumps(value)) == SITE


@pytest.mark.parametrize(
    "change",
    [
        lambda v: v.__setitem__("hub", {}),
        lambda v: v["clusters"]["alpha"].__setitem__("ssh", "evil.example.org"),
        lambda v: v["clusters"].pop("alpha"),
        lambda v: v.update(hub={"port": 1}),
        lambda v: v.setdefault("billing", {}),
        lambda v: v["clusters"].clear(),
        lambda v: v.__delitem__("hub"),
        lambda v: v.popitem(),
    ],
)
def test_no_spawner_can_change_the_value_the_others_read(change):
    value = shared(SITE)
    with pytest.raises(TypeError, match="shared by every spawner"):
        change(value)
    assert value == SITE


def test_fingerprints_follow_content_not_identity():
    assert shared(SITE).fingerprint == shared(copy.deepcopy(SITE)).fingerprint
    other = copy.deepcopy(SITE)
    other["hub"]["port"] = 8001
    assert shared(other).fingerprint != shared(SITE).fingerprint
