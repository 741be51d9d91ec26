"""Run a scenario as shards on Ray: ``spillover.ray.run``.

Each shard is one Ray task that runs a disjoint slice of every design's
replicates (``spillover run --shard K/N``) and returns it as bytes; the
driver merges them into the same :class:`spillover.Report` as
:func:`spillover.run` (byte-identical files). Needs ``pip install
"./python[ray]"``.

On a cluster, every worker needs the ``spillover`` package and the
scenario's input files at the same paths as the driver (a shared file
system, or files baked into the worker image); partition files made once
with ``spillover partition`` spare each worker a Louvain run.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from . import Report, Scenario, _native, _scenario


def _shard(
    text: Optional[str],
    path: str,
    cwd: str,
    k: int,
    n: int,
    replicates: Optional[int],
    threads: Optional[int],
) -> bytes:
    """One shard, in a Ray worker: relative paths resolve from the driver's folder."""
    os.chdir(cwd)
    return _native.run_shard(text, path, k, n, replicates=replicates, threads=threads)


def run(
    scenario: Scenario,
    shards: int = 4,
    address: Optional[str] = None,
    *,
    replicates: Optional[int] = None,
    cpus_per_shard: int = 1,
    out: Optional[str] = None,
    **init: Any,
) -> Report:
    """Run ``scenario`` in ``shards`` Ray tasks and merge them.

    Args:
        scenario: a scenario file or dict, as for :func:`spillover.run`.
        shards: number of shards (each a run of whole 64-replicate blocks).
        address: an existing Ray cluster (``"auto"``, ``"ray://host:10001"``,
            a KubeRay head); ``None`` uses the Ray already initialized in this
            process, or starts a local one (and shuts it down afterwards).
        replicates: replicates per design, overriding the scenario's.
        cpus_per_shard: CPUs Ray reserves per task, and threads each task uses.
        out: also write every output to this folder, as ``spillover merge --out``.
        init: further arguments for ``ray.init`` (e.g. ``num_cpus``).

    Returns:
        The same :class:`spillover.Report` as :func:`spillover.run` with the
        same scenario and seed.
    """
    import ray

    if shards < 1:
        raise ValueError(f"shards = {shards}: expected at least 1")
    text, path = _scenario(scenario)
    if text is None:
        # Read here, so every worker runs exactly the driver's scenario.
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise type(e)(f"{path}: cannot read: {e.strerror}") from None
    started = False
    if address is not None:
        ray.init(address=address, ignore_reinit_error=True, **init)
    elif not ray.is_initialized():
        ray.init(include_dashboard=False, **init)
        started = True
    try:
        task = ray.remote(num_cpus=cpus_per_shard)(_shard)
        cwd = os.getcwd()
        refs = [
            task.remote(text, path, cwd, k, shards, replicates, cpus_per_shard)
            for k in range(1, shards + 1)
        ]
        parts = ray.get(refs)
    finally:
        if started:
            ray.shutdown()
    return Report(_native.merge(list(parts), out=out))
