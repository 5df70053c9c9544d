"""The README documents every key of the schema, and only those."""

from __future__ import annotations

import re
from pathlib import Path

from spatialsearch.config import FLAT_KEYS
from spatialsearch.search.config import _TOP_KEYS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
REFERENCE = (ROOT / "docs" / "reference.md").read_text()


def _table_keys(marker: str, text: str = README) -> set[str]:
    """Backticked names in the first column of the first table after `marker`."""
    lines = text.split(marker, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    keys: set[str] = set()
    for line in lines[start + 2:]:  # skip the header and |---| rows
        if not line.startswith("|"):
            break
        keys |= set(re.findall(r"`([a-z_]+)`", line.split("|")[1]))
    return keys


def test_training_keys_table_matches_the_schema():
    documented = _table_keys("## Train one network", REFERENCE)
    assert documented == set(FLAT_KEYS), documented ^ set(FLAT_KEYS)


def test_search_space_keys_table_matches_the_schema():
    documented = _table_keys("### Writing a search space")
    assert documented == _TOP_KEYS, documented ^ _TOP_KEYS


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    head = README.split("```bash", 1)[1].split("```", 1)[0]
    assert "make search" in head and "make test" in head
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "make test" in ci
