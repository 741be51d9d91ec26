"""Run a scenario sharded over a local Ray instance and time it (BENCHMARKS.md).

    python benches/ray_shards.py SCENARIO --shards N [--cpus 2] [--out DIR] [--replicates R]

Starts Ray on this machine with --cpus worker slots (two by default, on
127.0.0.1), runs spillover.ray.run with N shards (one thread each), merges,
writes the outputs to --out, and prints the wall time of the whole call
(Ray's start included) and of the sharded run alone.
"""

import argparse
import os
import time

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # keep Ray on 127.0.0.1
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import ray  # noqa: E402

import spillover.ray  # noqa: E402


def main() -> None:
    a = argparse.ArgumentParser()
    a.add_argument("scenario")
    a.add_argument("--shards", type=int, default=2)
    a.add_argument("--cpus", type=int, default=2)
    a.add_argument("--out")
    a.add_argument("--replicates", type=int)
    args = a.parse_args()
    t0 = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    t1 = time.perf_counter()
    spillover.ray.run(args.scenario, shards=args.shards, out=args.out, replicates=args.replicates)
    t2 = time.perf_counter()
    ray.shutdown()
    print(f"ray start {t1 - t0:.1f} s, sharded run and merge {t2 - t1:.1f} s")


if __name__ == "__main__":
    main()
