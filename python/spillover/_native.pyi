"""Type stubs of ``spillover._native``, the Rust half of the package (python/src/lib.rs)."""

from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import numpy.typing as npt

__version__: str

class Session:
    """A scenario prepared once: run shards and merge them without preparing again."""

    def __init__(
        self,
        text: Optional[str],
        path: str,
        replicates: Optional[int] = None,
        threads: Optional[int] = None,
    ) -> None: ...
    def run_shard(self, k: int, n: int) -> bytes:
        """Shard ``k`` of ``n``, as bytes."""
    def merge(self, shards: List[bytes], out: Optional[str] = None) -> Dict[str, Any]:
        """Merge shards into the outputs of one run (as :func:`run` returns them)."""

def check_scenario(text: Optional[str], path: str, replicates: Optional[int] = None) -> str:
    """Parse and check a scenario without preparing it; returns its text."""

def toml_from_json(json: str) -> str:
    """A scenario dict (as JSON) as TOML text."""

def run(
    text: Optional[str],
    path: str,
    replicates: Optional[int] = None,
    threads: Optional[int] = None,
    out: Optional[str] = None,
    progress: Optional[Callable[[int, int], Any]] = None,
) -> Dict[str, Any]:
    """Run a scenario (``text``, or the file at ``path``): files, html, table, written."""

def run_shard(
    text: Optional[str],
    path: str,
    k: int,
    n: int,
    replicates: Optional[int] = None,
    threads: Optional[int] = None,
) -> bytes:
    """Shard ``k`` of ``n`` of a scenario, as bytes."""

def merge(
    shards: List[bytes], out: Optional[str] = None, threads: Optional[int] = None
) -> Dict[str, Any]:
    """Merge shards into the outputs of one run (as :func:`run` returns them)."""

def inspect_file(
    path: str,
    directed: bool = False,
    third_column: str = "auto",
    header: str = "auto",
    self_loops: str = "drop",
    duplicates: str = "sum",
    seed: int = 1,
) -> str:
    """JSON of {file, read, summary}."""

def inspect_edges(
    names: List[str],
    src: npt.NDArray[np.uint32],
    dst: npt.NDArray[np.uint32],
    weights: Optional[npt.NDArray[np.float64]] = None,
    directed: bool = False,
    self_loops: str = "drop",
    duplicates: str = "sum",
    seed: int = 1,
) -> str:
    """JSON of {build, summary}."""

def partition_file(
    path: str,
    spec_json: str,
    directed: bool = False,
    third_column: str = "auto",
    header: str = "auto",
    self_loops: str = "drop",
    duplicates: str = "sum",
    seed: int = 1,
    threads: Optional[int] = None,
) -> Tuple[List[str], npt.NDArray[np.uint32], str]:
    """(labels, cluster of each, quality JSON)."""

def partition_edges(
    names: List[str],
    src: npt.NDArray[np.uint32],
    dst: npt.NDArray[np.uint32],
    spec_json: str,
    weights: Optional[npt.NDArray[np.float64]] = None,
    directed: bool = False,
    self_loops: str = "drop",
    duplicates: str = "sum",
    seed: int = 1,
    threads: Optional[int] = None,
) -> Tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint32], str]:
    """(order: dense id → index into names, cluster of each dense id, quality JSON)."""

def deff(
    mean_cluster_size: float,
    icc: float,
    cv: float = 0.0,
    clusters: Optional[int] = None,
    check: bool = False,
) -> Tuple[str, str]:
    """(JSON, text) of ``spillover deff``."""

def power(
    effect: float,
    n_per_arm: float,
    sd: float = 1.0,
    baseline: Optional[float] = None,
    alpha: float = 0.05,
    mean_cluster_size: Optional[float] = None,
    icc: float = 0.0,
    cv: float = 0.0,
) -> Tuple[str, str]:
    """(JSON, text) of ``spillover power``."""

def mde(
    n_total: float,
    treated_share: float = 0.5,
    power: float = 0.8,
    sd: float = 1.0,
    baseline: Optional[float] = None,
    alpha: float = 0.05,
    mean_cluster_size: Optional[float] = None,
    icc: float = 0.0,
    cv: float = 0.0,
) -> Tuple[str, str]:
    """(JSON, text) of ``spillover mde``."""

def clusters_needed(
    effect: float,
    power: float = 0.8,
    sd: float = 1.0,
    baseline: Optional[float] = None,
    alpha: float = 0.05,
    mean_cluster_size: Optional[float] = None,
    icc: float = 0.0,
    cv: float = 0.0,
) -> Tuple[str, str]:
    """(JSON, text) of ``spillover clusters-needed``."""
