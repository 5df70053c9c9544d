"""Command line: `spatialsearch train|search|analyze ...`; the only module that parses argv.

Usage:
    spatialsearch train --datasets digits --labels 5 --input concatenate \\
        --layers 150 100 50 --activation Sigmoid --proximity 1 --transport 10 --norm l2 --epochs 50
    spatialsearch train --config run.yaml --epochs 5        # flags override the file
Exit status: 0 done, 2 bad input (one message on stderr, nothing written), 1 training failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

import yaml

from spatialsearch import metrics as m
from spatialsearch.config import (
    ACTIVATIONS,
    DATASETS,
    OPTIMIZERS,
    TrialConfig,
    trial_config_from_dict,
)
from spatialsearch.errors import ConfigError, SpatialSearchError
from spatialsearch.yaml_io import load_yaml

#: flat training key -> (nargs, help). Every key of config.FLAT_KEYS has a flag.
_TRAIN_FLAGS: dict[str, tuple[str | None, str]] = {
    "datasets": ("+", f"dataset names, one or more tasks each: {', '.join(DATASETS)} "
                      "(default: digits)"),
    "labels": (None, "C, classes per task: class k is label k %% C of task k // C (default 5)"),
    "input": (None, "input mode: sequential, concatenate or mix (default concatenate)"),
    "sampler": (None, "sequential mode order: random (tasks interleaved) or task (blocked)"),
    "root": (None, "folder holding torchvision datasets as <root>/<Name>/raw (default data)"),
    "download": (None, "true: let torchvision download missing datasets (online only)"),
    "validation_fraction": (None, "share of train carved (seeded) for validation (default 0.1)"),
    "test_fraction": (None, "share carved for test, digits only (default 0.2)"),
    "batch": (None, "samples per training step (default 32)"),
    "type": (None, "linear or convolution (default linear)"),
    "layers": ("+", "hidden widths h_0..h_{L-1}: neurons, or channels (default 150 100 50)"),
    "activation": (None, f"torch.nn activation class (default Sigmoid): {', '.join(ACTIVATIONS)}"),
    "kernel": (None, "convolution kernel size, odd (default 3)"),
    "dim": (None, "dimensions of neuron position space (default 2)"),
    "proximity": (None, "alpha >= 0: weight of the proximity cost (default 0)"),
    "transport": (None, "beta >= 0: weight of the transport cost (default 0)"),
    "norm": (None, "transport weight norm: l1 (|w|) or l2 (w^2) (default l2)"),
    "where": ("+", "spatial layer indices 0..L with costs (L = head), or 'all' (default)"),
    "optimizer": (None, f"torch.optim class (default Adam): {', '.join(OPTIMIZERS)}"),
    "lr": (None, "learning rate of weights and biases (default 5e-3)"),
    "positions_lr": (None, "learning rate of positions; 0 = same as --lr (default 0)"),
    "optimizer_args": ("+", "extra optimizer arguments as key=value, e.g. momentum=0.9"),
    "epochs": (None, "passes over the training split (default 50)"),
    "seed": (None, "seed of torch, numpy, random and the data splits (default 1)"),
    "device": (None, "auto (cuda when present), cpu, cuda or cuda:N (default auto)"),
    "tensorboard": (None, "true: also write TensorBoard event files (default false)"),
}


def _scalar(text: str) -> Any:
    """A command-line word as YAML reads it: 5 -> int, 1e-3 -> float, true -> bool."""
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text


def load_config_file(path: str, key: str = "--config") -> dict[str, Any]:
    """A YAML or JSON mapping from a file (safe loader only)."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{key}: no file at {path!r}")
    try:
        raw = load_yaml(file.read_text(), key)
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"{key}: {path!r} is not valid YAML/JSON: "
                          f"{str(error).splitlines()[0]}") from error
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{key}: {path!r} must hold a mapping of keys, got {type(raw).__name__}")
    return raw


def _flag_values(args: argparse.Namespace) -> dict[str, Any]:
    """The training keys given on the command line, parsed like YAML scalars."""
    given: dict[str, Any] = {}
    for key in _TRAIN_FLAGS:
        if not hasattr(args, key):
            continue
        value = getattr(args, key)
        if key == "optimizer_args":
            pairs = [item.partition("=") for item in value]
            bad = [item for item, (_, sep, _) in zip(value, pairs) if not sep]
            if bad:
                raise ConfigError(f"optimizer_args: expected key=value, got {bad[0]!r}")
            given[key] = {name: _scalar(text) for name, _, text in pairs}
        elif key == "where" and value == ["all"]:
            given[key] = "all"
        elif isinstance(value, list):
            given[key] = [_scalar(item) for item in value]
        else:
            given[key] = _scalar(value)
    return given


def _add_train_flags(parser: argparse.ArgumentParser) -> None:
    for key, (nargs, help_text) in _TRAIN_FLAGS.items():
        parser.add_argument(f"--{key.replace('_', '-')}", dest=key, nargs=nargs,
                            default=argparse.SUPPRESS, help=help_text, metavar=key.upper())
    parser.add_argument("--cuda", dest="device", action="store_const", const="cuda",
                        default=argparse.SUPPRESS, help="same as --device cuda")


def _print_epoch(results: dict[str, float]) -> None:
    per_task = sorted(k for k in results if k.startswith("val_accuracy_task"))
    tasks = " ".join(f"{results[k]:.3f}" for k in per_task)
    print(f"epoch {int(results[m.EPOCH]):4d}  loss {results[m.TRAIN_LOSS]:.4f}  "
          f"val acc {results[m.VAL_ACCURACY]:.4f} [{tasks}]  "
          f"prox {results[m.PROXIMITY]:.4f}  transport {results[m.TRANSPORT]:.4f}", flush=True)


def command_train(args: argparse.Namespace) -> int:
    from spatialsearch.fit import fit

    raw = load_config_file(args.config) if args.config else {}
    config: TrialConfig = trial_config_from_dict({**raw, **_flag_values(args)})
    output = Path(args.save or f"runs/train-{datetime.now():%Y%m%d-%H%M%S}")
    summary = fit(config, output, on_epoch=None if args.quiet else _print_epoch)
    best = summary["best"]
    print(f"best epoch {summary['best_epoch']}: val accuracy {best[m.VAL_ACCURACY]:.4f}, "
          f"test accuracy {best[m.TEST_ACCURACY]:.4f}, segregation {best[m.SEGREGATION]:.3f} "
          f"({summary['seconds']:.1f} s)")
    print(f"checkpoint: {summary['checkpoint']}")
    return 0


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
        node[leaf] = _scalar(text)
    return raw


def command_search(args: argparse.Namespace) -> int:
    from spatialsearch.search.config import search_config_from_dict, with_overrides

    text_path = Path(args.space)
    raw = load_config_file(args.space, key="search space")
    config = search_config_from_dict(_apply_sets(raw, args.set or []), text_path.read_text())
    config = with_overrides(config, output=args.output, tracking_uri=args.tracking_uri,
                            num_samples=args.num_samples)
    if args.dry_run:
        print(json.dumps(_describe(config), indent=2, default=str))
        return 0
    from spatialsearch.search.results import format_table
    from spatialsearch.search.runner import run_search

    summary = run_search(config, address=args.address, resume=args.resume, quiet=args.quiet)
    print(format_table(summary))
    best = summary.best
    if summary.pareto is not None:
        from spatialsearch.search.answer import format_pareto

        print(format_pareto(summary.pareto))
        print(f"pareto.csv: {config.folder / 'pareto.csv'}")
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
    if uri.startswith("sqlite:"):
        print(f"browse: mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000")
    else:
        print(f"browse: {uri} (experiment {config.experiment!r})")
    return 0 if not summary.errored else 1


def command_sync(args: argparse.Namespace) -> int:
    from spatialsearch.search.runner import sync_search

    result = sync_search(Path(args.folder), args.tracking_uri)
    print(f"synced {result['trials']} trials to {result['tracking_uri']}; "
          f"{len(result['not_logged'])} writes still failed")
    return 0 if not result["not_logged"] else 1


def _describe(config: Any) -> dict[str, Any]:
    return {
        "name": config.name, "folder": str(config.folder),
        "objectives": [{"metric": o.metric, "mode": o.mode} for o in config.objectives],
        "trials": config.total_trials, "reseed": config.reseed,
        "scheduler": config.scheduler.__dict__, "search": config.search.__dict__,
        "resources": config.resources.__dict__, "fixed": dict(config.fixed),
        "space": {k: {d.kind: list(d.values), **({"when": dict(d.when)} if d.when else {})}
                  for k, d in config.space},
        "trial defaults": config.base_config.to_flat_dict(),
    }


def command_analyze(args: argparse.Namespace) -> int:
    from analysis.analyze import analyze
    from spatialsearch.fit import check_writable

    out = Path(args.out or Path(args.checkpoint).with_name("analysis"))
    check_writable(out, key="--out")
    report = analyze(args.checkpoint, out, args.methods, "train" if args.train else "validation",
                     connections=args.connections, progress=not args.quiet)
    seg = report["segregation"]
    print(f"segregation: mean {seg['mean']:.3f}, per layer "
          + ", ".join(f"{k}: {v:.3f}" for k, v in seg["per_layer"].items()))
    for k, why in seg["skipped"].items():
        print(f"  layer {k} not scored: {why}")
    for method, result in report["scores"].items():
        print(f"split {method:11s} diagonal {result['diagonal']:.3f}  "
              f"off-diagonal {result['off_diagonal']:.3f}")
    print(f"analysis folder: {out}")
    return 0


def command_step(args: argparse.Namespace) -> int:
    """record / plot / split / score alone."""
    from analysis.context import open_checkpoint
    from analysis.record import load_recording, record, save_recording
    from spatialsearch.fit import check_writable

    out = Path(args.out)
    check_writable(out.parent if args.command == "record" else out, key="--out")
    if args.command == "split" or args.command == "score":
        from analysis.split import check_method

        check_method(args.method)
    context = open_checkpoint(args.checkpoint)
    recording = load_recording(Path(args.recording), context) if getattr(
        args, "recording", None) else None
    split_name = "train" if getattr(args, "train", False) else "validation"
    if args.command == "record":
        save_recording(record(context, split_name, progress=not args.quiet), out)
    elif args.command == "plot":
        from analysis.plot import plot_positions

        for path in plot_positions(context, out, recording, connections=args.connections):
            print(path)
    else:
        from analysis.score import save_score, score
        from analysis.split import save_split, split

        if args.method == "activations" and recording is None:
            recording = record(context, split_name)
        result = split(context, args.method, recording, args.seed)
        for path in save_split(result, context, out):
            print(path)
        if args.command == "score":
            scored = score(context, result, split_name)
            for path in save_score(scored, out):
                print(path)
            print(f"diagonal {scored.diagonal:.4f}, off-diagonal {scored.off_diagonal:.4f}")
    return 0


def _add_analysis_parsers(sub: Any) -> None:
    from analysis.split import METHODS

    analyze = sub.add_parser("analyze", help="record, plot, split and score a checkpoint",
                             description="record -> plot -> split -> score into one folder.")
    analyze.add_argument("checkpoint", help="a best.pt written by train or a search")
    analyze.add_argument("--out", help="analysis folder (default: <checkpoint folder>/analysis)")
    analyze.add_argument("--methods", nargs="+", default=list(METHODS),
                         help=f"split methods (default all: {', '.join(METHODS)})")
    analyze.add_argument("--train", action="store_true", help="use train, not validation")
    analyze.add_argument("--connections", action="store_true", help="draw connections")
    analyze.add_argument("--quiet", action="store_true", help="no progress bars")
    analyze.set_defaults(handler=command_analyze)
    helps = {"record": "per-task mean/variance of every neuron -> .npz",
             "plot": "neuron positions coloured by preferred task -> PNGs",
             "split": "one subnetwork per task -> checkpoints + assignment",
             "score": "task x subnetwork accuracy matrix -> CSV + heatmap"}
    for name, text in helps.items():
        step = sub.add_parser(name, help=text, description=text)
        step.add_argument("checkpoint")
        step.add_argument("--out", required=True,
                          help="output file (record) or folder (plot, split, score)")
        step.add_argument("--quiet", action="store_true")
        if name != "record":
            step.add_argument("--recording", help="a recording (.npz) of this checkpoint")
        if name in ("split", "score"):
            step.add_argument("--method", default="greedy", help=f"one of {', '.join(METHODS)}")
            step.add_argument("--seed", type=int, default=0)
        if name == "plot":
            step.add_argument("--connections", action="store_true")
        if name in ("record", "score"):
            step.add_argument("--train", action="store_true", help="use train, not validation")
        step.set_defaults(handler=command_step)


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of a search (shared by `spatialsearch search` and run_search.py)."""
    parser.add_argument("space", help="search space YAML file (search_spaces/*.yaml)")
    parser.add_argument("--address", help="join an existing Ray cluster (e.g. 127.0.0.1:6379 "
                                          "or auto); default: start a local one")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted search of the same name and output")
    parser.add_argument("--output", help="parent folder of the search folder (YAML: output)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (YAML: tracking_uri)")
    parser.add_argument("--num-samples", type=int, help="trials (YAML: num_samples)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a YAML value by dotted path, e.g. fixed.epochs=3")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate, print the resolved space and trial count, run nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


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
    _add_train_flags(train)
    train.set_defaults(handler=command_train)
    search = sub.add_parser("search", help="run a hyperparameter search from a YAML space",
                            description="Ray Tune + Optuna + ASHA search, logged to MLflow.")
    add_search_arguments(search)
    search.set_defaults(handler=command_search)
    _add_analysis_parsers(sub)
    sync = sub.add_parser("sync-mlflow", help="re-log a finished search's results to MLflow",
                          description="Log what a search's MLflow store missed (e.g. the "
                                      "server was down) from the search folder's results.")
    sync.add_argument("folder", help="the search folder (<output>/<name>)")
    sync.add_argument("--tracking-uri", help="another MLflow store (default: the search's)")
    sync.set_defaults(handler=command_sync)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `spatialsearch` console script."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    args = build_parser().parse_args(argv)
    if not getattr(args, "quiet", True):
        logging.getLogger("spatialsearch").setLevel(logging.INFO)
    handler: Command = args.handler
    try:
        return handler(args)
    except SpatialSearchError as error:
        one_line = " ".join(str(error).split())
        print(f"spatialsearch: error: {one_line}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("spatialsearch: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
