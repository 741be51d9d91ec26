"""spillover: which randomization design gives an honest, powerful answer for
an A/B test on a network where one user's treatment changes another's outcome?

The Python face of the ``spillover`` Rust library. Every function calls the
same code as the command line, so results, output bytes and error messages
are the command line's:

- :func:`run` runs a scenario (a TOML file or a dict of the same structure)
  and returns a :class:`Report` (``summary``, ``replicates``, ``designs``,
  ``estimand``, ``recommendation``, ``to_html``; a notebook shows its table).
- :func:`inspect` and :func:`partition` take edges as a path, a pandas
  DataFrame (``source``, ``target`` and optional ``weight`` columns) or NumPy
  arrays; user ids keep their type.
- :func:`deff`, :func:`power`, :func:`mde`, :func:`clusters_needed`: the
  closed-form calculators, with the command line's arguments.
- :mod:`spillover.ray`: the same run split into shards over a Ray cluster.

The GIL is released while the library works; progress goes to a callback
``progress(done, total)`` or, when ``tqdm`` is installed, a progress bar;
Ctrl-C stops a run cleanly (``KeyboardInterrupt``, nothing written). Bad
input raises ``ValueError`` and unreadable files ``OSError`` (e.g.
``FileNotFoundError``), each with the command line's message.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np
import pandas as pd

from . import _native

__version__: str = _native.__version__

__all__ = [
    "Report",
    "Answer",
    "Partition",
    "run",
    "inspect",
    "partition",
    "deff",
    "power",
    "mde",
    "clusters_needed",
]

PathLike = Union[str, "os.PathLike[str]"]
Scenario = Union[PathLike, Dict[str, Any]]
Edges = Union[PathLike, pd.DataFrame, np.ndarray, Tuple[Any, ...], List[Any]]
Progress = Union[Callable[[int, int], Any], bool, None]


class Report:
    """The diagnosis of a scenario: what ``spillover run`` writes, in memory.

    Attributes:
        files: output file name → text (``report.json``, ``summary.csv``,
            ``replicates.csv``, and ``balance.csv`` with a population file),
            byte-identical to the command line's files.
        html: ``report.html`` with its figures inline.
        table: the table the command line prints.
        written: paths written when ``out`` was given.
    """

    def __init__(self, outputs: Dict[str, Any]) -> None:
        self.files: Dict[str, str] = dict(outputs["files"])
        self.html: str = outputs["html"]
        self.table: str = outputs["table"]
        self.written: List[str] = list(outputs["written"])
        self._json: Dict[str, Any] = json.loads(self.files["report.json"])
        self._frames: Dict[str, pd.DataFrame] = {}

    def _frame(self, name: str) -> pd.DataFrame:
        if name not in self._frames:
            self._frames[name] = pd.read_csv(io.StringIO(self.files[name]))
        return self._frames[name].copy()

    @property
    def json(self) -> Dict[str, Any]:
        """``report.json`` as a dict."""
        return self._json

    @property
    def summary(self) -> pd.DataFrame:
        """One row per design × estimator: the rows and columns of ``summary.csv``."""
        return self._frame("summary.csv")

    @property
    def replicates(self) -> pd.DataFrame:
        """One row per replicate × design × estimator: ``replicates.csv``."""
        return self._frame("replicates.csv")

    @property
    def balance(self) -> Optional[pd.DataFrame]:
        """Covariate balance (``balance.csv``), with a population file's covariates."""
        return self._frame("balance.csv") if "balance.csv" in self.files else None

    @property
    def designs(self) -> List[Dict[str, Any]]:
        """Per-design diagnosis (clusters, design effect, estimators, balance) as dicts."""
        return self._json["designs"]

    @property
    def estimand(self) -> Dict[str, Any]:
        """The exact global average treatment effect and how it splits."""
        return self._json["estimand"]

    @property
    def recommendation(self) -> Dict[str, Any]:
        """The recommended design, the runner-up, and why, in words."""
        return self._json["recommendation"]

    def to_html(self, path: PathLike) -> None:
        """Write ``report.html`` (figures inline) to ``path``."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.html)

    def _repr_html_(self) -> str:
        text = self.recommendation.get("text") or []
        if isinstance(text, str):
            text = [text]
        advice = "".join(f"<p>{_escape(str(t))}</p>" for t in text)
        cols = [
            c
            for c in ["design", "estimator", "bias", "sd", "rmse", "coverage", "power", "type1_error"]
            if c in self.summary.columns
        ]
        table = self.summary[cols] if cols else self.summary
        return advice + table.to_html(index=False, float_format=lambda x: f"{x:.4g}")

    def __repr__(self) -> str:
        return self.table


def _escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _scenario(scenario: Scenario) -> Tuple[Optional[str], str]:
    """(text, path): text ``None`` means the library reads ``path``."""
    if isinstance(scenario, dict):
        return _native.toml_from_json(json.dumps(scenario)), "<dict>"
    if isinstance(scenario, (str, os.PathLike)):
        return None, os.fspath(scenario)
    raise TypeError(
        f"scenario: expected a path or a dict, got {type(scenario).__name__}"
    )


class _Bar:
    """A callback for tqdm, when it is installed."""

    def __init__(self, desc: str) -> None:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]

        self.bar = tqdm(total=0, desc=desc, unit="rep", leave=False)

    def __call__(self, done: int, total: int) -> None:
        self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _progress(progress: Progress, desc: str) -> Tuple[Optional[Callable[[int, int], Any]], Optional[_Bar]]:
    if progress is False:
        return None, None
    if callable(progress):
        return progress, None
    try:
        bar = _Bar(desc)
    except ImportError:
        return None, None
    return bar, bar


def run(
    scenario: Scenario,
    *,
    replicates: Optional[int] = None,
    threads: Optional[int] = None,
    out: Optional[PathLike] = None,
    progress: Progress = None,
) -> Report:
    """Run a scenario: simulate every design × estimator and diagnose them.

    Args:
        scenario: a scenario file (TOML) or a dict with the TOML's structure
            (relative paths in a dict are relative to the working directory).
        replicates: replicates per design, overriding the scenario's.
        threads: worker threads (default: all cores); results do not depend on it.
        out: also write every output (plots included) to this folder, as
            ``spillover run --out`` does: staged, then swapped in whole.
        progress: ``progress(done, total)`` called as replicates finish;
            ``None`` shows a tqdm bar when tqdm is installed, ``False`` nothing.

    Returns:
        The :class:`Report`; ``report.files["summary.csv"]`` is byte-identical
        to the command line's ``summary.csv``.

    Raises:
        ValueError: bad input, with the command line's message (file and line).
        OSError: a file that cannot be read (``FileNotFoundError`` if missing).
        KeyboardInterrupt: Ctrl-C; the run stops before its next replicate.

    Example:
        >>> import spillover
        >>> r = spillover.run("scenarios/quickstart.toml", replicates=50)  # doctest: +SKIP
        >>> r.summary[["design", "estimator", "bias", "power"]]  # doctest: +SKIP
    """
    text, path = _scenario(scenario)
    cb, bar = _progress(progress, "replicates")
    try:
        outputs = _native.run(
            text,
            path,
            replicates=replicates,
            threads=threads,
            out=None if out is None else os.fspath(out),
            progress=cb,
        )
    finally:
        if bar is not None:
            bar.close()
    return Report(outputs)


class _EdgeInput(NamedTuple):
    path: Optional[str]
    names: List[str]
    uniques: Any
    src: np.ndarray
    dst: np.ndarray
    weights: Optional[np.ndarray]


_SOURCE = ["source", "src", "from", "sender", "u", "i", "node1", "user1"]
_TARGET = ["target", "dst", "to", "receiver", "recipient", "v", "j", "node2", "user2"]
_WEIGHT = ["weight", "w", "count", "messages"]


def _pick(columns: List[str], names: List[str]) -> Optional[str]:
    lower = {str(c).lower(): c for c in columns}
    for n in names:
        if n in lower:
            return lower[n]
    return None


def _edges(edges: Edges) -> _EdgeInput:
    if isinstance(edges, (str, os.PathLike)):
        return _EdgeInput(os.fspath(edges), [], None, np.empty(0), np.empty(0), None)
    weights = None
    if isinstance(edges, pd.DataFrame):
        cols = list(edges.columns)
        s, t = _pick(cols, _SOURCE), _pick(cols, _TARGET)
        w = _pick(cols, _WEIGHT)
        if s is None or t is None:
            if len(cols) not in (2, 3):
                raise ValueError(
                    f"edges: expected columns source, target (and optional weight), found {cols}"
                )
            s, t = cols[0], cols[1]
            w = cols[2] if len(cols) == 3 else None
        src, dst = edges[s], edges[t]
        if w is not None:
            weights = edges[w]
    elif isinstance(edges, np.ndarray) and edges.ndim == 2 and edges.shape[1] in (2, 3):
        src, dst = edges[:, 0], edges[:, 1]
        if edges.shape[1] == 3:
            weights = edges[:, 2]
    elif isinstance(edges, (tuple, list)) and len(edges) in (2, 3):
        src, dst = edges[0], edges[1]
        if len(edges) == 3:
            weights = edges[2]
    else:
        raise TypeError(
            "edges: expected a path, a DataFrame with source and target columns, "
            "an (m, 2) or (m, 3) array, or a tuple (source, target[, weight]) of arrays"
        )
    src, dst = pd.Series(np.asarray(src)), pd.Series(np.asarray(dst))
    if len(src) != len(dst):
        raise ValueError(
            f"edges: {len(src)} sources but {len(dst)} targets: expected one of each per edge"
        )
    both = pd.concat([src, dst], ignore_index=True)
    codes, uniques = pd.factorize(both, sort=False)
    if (codes < 0).any():
        k = int(np.flatnonzero(codes < 0)[0])
        which = "source" if k < len(src) else "target"
        raise ValueError(
            f"edges: row {k % len(src)}: missing {which}: expected a user id in every row"
        )
    if len(uniques) > np.iinfo(np.uint32).max:
        raise ValueError("edges: more than 4,294,967,295 distinct users")
    names = [str(u) for u in uniques]
    if len(set(names)) != len(names):
        seen: Dict[str, Any] = {}
        for u, name in zip(uniques, names):
            if name in seen:
                raise ValueError(
                    f"edges: user ids {seen[name]!r} and {u!r} are different values with the "
                    f"same text {name!r}: expected ids of one type"
                )
            seen[name] = u
    codes = codes.astype(np.uint32)
    m = len(src)
    w = None
    if weights is not None:
        try:
            w = np.ascontiguousarray(np.asarray(weights, dtype=np.float64))
        except (TypeError, ValueError) as e:
            raise ValueError(f"edges: weight: expected numbers ({e})") from None
    return _EdgeInput(
        None,
        names,
        uniques,
        np.ascontiguousarray(codes[:m]),
        np.ascontiguousarray(codes[m:]),
        w,
    )


def _labels(labels: List[str]) -> Any:
    """File labels as integers when every label is one (the file's ids were numbers)."""
    def canonical(x: str) -> bool:
        return x.isascii() and x.isdigit() and len(x) < 19 and (x == "0" or x[0] != "0")

    if labels and all(canonical(x) for x in labels):
        return np.array(labels, dtype=np.int64)
    return np.array(labels, dtype=object)


def inspect(
    edges: Edges,
    directed: bool = False,
    *,
    third_column: str = "auto",
    header: str = "auto",
    self_loops: str = "drop",
    duplicates: str = "sum",
    seed: int = 1,
) -> Dict[str, Any]:
    """Size, degrees, components, clustering (and reciprocity) of a network.

    ``edges`` is a path (read as ``spillover inspect`` reads it), a DataFrame
    with ``source``, ``target`` (and optional ``weight``) columns, an
    (m, 2) / (m, 3) array, or a tuple of arrays. Returns the command line's
    ``--json`` answer as a dict (``summary``, and ``read`` or ``build``).
    """
    e = _edges(edges)
    if e.path is not None:
        text = _native.inspect_file(
            e.path,
            directed=directed,
            third_column=third_column,
            header=header,
            self_loops=self_loops,
            duplicates=duplicates,
            seed=seed,
        )
    else:
        text = _native.inspect_edges(
            e.names,
            e.src,
            e.dst,
            weights=e.weights,
            directed=directed,
            self_loops=self_loops,
            duplicates=duplicates,
            seed=seed,
        )
    return json.loads(text)


class Partition(NamedTuple):
    """Clusters of a partition and their quality report."""

    clusters: pd.DataFrame
    """One row per user: ``user`` (the input's ids and type), ``cluster``."""
    quality: Dict[str, Any]
    """Sizes, modularity, cut edges, conductance: ``spillover partition --json``'s ``quality``."""


def partition(
    edges: Edges,
    method: str = "louvain",
    *,
    directed: bool = False,
    seed: int = 1,
    threads: Optional[int] = None,
    third_column: str = "auto",
    header: str = "auto",
    self_loops: str = "drop",
    duplicates: str = "sum",
    **options: Any,
) -> Partition:
    """Partition a network into experimental clusters.

    Args:
        edges: a path, a DataFrame (``source``, ``target``, optional
            ``weight``), an (m, 2)/(m, 3) array or a tuple of arrays.
        method: ``louvain``, ``leiden``, ``balanced`` (METIS), ``ldg``,
            ``components``, ``label-propagation``, ``random``.
        seed: the same seed gives the same clusters on any number of threads,
            and the same edges as a file or a DataFrame give the same clusters.
        options: the method's settings as in a scenario's
            ``[design.partition]``: ``resolution``, ``max_size``, ``min_size``,
            ``parts``, ``imbalance``, ``passes``, ``refine``.

    Returns:
        ``Partition(clusters, quality)``: a DataFrame ``user, cluster`` and
        the quality report.

    Example:
        >>> import pandas as pd, spillover
        >>> edges = pd.DataFrame({"source": ["a", "b", "c", "d"], "target": ["b", "c", "a", "e"]})
        >>> p = spillover.partition(edges, method="components")
        >>> p.clusters.groupby("cluster").size().tolist()
        [3, 2]
    """
    spec = json.dumps({"method": method, **options})
    e = _edges(edges)
    if e.path is not None:
        labels, clusters, quality = _native.partition_file(
            e.path,
            spec,
            directed=directed,
            third_column=third_column,
            header=header,
            self_loops=self_loops,
            duplicates=duplicates,
            seed=seed,
            threads=threads,
        )
        users = _labels(labels)
    else:
        order, clusters, quality = _native.partition_edges(
            e.names,
            e.src,
            e.dst,
            spec,
            weights=e.weights,
            directed=directed,
            self_loops=self_loops,
            duplicates=duplicates,
            seed=seed,
            threads=threads,
        )
        users = e.uniques.take(order.astype(np.intp))
    frame = pd.DataFrame({"user": users, "cluster": clusters.astype(np.int64)})
    return Partition(frame, json.loads(quality))


class Answer(dict):  # type: ignore[type-arg]
    """A calculator's answer: the command line's ``--json`` as a dict, and
    ``.text``, what it prints."""

    text: str

    def __init__(self, answer: Tuple[str, str]) -> None:
        super().__init__(json.loads(answer[0]))
        self.text = answer[1]

    def __str__(self) -> str:
        return self.text


def deff(
    mean_cluster_size: float,
    icc: float,
    cv: float = 0.0,
    clusters: Optional[int] = None,
    check: bool = False,
) -> Answer:
    """Design effect 1 + ICC·[(m − 1) + m·CV²] (``spillover deff``).

    >>> round(spillover.deff(20, 0.05, 0.65)["design_effect"], 4)  # doctest: +SKIP
    2.3725
    """
    return Answer(_native.deff(mean_cluster_size, icc, cv=cv, clusters=clusters, check=check))


def power(
    effect: float,
    n_per_arm: float,
    *,
    sd: float = 1.0,
    baseline: Optional[float] = None,
    alpha: float = 0.05,
    mean_cluster_size: Optional[float] = None,
    icc: float = 0.0,
    cv: float = 0.0,
) -> Answer:
    """Power to detect ``effect`` with ``n_per_arm`` users per arm (``spillover power``);
    ``baseline`` makes the metric binary."""
    return Answer(
        _native.power(
            effect,
            n_per_arm,
            sd=sd,
            baseline=baseline,
            alpha=alpha,
            mean_cluster_size=mean_cluster_size,
            icc=icc,
            cv=cv,
        )
    )


def mde(
    n_total: float,
    *,
    treated_share: float = 0.5,
    power: float = 0.8,
    sd: float = 1.0,
    baseline: Optional[float] = None,
    alpha: float = 0.05,
    mean_cluster_size: Optional[float] = None,
    icc: float = 0.0,
    cv: float = 0.0,
) -> Answer:
    """Minimum detectable effect with ``n_total`` users (``spillover mde``)."""
    return Answer(
        _native.mde(
            n_total,
            treated_share=treated_share,
            power=power,
            sd=sd,
            baseline=baseline,
            alpha=alpha,
            mean_cluster_size=mean_cluster_size,
            icc=icc,
            cv=cv,
        )
    )


def clusters_needed(
    effect: float,
    *,
    power: float = 0.8,
    sd: float = 1.0,
    baseline: Optional[float] = None,
    alpha: float = 0.05,
    mean_cluster_size: Optional[float] = None,
    icc: float = 0.0,
    cv: float = 0.0,
) -> Answer:
    """Clusters per arm needed to detect ``effect`` (``spillover clusters-needed``)."""
    return Answer(
        _native.clusters_needed(
            effect,
            power=power,
            sd=sd,
            baseline=baseline,
            alpha=alpha,
            mean_cluster_size=mean_cluster_size,
            icc=icc,
            cv=cv,
        )
    )
