"""The site file's billing section: rates without gaps or overlaps, tiers, idle timeouts."""

import copy
from decimal import Decimal

import pytest
import yaml

from centre.pricing import RateBook
from centre.site import SiteConfigError, parse_site

from .conftest import EXAMPLE_SITE

pytestmark = pytest.mark.unit


@pytest.fixture
def raw():
    return yaml.safe_load(EXAMPLE_SITE.read_text())


def rate(cluster="alpha", partition="cpu", valid_from="2026-01-01", valid_until=None, core="0.05"):
    entry = {
        "cluster": cluster,
        "partition": partition,
        "valid_from": valid_from,
        "core_hour": core,
    }
    if valid_until:
        entry["valid_until"] = valid_until
    return entry


def with_rates(raw, *extra, drop=()):
    data = copy.deepcopy(raw)
    rates = [r for r in data["billing"]["rates"] if (r["cluster"], r["partition"]) not in drop]
    data["billing"]["rates"] = rates + list(extra)
    return data


def refusal(data) -> str:
    with pytest.raises(SiteConfigError) as caught:
        parse_site(data)
    return str(caught.value)


def test_the_example_prices_every_partition_exactly(raw):
    site = parse_site(raw)
    book = RateBook.from_site(site.billing)
    assert set(book.partitions()) == {
        ("alpha", "cpu"),
        ("alpha", "gpu"),
        ("beta", "cpu"),
        ("beta", "bigmem"),
    }
    price = book.price_at("alpha", "gpu", 1_800_000_000)
    assert price.gpu_hour == Decimal("1.20") and isinstance(price.core_hour, Decimal)


def test_a_price_change_that_follows_on_is_accepted(raw):
    data = with_rates(
        raw,
        rate(valid_until="2026-07-01"),
        rate(valid_from="2026-07-01", core="0.07"),
        drop={("alpha", "cpu")},
    )
    book = RateBook.from_site(parse_site(data).billing)
    assert book.price_at("alpha", "cpu", 1_790_000_000).core_hour == Decimal("0.07")  # 2026-09


def test_a_gap_between_rates_is_refused(raw):
    data = with_rates(
        raw, rate(valid_until="2026-06-01"), rate(valid_from="2026-07-01"), drop={("alpha", "cpu")}
    )
    assert "no rate from 2026-06-01 to 2026-07-01" in refusal(data)


def test_overlapping_rates_are_refused(raw):
    data = with_rates(raw, rate(valid_from="2026-03-01"), drop=())
    message = refusal(data)
    assert "alpha/cpu" in message and "overlaps" in message
    data = with_rates(
        raw, rate(valid_until="2026-08-01"), rate(valid_from="2026-07-01"), drop={("alpha", "cpu")}
    )
    assert "overlaps" in refusal(data)


def test_every_partition_needs_a_rate_and_the_latest_is_open_ended(raw):
    assert "no rate for beta/bigmem" in refusal(with_rates(raw, drop={("beta", "bigmem")}))
    ended = with_rates(raw, rate(valid_until="2027-01-01"), drop={("alpha", "cpu")})
    assert "leave its valid_until empty" in refusal(ended)


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        (rate(cluster="gamma"), "billing.rates.4.cluster: unknown cluster 'gamma'"),
        (rate(partition="gpu", cluster="beta"), "cluster 'beta' has no partition 'gpu'"),
        (rate(core="-1"), "billing.rates.4.core_hour"),
        (rate(core="NaN"), "billing.rates.4.core_hour"),
        (rate(core="0.0000001"), "billing.rates.4.core_hour"),
        (rate(valid_from="2026-05-01", valid_until="2026-04-01"), "must be after valid_from"),
    ],
)
def test_bad_rate_entries_name_the_key(raw, entry, named):
    assert named in refusal(with_rates(raw, entry))


def test_tiers_and_idle_timeouts_must_name_real_things(raw):
    data = copy.deepcopy(raw)
    data["billing"]["default_tier"] = "gold"
    assert "default_tier: 'gold' is not in tiers" in refusal(data)
    data = copy.deepcopy(raw)
    data["billing"]["idle_timeout_minutes"] = {"gpux": 5}
    assert "idle_timeout_minutes.gpux: no profile 'gpux'" in refusal(data)
    data = copy.deepcopy(raw)
    data["billing"]["warn_at_percent"] = [120]
    assert "warn_at_percent" in refusal(data)
