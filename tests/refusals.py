"""The one shape of a refused search space: exit 2, one line matching `message`, no
traceback, nothing written, and the same ConfigError from the validator itself."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from spatialsearch.cli import main
from spatialsearch.errors import ConfigError
from spatialsearch.search.space.config import search_config_from_dict


def assert_refused(tmp_path: Path, capsys: Any, doc: Any, message: str) -> None:
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(doc))
    out = tmp_path / "out"
    assert main(["search", str(space), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(message, err), err
    assert not out.exists()
    with pytest.raises(ConfigError) as refused:
        search_config_from_dict(doc)
    # the message starts with the key's path: "space.transport: ...", not "None.transport"
    assert re.match(message, str(refused.value)), str(refused.value)
