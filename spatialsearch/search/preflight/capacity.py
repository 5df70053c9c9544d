"""Can one trial run anywhere? Each trial's resources (cpu, gpu, custom) against the nodes Ray
reports, before the first trial: Ray itself would keep a trial that fits no node pending
forever.

A trial needs all its resources on one node. The nodes are those of the running Ray (a test
session's, or the cluster at --address, joined for the check), else the node a local Ray would
start with. A cluster with Ray's autoscaler can add nodes: then a warning, not a refusal.

Ray's own CPU and GPU detection (what ray.init(address="local") gives its node) is one of
Ray's internals, so it lives in ray_compat.local_node with the others (importing it brings
Ray Tune, ~1 s, into the refusal). tests/search/preflight/test_cannot_run.py fails if it, or Tune's test for an
autoscaling cluster, changes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import ray

from spatialsearch.errors import ConfigError
from spatialsearch.redact import masked
from spatialsearch.search.engine.ray_compat import local_node
from spatialsearch.search.space.sections import ResourcesConfig

_logger = logging.getLogger(__name__)
Node = Mapping[str, float]  # a node's resources: {"CPU": 2.0, "GPU": 0.0, "trainer": 4.0, ...}


#: the cluster launcher leaves this on the head node (Tune's cluster_info._is_ray_cluster)
AUTOSCALER_BOOTSTRAP = Path("~/ray_bootstrap_config.yaml")


def can_grow() -> bool:
    """The cluster has Ray's autoscaler (the launcher's bootstrap config is here)."""
    return AUTOSCALER_BOOTSTRAP.expanduser().exists()


def asked(resources: ResourcesConfig) -> dict[str, float]:
    """What one trial asks of its node, by Ray's resource names (zero amounts left out)."""
    wanted = {"CPU": resources.cpu, "GPU": resources.gpu, **dict(resources.custom)}
    return {name: amount for name, amount in wanted.items() if amount > 0}


def check_capacity(resources: ResourcesConfig, nodes: Sequence[Node], where: str,
                   grows: bool = False) -> None:
    """Refuse a trial that no node of `where` can hold.

    Raises:
        ConfigError: naming the resource key, the request and the largest node's amount
            (or, when every resource fits some node but none holds them all, the request).
    """
    wanted = asked(resources)
    if any(all(node.get(name, 0.0) >= amount for name, amount in wanted.items())
           for node in nodes):
        return
    if grows:
        _logger.warning("resources: no node of %s holds a trial's %s yet; Ray's autoscaler "
                        "may add one, so the search goes on", where, wanted)
        return
    for name, amount in wanted.items():
        largest = max((node.get(name, 0.0) for node in nodes), default=0.0)
        if largest < amount:
            key = {"CPU": "resources.cpu", "GPU": "resources.gpu"}.get(
                name, f"resources.custom.{name}")
            fix = (f"ask for at most {largest:g}" if largest else f"set {key}: 0"
                   if name == "GPU" else f"start nodes with `ray start --resources "
                   f"'{{\"{name}\": N}}'` and pass --address")
            raise ConfigError(f"{key}: each trial asks for {amount:g} {name}; the largest node "
                              f"of {where} has {largest:g}; {fix}")
    request = " + ".join(f"{amount:g} {name}" for name, amount in wanted.items())
    raise ConfigError(f"resources: each trial asks for {request} on one node; no node of "
                      f"{where} has all of them at once")


def check_cluster(resources: ResourcesConfig, address: str | None) -> None:
    """check_capacity against the running Ray, the cluster at `address` (joined here), or the
    node a local Ray would start with."""
    if address and not ray.is_initialized():
        from spatialsearch.search.engine.session import start_ray  # imports Ray Tune (1 s)

        start_ray(address)
    if ray.is_initialized():
        nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
        where = f"the Ray cluster at {masked(address)}" if address else "the running Ray"
        check_capacity(resources, nodes, where, grows=can_grow())
    else:
        check_capacity(resources, [local_node()], "this machine (a local Ray)")
