"""spillover.ray.run on a real local Ray (two workers on 127.0.0.1): the
merged report is byte-identical to spillover.run."""

import os

# Ray on Linux replaces a loopback address by the machine's own address;
# this keeps the whole local cluster on 127.0.0.1 (set before importing ray).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import pytest  # noqa: E402
import ray  # noqa: E402

import spillover  # noqa: E402
import spillover.ray  # noqa: E402

QUICKSTART = "scenarios/quickstart.toml"


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield
    ray.shutdown()


def test_four_shards_on_two_workers_equal_one_run(local_ray, tmp_path):
    single = spillover.run(QUICKSTART, progress=False)
    sharded = spillover.ray.run(QUICKSTART, shards=4, out=str(tmp_path / "merged"))
    assert sharded.files == single.files
    assert (tmp_path / "merged" / "summary.csv").read_text() == single.files["summary.csv"]
    # One local node on the loopback address, two CPUs: two workers.
    assert [n["NodeManagerAddress"] for n in ray.nodes()] == ["127.0.0.1"]
    assert ray.cluster_resources()["CPU"] == 2


def test_ray_errors_are_the_library_errors(local_ray, tmp_path):
    bad = tmp_path / "s.toml"
    bad.write_text('name = "x"\nreplicates = 1\n[graph]\nmodel = "sbm"\n[[design]]\nname = "u"\nunit = "user"\n')
    with pytest.raises(ValueError) as e:
        spillover.ray.run(bad, shards=2)
    with pytest.raises(ValueError) as direct:
        spillover.run(bad)
    assert str(e.value) == str(direct.value)
    with pytest.raises(FileNotFoundError):
        spillover.ray.run(tmp_path / "absent.toml", shards=2)


def test_more_shards_than_cpus_finish(local_ray):
    """Five shards on two CPUs: the merging actor holds no CPU, so none starves."""
    single = spillover.run(QUICKSTART, replicates=320, progress=False)
    sharded = spillover.ray.run(QUICKSTART, shards=5, replicates=320)
    assert sharded.files == single.files
