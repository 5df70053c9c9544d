"""Test ids in plain characters.

Ids are passed back to pytest as arguments (`pytest 'tests/x.py::test[id]'`, as mutmut does
for each mutant, and as users do to rerun one case). A parametrised message or pattern such
as "scheduler\\.grace_period: must be in [1, epochs]" holds spaces, colons, brackets and
backslashes that fail to select the test there.
"""

from __future__ import annotations

import re

_NOT_IN_AN_ID = re.compile(r"[^A-Za-z0-9_.=+-]+")


def plain_id(text: str) -> str:
    """text with each run of other characters as one "_", at most 60 characters:
    "num_samples: at most 100000" -> "num_samples_at_most_100000"."""
    return _NOT_IN_AN_ID.sub("_", text).strip("_")[:60] or "_"
