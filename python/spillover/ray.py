"""Run a scenario as shards on Ray: ``spillover.ray.run``.

Shard 1 runs in a Ray actor that prepares the scenario once (network,
population, partitions), runs its slice and then merges every shard with
what it prepared; shards 2..N are Ray tasks. Each shard is a disjoint slice
of every design's replicates (``spillover run --shard K/N``), returned as
bytes. The result is the same :class:`spillover.Report` as
:func:`spillover.run` (byte-identical files). Needs ``pip install
"./python[ray]"``.

On a cluster, every worker needs the ``spillover`` package and the
scenario's input files at the same paths as the driver (a shared file
system, or files baked into the worker image); partition files made once
with ``spillover partition`` spare each worker a Louvain run.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

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


class _Merger:
    """Shard 1 and the merge, on one prepared scenario (a Ray actor)."""

    def __init__(self, text: str, path: str, cwd: str, replicates: Optional[int], threads: Optional[int]) -> None:
        os.chdir(cwd)
        self.session = _native.Session(text, path, replicates=replicates, threads=threads)

    def shard(self, k: int, n: int) -> bytes:
        return self.session.run_shard(k, n)

    def merge(self, shards: List[bytes], out: Optional[str]) -> Dict[str, Any]:
        return self.session.merge(shards, out=out)


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
        out: also write every output to this folder, as ``spillover merge --out``
            (written where the merging actor runs: on a cluster, a shared path).
        init: further arguments for ``ray.init`` (e.g. ``num_cpus``).

    Returns:
        The same :class:`spillover.Report` as :func:`spillover.run` with the
        same scenario and seed.
    """
    import ray

    if shards < 1:
        raise ValueError(f"shards = {shards}: expected at least 1")
    text, path = _scenario(scenario)
    # Read and checked here, with the CLI's messages: every worker runs
    # exactly the driver's scenario text, byte for byte.
    text = _native.check_scenario(text, path, replicates=replicates)
    started = False
    if address is not None:
        ray.init(address=address, ignore_reinit_error=True, **init)
    elif not ray.is_initialized():
        ray.init(include_dashboard=False, **init)
        started = True
    merger = None
    try:
        cwd = os.getcwd()
        # The actor reserves no CPU of its own: it would hold it until the
        # merge, and the tasks could starve on a small cluster. Its shard
        # runs beside them (one more thread than CPUs while it runs).
        merger = ray.remote(num_cpus=0)(_Merger).remote(text, path, cwd, replicates, cpus_per_shard)
        task = ray.remote(num_cpus=cpus_per_shard)(_shard)
        refs = [merger.shard.remote(1, shards)] + [
            task.remote(text, path, cwd, k, shards, replicates, cpus_per_shard)
            for k in range(2, shards + 1)
        ]
        parts = ray.get(refs)
        outputs = ray.get(merger.merge.remote(parts, None if out is None else os.fspath(out)))
    finally:
        if merger is not None:
            ray.kill(merger)
        if started:
            ray.shutdown()
    return Report(outputs)
