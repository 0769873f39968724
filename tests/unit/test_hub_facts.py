"""The hub reads its outside facts in a child process and gets them back as JSON."""

from __future__ import annotations

import pytest

from roots.hub_facts import HubFacts, gather_apart

from .test_hub_root import PROVIDER

pytestmark = pytest.mark.unit


def test_facts_come_back_from_json_as_they_went():
    facts = HubFacts(
        apps={"composer": {"slug": "composer", "profile": "small"}},
        course_students={"phys101": ["chs01", "chs02"]},
        provider=PROVIDER,
        client_secret="s3cret",
    )
    assert HubFacts.from_json(facts.to_json()) == facts
    assert HubFacts.from_json(HubFacts().to_json()) == HubFacts()


def test_the_childs_message_and_status_stop_the_hub(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        gather_apart(tmp_path / "missing-site.yaml")
    assert stopped.value.code == 2
    assert "corehour:" in capsys.readouterr().err
