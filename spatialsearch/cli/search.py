"""`spatialsearch search` (= run_search.py) and `spatialsearch sync-mlflow`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from spatialsearch import metrics as m
from spatialsearch.cli.train import load_config_file, scalar
from spatialsearch.errors import ConfigError
from spatialsearch.redact import masked


def _apply_sets(raw: dict[str, Any], sets: list[str]) -> dict[str, Any]:
    """--set a.b=value: assign a YAML scalar at a dotted path of the search document."""
    for item in sets:
        path, sep, text = item.partition("=")
        if not sep or not path:
            raise ConfigError(f"--set: expected key=value (e.g. fixed.epochs=3), got {item!r}")
        *parents, leaf = path.split(".")
        node = raw
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {path}: {part!r} is not a mapping in the search space")
            node = child
        node[leaf] = scalar(text)
    return raw


def command_search(args: argparse.Namespace) -> int:
    from spatialsearch.search.space.config import search_config_from_dict, with_overrides

    text_path = Path(args.space)
    raw = load_config_file(args.space, key="search space")
    config = search_config_from_dict(_apply_sets(raw, args.set or []), text_path.read_text())
    config = with_overrides(config, output=args.output, tracking_uri=args.tracking_uri,
                            num_samples=args.num_samples, storage=args.storage,
                            storage_endpoint=args.storage_endpoint)
    if args.dry_run:
        print(json.dumps(_describe(config), indent=2, default=str))
        return 0
    from spatialsearch.search.preflight.capacity import check_cluster

    check_cluster(config.resources, args.address)  # before the heavy imports: a quick refusal
    from spatialsearch.cli.tables import format_pareto, format_table
    from spatialsearch.search.runner import run_search
    from spatialsearch.search.tracking.view import runs_page

    summary = run_search(config, address=args.address, resume=args.resume, quiet=args.quiet)
    print(format_table(summary))
    best = summary.best
    if summary.pareto is not None:
        print(format_pareto(summary.pareto))
        print(f"pareto.csv: {config.folder / 'pareto.csv'}")
        picture = config.folder / "report" / "pareto.png"
        if picture.is_file():
            print(f"front picture: {picture}")
    elif best:
        se = best.get(m.VAL_ACCURACY_SE)
        noise = (f" ± {se:.4f} (standard error; trials within it tie, the lowest validation "
                 f"loss wins)" if config.metric == m.VAL_ACCURACY and se == se else "")
        print(f"best trial {best['trial_id']}: {config.metric} = {best[config.metric]:.4f}"
              f"{noise}; checkpoint {best['checkpoint']}")
        if "reseed" in best:
            spread = best["reseed"]
            print(f"over seeds {spread['seeds']}: {config.metric} "
                  f"{spread['mean'][config.metric]:.4f} ± {spread['std'][config.metric]:.4f}")
    print(f"{summary.trials} trials, {summary.stopped_early} stopped early by the "
          f"scheduler, {summary.errored} failed; summary: {config.folder / 'summary.json'}")
    not_logged = summary.mlflow["not_logged"]
    if not_logged:
        print(f"MLflow: {len(not_logged)} writes failed (first: {not_logged[0]}); results are "
              f"safe in {config.folder}; re-log them with: spatialsearch sync-mlflow "
              f"{config.folder}")
    uri = summary.mlflow["tracking_uri"]
    runs = runs_page(summary.mlflow.get("experiment_id"), summary.mlflow.get("view"))
    if uri.startswith("sqlite:"):
        print(f"browse: mlflow ui --backend-store-uri {masked(uri)} --host 127.0.0.1 "
              f"--port 5000, then open http://127.0.0.1:5000/{runs}")
    else:
        print(f"browse: {masked(uri).rstrip('/')}/{runs}")
    print(f"study: spatialsearch dashboard {config.folder} (optuna-dashboard on 127.0.0.1)")
    return 0 if not summary.errored else 1


def command_sync(args: argparse.Namespace) -> int:
    from spatialsearch.search.runner import sync_search

    result = sync_search(args.folder, args.tracking_uri, args.storage_endpoint or "")
    print(f"synced {result['trials']} trials to {masked(result['tracking_uri'])}; "
          f"{len(result['not_logged'])} writes still failed")
    return 0 if not result["not_logged"] else 1


def _describe(config: Any) -> dict[str, Any]:
    return {
        "name": config.name, "folder": str(config.folder),
        "objectives": [{"metric": o.metric, "mode": o.mode} for o in config.objectives],
        "trials": config.total_trials, "reseed": config.reseed,
        "scheduler": config.scheduler.__dict__, "search": config.search.__dict__,
        "resources": config.resources.tune_resources(), "fixed": dict(config.fixed),
        "storage": {key: masked(value) for key, value in config.storage.__dict__.items()},
        "tracking_uri": masked(config.tracking_uri),
        "space": {k: {d.kind: list(d.values), **({"when": dict(d.when)} if d.when else {})}
                  for k, d in config.space},
        "trial defaults": config.base_config.to_flat_dict(),
    }


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of a search (shared by `spatialsearch search` and run_search.py)."""
    parser.add_argument("space", help="search space YAML file (search_spaces/*.yaml)")
    parser.add_argument("--address", help="join an existing Ray cluster (e.g. 127.0.0.1:6379 "
                                          "or auto); default: start a local one")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted search of the same name and output")
    parser.add_argument("--output", help="parent folder of the search folder (YAML: output)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (YAML: tracking_uri)")
    parser.add_argument("--storage", help="where the Ray experiment and results live: "
                                          "s3://bucket/prefix or a shared folder (YAML: storage)")
    parser.add_argument("--storage-endpoint", help="URL of an S3-compatible store, e.g. "
                                                   "http://10.0.0.5:9000 (YAML: storage.endpoint)")
    parser.add_argument("--num-samples", type=int, help="trials (YAML: num_samples)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a YAML value by dotted path, e.g. fixed.epochs=3")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate, print the resolved space and trial count, run nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


