"""Property-based: random YAML documents and CLI arguments either run or exit 2 with one clear
line on stderr, never a traceback."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spatialsearch.cli import main
from spatialsearch.config import FLAT_KEYS
from spatialsearch.search.space.config import _TOP_KEYS

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["l1", "l2", "digits", "MNIST", "ReLU", "Sigmoid", "asha", "optuna", "grid",
                     "concatenate", "sequential", "mix", "max", "min", "all"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)
DISTRIBUTIONS = st.one_of(VALUES, st.fixed_dictionaries({}, optional={
    kind: st.lists(SCALARS, max_size=4)
    for kind in ("uniform", "loguniform", "int", "choice", "grid")}))
KEYS = st.one_of(st.sampled_from(sorted(_TOP_KEYS)), st.text(max_size=10))
DOCUMENTS = st.dictionaries(KEYS, VALUES, max_size=6).flatmap(lambda doc: st.fixed_dictionaries({
    "fixed": st.dictionaries(st.sampled_from(sorted(FLAT_KEYS)), VALUES, max_size=4),
    "space": st.dictionaries(st.sampled_from(sorted(FLAT_KEYS)), DISTRIBUTIONS, max_size=3),
}).map(lambda extra: {**doc, **extra}))


def _run(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own usage errors
            code = int(exit_.code or 0)
    return code, err.getvalue()


def _check(code: int, err: str) -> None:
    assert "Traceback" not in err, err
    assert code in (0, 2), (code, err)
    if code == 2:
        assert err.strip(), "exit 2 without a message"
        assert err.strip().splitlines()[-1].startswith(("spatialsearch: error:",
                                                        "spatialsearch train: error:",
                                                        "spatialsearch search: error:")), err


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS)
def test_random_search_spaces_validate_or_exit_2(document):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "space.yaml"
        path.write_text(yaml.safe_dump(document, allow_unicode=True))
        out = Path(folder) / "out"
        code, err = _run(["search", str(path), "--dry-run", "--output", str(out)])
        _check(code, err)
        assert not out.exists()  # --dry-run and failures create nothing


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_random_text_as_a_search_space(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "space.yaml"
        path.write_text(text)
        _check(*_run(["search", str(path), "--dry-run", "--output", str(Path(folder) / "o")]))


FLAGS = sorted(f"--{key.replace('_', '-')}" for key in FLAT_KEYS if key not in
               ("epochs", "layers", "batch", "device"))
WORDS = st.one_of(st.sampled_from(["0", "1", "-1", "2.5", "nan", "true", "l1", "ReLU", "MNIST",
                                   "digits", "task", "mix", "all", "x=1", "1e309", "[1]"]),
                  st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(FLAGS), st.lists(WORDS, max_size=2)), max_size=3))
def test_random_train_arguments_run_or_exit_2(pairs):
    argv = [part for flag, words in pairs for part in (flag, *words)]
    with tempfile.TemporaryDirectory() as folder:
        code, err = _run(["train", *argv, "--epochs", "1", "--layers", "4", "--batch", "128",
                          "--device", "cpu", "--quiet", "--save", str(Path(folder) / "run")])
        _check(code, err)


def test_control_characters_in_unknown_arguments_stay_on_one_line():
    """Found by hypothesis: argparse echoed a '\\r' from a bad argument into its message."""
    code, err = _run(["train", "--activation", "0", "\r0"])
    assert code == 2 and "unrecognized arguments: \\r0" in err
    _check(code, err)


def _bomb(levels: int = 8) -> str:
    """Each anchor lists the previous one ten times: 10**levels values once expanded."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


HOSTILE = [
    ("name: x\nfixed: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply to parse"),
    ("fixed: {epochs: " + "[" * 40 + "1" + "]" * 40 + "}\n", "nested over 32 levels deep"),
    (_bomb(), "expands to over 100000 values"),
    ("name: x\n# " + "x" * 70000 + "\n", "characters; at most 65536 are read"),
]


def test_hostile_documents_are_one_line_exit_2_nothing_written(tmp_path, capsys):
    for text, message in HOSTILE:
        space = tmp_path / "space.yaml"
        space.write_text(text)
        code = main(["search", str(space), "--output", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err, (message, err)
        assert err.startswith("spatialsearch: error: search space: ")
        assert not (tmp_path / "out").exists()
