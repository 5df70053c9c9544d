"""`spatialsearch dashboard <folder>`: optuna-dashboard over a search's optuna.db, on
127.0.0.1 unless asked otherwise (the study: objective names, PRUNED trials, Pareto front)."""

from __future__ import annotations

import argparse
from pathlib import Path

from spatialsearch.errors import ConfigError

STUDY_FILE = "optuna.db"


def dashboard_url(host: str, port: int) -> str:
    return f"http://{host}:{port}/dashboard"


def command_dashboard(args: argparse.Namespace) -> int:
    """Serve until interrupted (Ctrl-C)."""
    study = Path(args.folder) / STUDY_FILE
    if not study.is_file():
        raise ConfigError(f"folder: {args.folder!r} holds no {STUDY_FILE} (a search folder, "
                          f"<output>/<name>, once its search has ended)")
    from optuna_dashboard import run_server

    print(f"optuna-dashboard: {dashboard_url(args.host, args.port)} (Ctrl-C stops it)",
          flush=True)
    run_server(f"sqlite:///{study.resolve()}", host=args.host, port=args.port)
    return 0


def add_viewer_parsers(sub: argparse._SubParsersAction) -> None:
    dashboard = sub.add_parser("dashboard", help="optuna-dashboard over a search's study",
                               description="Serve optuna-dashboard over <folder>/optuna.db: "
                                           "objective names, PRUNED trials, Pareto front.")
    dashboard.add_argument("folder", help="the search folder (<output>/<name>)")
    dashboard.add_argument("--host", default="127.0.0.1",
                           help="address to bind (default 127.0.0.1: this machine only)")
    dashboard.add_argument("--port", type=int, default=8080)
    dashboard.set_defaults(handler=command_dashboard)
