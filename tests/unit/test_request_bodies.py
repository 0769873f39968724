"""The billing service's body limits: sizes people can read, JSON measured before parsing."""

import json
import random

import pytest

from billing_hooks.service.bodies import (
    MAX_CONTAINERS,
    MAX_DEPTH,
    BodyError,
    brackets,
    check_size,
    declared_length,
    json_object,
    nested_deeper,
    size_text,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("limit", "text"),
    [(65536, "64 KiB"), (131072, "128 KiB"), (1048576, "1 MiB"), (1000, "1000 bytes")],
)
def test_limits_read_as_people_write_them(limit, text):
    assert size_text(limit) == text


@pytest.mark.parametrize(
    ("header", "length"),
    [(None, None), ("12", 12), (" 12 ", 12), ("-1", None), ("1e3", None), ("١٢", None),
     ("9" * 19, None), ("", None)],
)  # fmt: skip
def test_only_a_plain_content_length_is_taken_at_its_word(header, length):
    assert declared_length(header) == length


def test_a_size_over_the_limit_is_a_413_naming_both():
    check_size(None, 10)
    check_size(10, 10)
    with pytest.raises(BodyError) as refused:
        check_size(70_000, 65536)
    assert refused.value.status == 413
    assert refused.value.message == (
        "the request body is 70,000 bytes; this address takes at most 64 KiB (65,536 bytes)"
    )


@pytest.mark.parametrize(
    ("raw", "skeleton"),
    [
        (b'{"a": [1, {"b": "[{"}]}', b"[[[]]]"),
        (b'{"a": "\\"]", "b": []}', b"[[]]"),
        (b'{"a": "\\\\", "b": ["\\\\\\"["]}', b"[[]]"),
        (b'["}", "\\u005b", {}]', b"[[]]"),
    ],
)
def test_brackets_inside_strings_are_not_counted(raw, skeleton):
    json.loads(raw)  # every case is JSON
    assert brackets(raw) == skeleton


def depth(value) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def random_json(rng: random.Random, levels: int):
    pick = rng.random()
    if levels == 0 or pick < 0.3:
        return rng.choice([0, "x", '"[{\\', "]}", None])
    items = [random_json(rng, levels - 1) for _ in range(rng.randint(0, 3))]
    return {f"k{i}]": v for i, v in enumerate(items)} if pick < 0.6 else items


def test_depth_is_counted_to_the_limit_and_no_further():
    assert not nested_deeper(b"[]" * 1000, 1)
    assert not nested_deeper(b"[" * 16 + b"]" * 16, 16)
    assert nested_deeper(b"[" * 17 + b"]" * 17, 16)
    assert nested_deeper(brackets(b'{"a":' + b"[" * 16 + b"]" * 16 + b"}"), 16)
    rng = random.Random(12)
    for _ in range(2000):
        value = random_json(rng, 8)
        skeleton = brackets(json.dumps(value).encode())
        for limit in range(9):
            assert nested_deeper(skeleton, limit) == (depth(value) > limit), value


def test_good_bodies_parse_as_before():
    assert json_object(b"") == {}
    assert json_object(b'{"people": [{"username": "ann", "role": "student"}]}') == {
        "people": [{"username": "ann", "role": "student"}]
    }
    nested = {"a": {"b": {"c": [[[[[[[[[[[[[1]]]]]]]]]]]]]}}}
    assert json_object(json.dumps(nested).encode()) == nested


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (b"x" * 70_000, 413, "the request body is 70,000 bytes"),
        (b"[" * 5000, 400, f"more than {MAX_CONTAINERS} objects and lists"),
        (b'{"a":' + b"[" * 16 + b"]" * 16 + b"}", 400, f"deeper than {MAX_DEPTH} levels"),
        (b'{"a":' + b"[" * 3000 + b"]" * 3000 + b"}", 400, f"deeper than {MAX_DEPTH} levels"),
        (b'{"a": [}', 400, "the body is not valid JSON: Expecting value"),
        (b'{"a": NaN}', 400, "the body is not valid JSON: NaN is not a number"),
        (b"[1]", 400, "the body must be a JSON object"),
    ],
)
def test_bad_bodies_are_refused_with_a_reason(raw, status, message):
    with pytest.raises(BodyError) as refused:
        json_object(raw)
    assert refused.value.status == status
    assert message in refused.value.message
