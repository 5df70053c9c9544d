"""No credential is ever echoed: a known secret in each URI field and each flag, made to fail
every way it can, appears in no output, no file under the output folder and no MLflow record;
and every URI a module formats goes through the one masking function (redact.masked)."""

from __future__ import annotations

import ast
import http.server
import json
import logging
import threading
from pathlib import Path

import pytest
import yaml

from spatialsearch.cli import main
from spatialsearch.redact import MaskingFilter, masked
from tests.s3_server import free_port

ROOT = Path(__file__).resolve().parents[1]
SECRET = "hunter2-Zq9"
USER = f"alice:{SECRET}"


@pytest.mark.parametrize("text, shown", [
    ("http://alice:pw@host:5000/x", "http://***@host:5000/x"),
    ("https://tok@host", "https://***@host"),
    ("postgresql+psycopg2://u:p@db:5432/mlflow", "postgresql+psycopg2://***@db:5432/mlflow"),
    ("cannot reach 'http://u:p@h:1/': refused", "cannot reach 'http://***@h:1/': refused"),
    ("http://u:p@ss@h/x", "http://***@h/x"),               # '@' inside the password
    ("a http://u:1@h and s3://k:2@b/p", "a http://***@h and s3://***@b/p"),
    ("http://host:5000/path@v1", "http://host:5000/path@v1"),  # '@' after the host: no user
    ("sqlite:///tmp/m@x.db", "sqlite:///tmp/m@x.db"),
    ("mail alice@example.org", "mail alice@example.org"),
    ("", ""),
])
def test_masked_known_answers(text, shown):
    assert masked(text) == shown


def test_masking_filter_masks_messages_arguments_and_tracebacks():
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "could not open %s: %s",
                               (f"http://{USER}@h:1", "down"), None)
    try:
        raise OSError(f"no route to http://{USER}@h:1")
    except OSError as error:
        record.exc_info = (type(error), error, error.__traceback__)
    MaskingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert SECRET not in text and "http://***@h:1" in text and "no route to" in text


class _Refusing(http.server.BaseHTTPRequestHandler):
    """An HTTP server that refuses everything (401), as a tracking server with auth would."""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(401)
        self.end_headers()

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture(scope="module")
def refusing_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _cases(refusing: str) -> list[tuple[str, dict, list[str]]]:
    """(name, YAML keys, flags): each puts the secret in one URI field or flag, failing."""
    closed = f"127.0.0.1:{free_port()}"
    return [
        ("tracking unreachable", {"tracking_uri": f"http://{USER}@{closed}"}, []),
        ("tracking refused", {"tracking_uri": f"http://{USER}@{refusing}"}, []),
        ("tracking bad scheme", {"tracking_uri": f"ftp://{USER}@{closed}"}, []),
        ("tracking bad port", {"tracking_uri": f"http://{USER}@127.0.0.1:x"}, []),
        ("tracking no driver", {"tracking_uri": f"postgresql://{USER}@{closed}/db"}, []),
        ("tracking flag unreachable", {}, ["--tracking-uri", f"https://{USER}@{closed}"]),
        ("tracking flag bad scheme", {}, ["--tracking-uri", f"gopher://{USER}@{closed}"]),
        ("storage with user", {"storage": f"s3://{USER}@bucket/p"}, []),
        ("storage bad scheme", {"storage": f"ftp://{USER}@{closed}/p"}, []),
        ("storage uri key", {"storage": {"uri": f"s3://{USER}@bucket/p"}}, []),
        ("endpoint with user", {"storage": {"uri": "s3://bucket/p",
                                            "endpoint": f"http://{USER}@{closed}"}}, []),
        ("endpoint bad scheme", {"storage": {"uri": "s3://bucket/p",
                                             "endpoint": f"ftp://{USER}@{closed}"}}, []),
        ("storage flag", {}, ["--storage", f"s3://{USER}@bucket/p"]),
        ("endpoint flag", {}, ["--storage", "s3://bucket/p", "--storage-endpoint",
                               f"http://{USER}@{closed}"]),
        ("endpoint flag bad port", {}, ["--storage", "s3://bucket/p", "--storage-endpoint",
                                        f"http://{USER}@{closed}:x"]),
    ]


def _all_text(folder: Path) -> str:
    return "".join(p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file())


def test_a_secret_in_any_uri_field_or_flag_is_never_echoed(tmp_path, capsys, caplog,
                                                          refusing_server):
    for name, keys, flags in _cases(refusing_server):
        space = tmp_path / "space.yaml"
        out = tmp_path / "out"
        space.write_text(yaml.safe_dump({
            "name": "s", "num_samples": 1, "fixed": {"layers": [4], "epochs": 2},
            "space": {"transport": {"loguniform": [0.1, 1]}}, **keys}))
        for dry in ([], ["--dry-run"]):
            caplog.clear()
            code = main(["search", str(space), "--output", str(out), *flags, *dry])
            captured = capsys.readouterr()
            seen = captured.out + captured.err + caplog.text
            assert SECRET not in seen, (name, seen)
            if not dry or code:
                assert code == 2 and captured.err.count("\n") == 1, (name, captured.err)
                assert "***@" in captured.err or "credentials" in captured.err, name
            assert not out.exists(), name


@pytest.mark.slow
def test_a_search_through_a_tracking_uri_with_credentials_keeps_them_out(tmp_path, capsys,
                                                                         ray_session):
    """A real search logs to a real MLflow server through http://alice:<secret>@...: the
    secret is in no output, no file of the search folder and none of the server's store;
    sync-mlflow asks for the credentials again instead of reading them from a file."""
    from tests.processes import kill_tree
    from tests.servers import start_mlflow_server

    server_folder = tmp_path / "server"
    server_folder.mkdir()
    process, base = start_mlflow_server(f"sqlite:///{server_folder / 'mlflow.db'}",
                                        "--artifacts-destination", str(server_folder / "art"))
    try:
        uri = base.replace("http://", f"http://{USER}@")
        space = tmp_path / "space.yaml"
        space.write_text(yaml.safe_dump({
            "name": "secret", "num_samples": 2, "output": str(tmp_path / "out"),
            "tracking_uri": uri, "scheduler": {"type": "fifo"},
            "fixed": {"layers": [6], "epochs": 2, "batch": 64},
            "space": {"transport": {"loguniform": [0.1, 10]}}}))
        assert main(["search", str(space)]) == 0
        folder = tmp_path / "out" / "secret"
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["mlflow"]["tracking_uri"] == base.replace("http://", "http://***@")
        assert main(["sync-mlflow", str(folder)]) == 2
        assert main(["sync-mlflow", str(folder), "--tracking-uri", uri]) == 0
        captured = capsys.readouterr()
        assert SECRET not in captured.out + captured.err
        assert "--tracking-uri" in captured.err and "***@" in captured.out
        assert SECRET not in _all_text(folder)
        assert SECRET not in _all_text(server_folder)
    finally:
        kill_tree(process.pid)


# --- the grep-able proof: every URI formatted in the code goes through masked() ---
_URI_NAMES = ("uri", "url", "endpoint", "address")


def _names_a_uri(node: ast.AST) -> bool:
    """An expression that is, or reads, a name or attribute naming a URI."""
    if isinstance(node, ast.Name):
        return any(word in node.id.lower() for word in _URI_NAMES)
    if isinstance(node, ast.Attribute):
        return any(word in node.attr.lower() for word in _URI_NAMES)
    if isinstance(node, ast.Subscript):
        key = node.slice
        return isinstance(key, ast.Constant) and isinstance(key.value, str) and any(
            word in key.value.lower() for word in _URI_NAMES)
    return False


def _masked_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and getattr(node.func, "id", "") == "masked"


def _unmasked(tree: ast.AST) -> list[int]:
    """Lines where an f-string or a log call formats a URI not wrapped in masked()."""
    found = []
    for node in ast.walk(tree):
        shown: list[ast.AST] = []
        if isinstance(node, ast.JoinedStr):
            shown = [part.value for part in node.values if isinstance(part, ast.FormattedValue)]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and getattr(node.func.value, "id", "") == "_logger"):
            shown = list(node.args[1:])
        found += [node.lineno for value in shown if _names_a_uri(value)
                  and not _masked_call(value)]
    return found


def test_every_uri_formatted_in_the_code_is_masked():
    offenders = {}
    for path in [*ROOT.glob("spatialsearch/**/*.py"), *ROOT.glob("analysis/*.py")]:
        lines = _unmasked(ast.parse(path.read_text()))
        if lines:
            offenders[str(path.relative_to(ROOT))] = lines
    assert not offenders, f"format these URIs through redact.masked: {offenders}"


def test_the_proof_catches_an_unmasked_uri():
    assert _unmasked(ast.parse('f"cannot reach {uri!r}"\n_logger.info("x %s", self.store.uri)'))\
        == [1, 2]
    assert _unmasked(ast.parse('f"cannot reach {masked(uri)!r}"')) == []
