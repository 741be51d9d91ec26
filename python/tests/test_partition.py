"""inspect and partition: paths, DataFrames and arrays give the same answers,
and the same as the command line."""

import json

import numpy as np
import pandas as pd
import pytest

import spillover
from conftest import cli, data

FACEBOOK = data("facebook_combined.txt")


@pytest.fixture(scope="module")
def facebook():
    # SNAP's file has trailing spaces on some lines.
    return pd.read_csv(FACEBOOK, sep=r"\s+", header=None, names=["source", "target"])


def test_dataframe_and_path_give_the_same_partition(facebook):
    by_path = spillover.partition(FACEBOOK, method="louvain", seed=3)
    by_frame = spillover.partition(facebook, method="louvain", seed=3)
    a = by_path.clusters.sort_values("user").reset_index(drop=True)
    b = by_frame.clusters.sort_values("user").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert by_path.quality == by_frame.quality
    assert a["user"].dtype == facebook["source"].dtype
    # Shuffled rows and swapped columns name the same graph.
    shuffled = facebook.sample(frac=1.0, random_state=1)[["target", "source"]]
    shuffled.columns = ["source", "target"]
    c = spillover.partition(shuffled, seed=3).clusters.sort_values("user").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, c)


def test_partition_matches_the_command_line(tmp_path):
    out = tmp_path / "clusters.tsv"
    p = cli("partition", str(FACEBOOK), "--method", "leiden", "--seed", "5", "--out", str(out), "--json")
    quality = json.loads(p.stdout)["quality"]
    py = spillover.partition(FACEBOOK, method="leiden", seed=5)
    assert py.quality == quality
    written = pd.read_csv(out, sep="\t", comment="#", header=None, names=["user", "cluster"])
    merged = written.merge(py.clusters, on="user", suffixes=("_cli", "_py"))
    assert len(merged) == len(py.clusters) == len(written) == 4039
    # Same clusters up to naming: a one-to-one map between the labels.
    pairs = merged[["cluster_cli", "cluster_py"]].drop_duplicates()
    assert pairs["cluster_cli"].is_unique and pairs["cluster_py"].is_unique


def test_arrays_and_string_ids(facebook):
    src, dst = facebook["source"].to_numpy(), facebook["target"].to_numpy()
    frame = spillover.partition(facebook, method="components").clusters
    as_tuple = spillover.partition((src, dst), method="components").clusters
    as_matrix = spillover.partition(np.column_stack([src, dst]), method="components").clusters
    pd.testing.assert_frame_equal(frame, as_tuple)
    pd.testing.assert_frame_equal(frame, as_matrix)
    named = spillover.partition(
        pd.DataFrame({"from": ["ann", "bob", "cy", "dee"], "to": ["bob", "cy", "ann", "eve"]}),
        method="components",
    ).clusters
    assert list(named["user"]) == ["ann", "bob", "cy", "dee", "eve"]
    assert named.groupby("cluster").size().sort_values().tolist() == [2, 3]


def test_ids_of_mixed_types_that_print_alike_are_refused():
    with pytest.raises(ValueError, match="same text"):
        spillover.partition(pd.DataFrame({"source": [1, "1"], "target": [2, 3]}, dtype=object))


def test_weights_and_directed_edges():
    edges = pd.DataFrame({"source": [1, 2, 3, 3], "target": [2, 3, 1, 4], "weight": [1.0, 2.0, 3.0, 0.5]})
    info = spillover.inspect(edges, directed=True)
    assert info["summary"]["nodes"] == 4 and info["summary"]["edges"] == 4
    assert info["summary"]["weighted"] is True


def test_inspect_matches_the_command_line():
    p = cli("inspect", str(FACEBOOK), "--json")
    expected = json.loads(p.stdout)
    got = spillover.inspect(FACEBOOK)
    assert got["summary"] == expected["summary"]
    assert got["read"] == expected["read"]


def test_calculators_match_the_command_line():
    cases = [
        (spillover.deff(20, 0.05, cv=0.65, clusters=100), ["deff", "--mean-cluster-size", "20", "--icc", "0.05", "--cv", "0.65", "--clusters", "100"]),
        (spillover.power(0.1, 2000, mean_cluster_size=50, icc=0.02), ["power", "--effect", "0.1", "--n-per-arm", "2000", "--mean-cluster-size", "50", "--icc", "0.02"]),
        (spillover.mde(10000, baseline=0.1), ["mde", "--n-total", "10000", "--baseline", "0.1"]),
        (spillover.clusters_needed(0.05, mean_cluster_size=100, icc=0.01), ["clusters-needed", "--effect", "0.05", "--mean-cluster-size", "100", "--icc", "0.01"]),
    ]
    for answer, args in cases:
        assert dict(answer) == json.loads(cli(*args, "--json").stdout), args
        assert str(answer) == cli(*args).stdout, args
