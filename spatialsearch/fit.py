"""Run one training to completion into a folder: best checkpoint, metrics log, test score.

Folder layout (docs/reference.md, model 5):
    best.pt          best-validation-accuracy checkpoint (checkpoint.py), rewritten atomically
                     on every improvement, with test metrics added at the end
    metrics.jsonl    one JSON object per epoch
    summary.json     best epoch, its validation metrics, test metrics, segregation, seconds
    tensorboard/     event files, when run.tensorboard is set
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Callable

from spatialsearch import metrics as m
from spatialsearch.checkpoint import save_checkpoint
from spatialsearch.config import TrialConfig
from spatialsearch.errors import ConfigError
from spatialsearch.train import Trainer

_logger = logging.getLogger(__name__)
EpochCallback = Callable[[dict[str, float]], None]


def check_writable(folder: Path, key: str = "save") -> None:
    """Prove that folder can be written by doing it: the missing folders are made, a probe
    file is written and deleted, and everything made is removed again, so nothing is left.
    Permission bits alone are not enough (root passes them on a read-only or virtual file
    system).

    Raises:
        ConfigError: one line naming the key, the folder and the OS's reason.
    """
    target = Path(os.path.abspath(folder))
    existing, missing = target, []
    while not existing.exists():
        missing.append(existing)
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{key}: cannot write to {str(folder)!r}: {str(existing)!r} is not "
                          f"a folder")
    made: list[Path] = []
    try:
        for part in reversed(missing):
            part.mkdir()
            made.append(part)
        probe = target / f".write-probe-{uuid.uuid4().hex[:12]}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        where = f" ({error.filename})" if error.filename and str(error.filename) != str(
            folder) else ""
        raise ConfigError(f"{key}: cannot write to {str(folder)!r}: "
                          f"{error.strerror or error}{where}") from None
    finally:
        for part in reversed(made):
            try:
                part.rmdir()
            except OSError:
                pass


def fit(config: TrialConfig, output: Path, on_epoch: EpochCallback | None = None) -> dict:
    """Train `config` for its epochs, writing into `output`; returns the summary dict.

    Everything that can fail on user input (config, data, output folder) fails before the
    folder is created.
    """
    check_writable(output)
    trainer = Trainer(config)
    output.mkdir(parents=True, exist_ok=True)
    writer = None
    if config.run.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(output / "tensorboard"))
    started = time.perf_counter()
    best_path = output / "best.pt"
    try:
        with open(output / "metrics.jsonl", "w") as log:
            for _ in range(config.run.epochs):
                results = trainer.run_epoch()
                log.write(json.dumps(results) + "\n")
                log.flush()
                if trainer.best_metrics is results:
                    save_checkpoint(best_path, trainer.model, config, trainer.epoch, results)
                if writer is not None:
                    for key, value in results.items():
                        writer.add_scalar(key, value, trainer.epoch)
                if on_epoch is not None:
                    on_epoch(results)
    finally:
        if writer is not None:
            writer.close()
    final = trainer.task_measures()
    best_model = trainer.best_model()
    best = {**trainer.best_metrics,
            **trainer.task_measures(best_model),
            **trainer.test_metrics()}
    save_checkpoint(best_path, best_model, config, int(best[m.EPOCH]), best)
    summary = {
        "checkpoint": str(best_path),
        "best_epoch": int(best[m.EPOCH]),
        "best": best,
        "final_epoch": {**results, **final},
        "seconds": time.perf_counter() - started,
        "config": config.to_flat_dict(),
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
