"""`spatialsearch analyze` and its steps alone (record, plot, split, score), and `claims`:
the paper's claims checked on a finished grid search."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


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
    for k, why in seg["at_chance"].items():
        print(f"  layer {k} counted at chance: {why}")
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


def add_analysis_parsers(sub: Any) -> None:
    from analysis.methods import METHODS

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
    claims = sub.add_parser("claims", help="the paper's claims, checked on a finished search",
                            description="Measure every trial's best checkpoint (accuracy, "
                            "segregation, modularity, task-free positions split), group by "
                            "setting over seeds, print the tables; writes <folder>/claims.md.")
    claims.add_argument("folder", help="the search folder, e.g. runs/paper")
    claims.set_defaults(handler=command_claims)


def command_claims(args: argparse.Namespace) -> int:
    from analysis.claims import write_claims

    print(write_claims(Path(args.folder)))
    print(f"claims: {Path(args.folder) / 'claims.md'}")
    return 0


