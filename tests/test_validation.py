"""spatialsearch/validation.py directly: each validator returns the value in its canonical type,
or raises one ConfigError line naming the key path, the rule and the bad value."""

from __future__ import annotations

import math

import pytest

from spatialsearch.errors import ConfigError
from spatialsearch.validation import (
    boolean,
    bounded,
    check_keys,
    choice,
    int_list,
    integer,
    literal,
    mapping,
    number,
    suggest,
    text,
    tracking_uri,
    typed_number,
)


def test_each_validator_returns_the_canonical_value():
    assert mapping(None, "s") == {} and mapping({"a": 1}, "s") == {"a": 1}
    assert integer(3, "k", 1, high=5) == 3 and number(2, "k", 0.0) == 2.0
    assert isinstance(number(2, "k", 0.0), float)
    assert typed_number(4, "k", integer=False) == 4.0 and typed_number(4, "k", integer=True) == 4
    assert bounded(0.5, "k", integer=False, low=0, high=1) == 0.5
    assert int_list(3, "layers", low=1, allow_empty=False) == (3,)
    assert int_list([4, 5], "layers", low=1, allow_empty=False) == (4, 5)
    assert text("", "k", empty=True) == "" and boolean(False, "k") is False
    assert choice("l2", "norm", ("l1", "l2")) == "l2"


@pytest.mark.parametrize("call, message", [
    (lambda: mapping([1], "scheduler"), "scheduler: must be a mapping, got [1]"),
    (lambda: integer(True, "seed", 0), "seed: must be an integer >= 0, got True"),
    (lambda: integer(9, "reseed", 0, high=8), "reseed: at most 8, got 9"),
    (lambda: number(math.nan, "cpu", 0.01), "cpu: must be a number >= 0.01, got nan"),
    (lambda: text("", "name"), "name: must be a non-empty string, got ''"),
    (lambda: typed_number(math.inf, "lr", integer=False), "lr: must be a finite number, got inf"),
    (lambda: bounded(0, "lr", integer=False, low=0, low_open=True),
     "lr: must be in (0, inf), got 0"),
    (lambda: bounded(2, "p", integer=False, low=0, high=1), "p: must be in [0, 1], got 2"),
    (lambda: choice("L2", "norm", ("l1", "l2")),
     "norm: must be one of l1, l2, got 'L2' (did you mean 'l2'?)"),
    (lambda: boolean("yes", "download"), "download: must be true or false, got 'yes'"),
    (lambda: int_list([], "layers", low=1, allow_empty=False),
     "layers: must be a non-empty list of integers, got []"),
    (lambda: int_list([4, 0], "layers", low=1, allow_empty=False),
     "layers[1]: must be in [1, inf), got 0"),
    (lambda: literal("sgd", "type", "x"), "type: must be one of , got 'sgd'"),
])
def test_each_bad_value_gets_one_line_with_key_rule_and_value(call, message):
    with pytest.raises(ConfigError) as error:
        call()
    assert str(error.value) == message and "\n" not in str(error.value)


def test_unknown_keys_get_a_did_you_mean_and_the_allowed_ones():
    assert suggest("Epochs", {"epochs", "batch"}) == " (did you mean 'epochs'?)"
    assert suggest("zzz", {"epochs"}) == ""
    with pytest.raises(ConfigError, match=r"^scheduler\.grace_perod: unknown key \(did you "
                                          r"mean 'grace_period'\?\); allowed: grace_period, "
                                          r"type$"):
        check_keys({"grace_perod": 1}, {"type", "grace_period"}, "scheduler.")
    with pytest.raises(ConfigError, match=r"^scheduler\.x: unknown key; allowed: type$"):
        check_keys({"x": 1}, {"type"}, "scheduler.")


@pytest.mark.parametrize("uri", ["", "http://127.0.0.1:5000", "sqlite:////tmp/m.db",
                                 "postgresql+psycopg2://u:p@db/mlflow", "databricks"])
def test_tracking_uris_mlflow_can_track_to_pass(uri):
    assert tracking_uri(uri, "tracking_uri") == uri


@pytest.mark.parametrize("uri, fragment", [
    ("ftp://host/x", "unsupported scheme 'ftp'"),
    ("http://", "names no host"),
    ("sqlite://relative.db", "is not sqlite:///<path of the database file>"),
    ("http://h:99999", "malformed URI"),
    ("http://user:secret@ho st", "must not contain spaces"),
])
def test_bad_tracking_uris_are_refused_without_their_secret(uri, fragment):
    with pytest.raises(ConfigError) as error:
        tracking_uri(uri, "tracking_uri")
    assert fragment in str(error.value) and "secret" not in str(error.value)
