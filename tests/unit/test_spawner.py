"""Every spawner of a hub shares one status board, although traitlets copies their config."""

import copy

from spawners.spawner import CorehourSpawner


def test_spawners_with_copies_of_the_site_share_one_board(site):
    data = site.model_dump(mode="json")
    first = CorehourSpawner(site=copy.deepcopy(data))
    second = CorehourSpawner(site=copy.deepcopy(data))
    assert first.site is not second.site
    assert first.board is second.board
    assert first.site_model is second.site_model


def test_a_different_site_gets_its_own_board(site):
    data = site.model_dump(mode="json")
    other = copy.deepcopy(data)
    other["hub"]["poll_interval"] = 7
    assert CorehourSpawner(site=data).board is not CorehourSpawner(site=other).board
