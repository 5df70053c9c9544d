"""Everything checkable before Ray starts: the Ray version, the output folder, the storage
(reached and written), the datasets on disk, the memory and resources a trial needs (against
this machine, or the cluster at --address, joined for it), the MLflow store. A failure is one
ConfigError or DataError and nothing written."""

from __future__ import annotations

import logging
from pathlib import Path

from spatialsearch.data.sources import files_on_disk
from spatialsearch.errors import ConfigError, DataError
from spatialsearch.fit import check_writable
from spatialsearch.footprint import available_bytes, gib, parameters, trial_bytes
from spatialsearch.redact import masked
from spatialsearch.search.engine.ray_compat import check_ray_version
from spatialsearch.search.places.place import Place, check_storage
from spatialsearch.search.places.ray_folder import RAY_FOLDER
from spatialsearch.search.preflight.capacity import check_cluster
from spatialsearch.search.space.config import SearchConfig
from spatialsearch.search.tracking.store import check_store

_logger = logging.getLogger(__name__)


def preflight(config: SearchConfig, place: Place, resume: bool,
              address: str | None = None) -> None:
    """The default SQLite store in the writable output folder is opened in the background
    while Ray starts; any store the user named is checked here (a server's /health).

    Raises:
        ConfigError / DataError: with the key and the reason; nothing has been written.
    """
    check_ray_version()
    check_writable(config.folder, key="output")
    if config.storage.uri and place.local:
        check_writable(Path(place.path), key="storage")
    elif config.storage.uri:
        check_storage(config.storage, place)
    key = "storage" if config.storage.uri else "output"
    experiment = place.child(RAY_FOLDER, config.name)
    if not resume and experiment.exists():
        raise ConfigError(f"{key}: {masked(place.uri)!r} already holds a search named "
                          f"{config.name!r}; pass --resume to continue it, or change name/{key}")
    if resume and not experiment.exists():
        raise ConfigError(f"--resume: no search to resume at {masked(experiment.uri)!r}")
    datasets = {name for value in config.dataset_choices for name in value}
    base = config.base_config.data
    for name in sorted(datasets - {"digits"}) if not base.download else []:
        system, missing = files_on_disk(name, base.root)
        if system is not None:
            _logger.info("%s: %s holds no files; reading the system's copy: %s", name,
                         Path(base.root) / name / "raw", ", ".join(str(p) for p in system))
        if missing:
            raise DataError(f"fixed.datasets: {name} not found under root {base.root!r} "
                            f"(missing {', '.join(str(p) for p in missing)}); get the files "
                            f"or set fixed.download: true (online)")
    if address is None:  # a cluster's nodes: their memory is unknown before Ray starts
        check_memory(config)
    check_cluster(config.resources, address)
    if config.tracking_uri:  # the default store is opened in the background
        check_store(config.tracking_uri, config.experiment)


def check_memory(config: SearchConfig) -> None:
    """Refuse a search whose largest trials, max_concurrent_trials at once, cannot fit in
    this machine's available memory (footprint.trial_bytes over the space's corners)."""
    largest, worst = 0, None
    for trial in config.corners:
        size = trial_bytes(trial)
        if size > largest:
            largest, worst = size, trial
    together = largest * config.max_concurrent_trials
    available = available_bytes()
    if worst is not None and together > available:
        model = worst.model
        raise ConfigError(
            f"fixed/space: a trial of layers {list(model.layers)} ({model.type}, "
            f"{parameters(worst):,} parameters) needs about {gib(largest)}; "
            f"{config.max_concurrent_trials} at once (max_concurrent_trials) need "
            f"{gib(together)}, this machine has {gib(available)} available; use smaller "
            f"layers or fewer concurrent trials")
