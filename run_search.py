"""Run a hyperparameter search of spatial networks from a YAML search space.

Usage:
    python run_search.py search_spaces/quickstart.yaml
    python run_search.py search_spaces/transport.yaml --address auto --num-samples 32
    python run_search.py search_spaces/quickstart.yaml --resume      # after a crash
    python run_search.py search_spaces/quickstart.yaml --dry-run --set fixed.epochs=3
The logic lives in spatialsearch (cli.command_search, search.runner.run_search).
"""

from __future__ import annotations

import sys

from spatialsearch.cli import main

if __name__ == "__main__":
    sys.exit(main(["search", *sys.argv[1:]]))
