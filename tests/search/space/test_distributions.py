"""search/space/distributions.py directly: parsing a searched key, conditions (`when:`), and the
frozen form a SearchConfig keeps (freeze/thaw round trip)."""

from __future__ import annotations

import pytest

from spatialsearch.errors import ConfigError
from spatialsearch.search.space import distributions as d
from spatialsearch.search.space.distributions import Distribution, parse_distribution


def test_each_kind_parses_to_its_bounds_or_options():
    assert parse_distribution("lr", {"loguniform": [0.001, 0.1]}, "space.lr") == Distribution(
        "loguniform", (0.001, 0.1))
    assert parse_distribution("batch", {"int": [16, 64]}, "space.batch").values == (16, 64)
    layers = parse_distribution("layers", {"choice": [[8], [8, 4]]}, "space.layers")
    assert layers.kind == "choice" and layers.values == ((8,), (8, 4))
    sampler = parse_distribution("sampler", {"choice": ["random", "task"],
                                             "when": {"input": "sequential"}}, "space.sampler")
    assert sampler.when == (("input", "sequential"),)


@pytest.mark.parametrize("raw, message", [
    ({"normal": [0, 1]}, "space.lr: unknown distribution 'normal'; allowed: uniform, "
                         "loguniform, int, choice, grid"),
    ({"uniform": [1, 0.5]}, "space.lr.uniform: `low < high` must hold, but got (low=1, "
                            "high=0.5)"),
    ({"loguniform": [0, 1]}, "space.lr.loguniform: loguniform needs low > 0, got low=0"),
    ({"uniform": [0.1]}, "space.lr.uniform: must be [low, high], got [0.1]"),
    ({"choice": []}, "space.lr.choice: must be a non-empty list, got []"),
    ({"uniform": [0.1, 1], "choice": [1]}, "space.lr: must be one mapping like"),
    ({"uniform": [0.1, 1], "when": {"lr": 0.1}}, "space.lr.when.lr: a key cannot be "
                                                  "conditional on itself"),
])
def test_a_bad_distribution_gets_one_line_naming_its_path(raw, message):
    with pytest.raises(ConfigError) as error:
        parse_distribution("lr", raw, "space.lr")
    assert str(error.value).startswith(message)


def test_every_bound_must_be_a_valid_value_of_the_key():
    with pytest.raises(ConfigError, match=r"space\.norm\.choice\[1\] -> norm: must be one of"):
        parse_distribution("norm", {"choice": ["l1", "l7"]}, "space.norm")


def test_freeze_and_thaw_round_trip_lists_and_mappings():
    value = {"b": [1, [2, 3]], "a": "x"}
    frozen = d.freeze(value)
    assert frozen == (("a", "x"), ("b", (1, (2, 3))))
    hash(frozen)  # a frozen dataclass field must hash
    assert d.thaw(frozen) == value and d.thaw(d.freeze([[4], [5, 6]])) == [[4], [5, 6]]


def test_a_condition_holds_only_where_the_other_key_has_the_wanted_value():
    dist = Distribution("choice", ("random", "task"), (("input", "sequential"),))
    assert d.condition_holds(dist, {"input": "sequential"})
    assert not d.condition_holds(dist, {"input": "mix"}) and not d.condition_holds(dist, {})


def test_conditions_that_can_never_hold_or_need_optuna_are_refused():
    sampler = Distribution("choice", ("random", "task"), (("input", "sequential"),))
    space = (("input", Distribution("choice", ("mix", "sequential"))), ("sampler", sampler))
    d.check_conditions(space, {}, "optuna")  # fine
    with pytest.raises(ConfigError, match="space.sampler.when.input: conditional keys need "
                                          "search.algorithm: optuna"):
        d.check_conditions(space, {}, "random")
    with pytest.raises(ConfigError, match="fixed.input is 'mix', so sampler would never be "
                                          "sampled"):
        d.check_conditions((("sampler", sampler),), {"input": "mix"}, "optuna")
    never = (("input", Distribution("choice", ("mix", "concatenate"))), ("sampler", sampler))
    with pytest.raises(ConfigError, match="'sequential' is not one of the choices of "
                                          "space.input"):
        d.check_conditions(never, {}, "optuna")
