"""Command line: `spatialsearch train|search|analyze ...`; the only module that parses argv.

Usage:
    spatialsearch train --datasets digits --labels 5 --input concatenate \\
        --layers 150 100 50 --activation Sigmoid --proximity 1 --transport 10 --norm l2 --epochs 50
    spatialsearch train --config run.yaml --epochs 5        # flags override the file
Exit status: 0 done, 2 bad input (one message on stderr, nothing written), 1 training failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from typing import Callable, NoReturn, Sequence

from spatialsearch.cli.analysis import add_analysis_parsers
from spatialsearch.cli.search import add_search_arguments, command_search, command_sync
from spatialsearch.cli.train import add_train_flags, command_train, load_config_file
from spatialsearch.cli.viewers import add_viewer_parsers
from spatialsearch.errors import SpatialSearchError
from spatialsearch.redact import mask_logging, masked

__all__ = ["build_parser", "load_config_file", "main"]


Command = Callable[[argparse.Namespace], int]


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors stay one line: control characters in a bad argument (a
    '\r' from a hostile caller) are shown escaped. Subparsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {shown}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="spatialsearch", description=(
        "Spatial neural networks (arXiv 1910.02776): train, search hyperparameters, analyse."))
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train one spatial network", description=(
        "Train one spatial network; writes best.pt, metrics.jsonl and summary.json."))
    train.add_argument("--config", help="YAML or JSON file of training keys (flags override)")
    train.add_argument("--save", help="output folder (default runs/train-<time>)")
    train.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    add_train_flags(train)
    train.set_defaults(handler=command_train)
    search = sub.add_parser("search", help="run a hyperparameter search from a YAML space",
                            description="Ray Tune + Optuna + ASHA search, logged to MLflow.")
    add_search_arguments(search)
    search.set_defaults(handler=command_search)
    add_analysis_parsers(sub)
    sync = sub.add_parser("sync-mlflow", help="re-log a finished search's results to MLflow",
                          description="Log what a search's MLflow store missed (e.g. the "
                                      "server was down) from the search folder's results.")
    sync.add_argument("folder", help="the search folder (<output>/<name>), or the search's "
                                     "folder in S3 storage (s3://bucket/prefix/<name>)")
    sync.add_argument("--tracking-uri", help="another MLflow store (default: the search's)")
    sync.add_argument("--storage-endpoint", help="URL of the S3-compatible store holding it")
    sync.set_defaults(handler=command_sync)
    add_viewer_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `spatialsearch` console script. Whatever it prints or logs, an
    unexpected traceback included, has every URI's user-info masked (redact.masked)."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    mask_logging()
    args = build_parser().parse_args(argv)
    if not getattr(args, "quiet", True):
        logging.getLogger("spatialsearch").setLevel(logging.INFO)
    handler: Command = args.handler
    try:
        return handler(args)
    except SpatialSearchError as error:
        one_line = " ".join(masked(str(error)).split())
        print(f"spatialsearch: error: {one_line}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("spatialsearch: interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug: its traceback, masked
        print(masked(traceback.format_exc()), file=sys.stderr, end="")
        return 1


if __name__ == "__main__":
    sys.exit(main())
