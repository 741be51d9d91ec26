"""Side-by-side Louvain/Leiden timing: spillover vs networkit PLM and igraph.

Not part of `cargo test`. Needs `pip install igraph networkit` and a release build
(`cargo build --release`). Usage, from the repository root:

    python3 benches/compare_louvain.py [n] [graph] [--louvain-only] [--no-igraph]

n = 100000 by default; graph is `planted` (blocks of 100, mean degree 20,
mu 0.2; the default), `ba` (Barabási–Albert, m = 5: hubs of degree in the
thousands) or `lfr` (the LFR-like generator's defaults: power-law degrees and
community sizes). It generates the graph with spillover, then times each
library on the same edge list, in one go, best of 3 runs, partitioning only
(reading excluded), and prints modularity. `--louvain-only` skips Leiden,
`--no-igraph` skips igraph (slow at a million nodes).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

args = [a for a in sys.argv[1:] if not a.startswith("--")]
flags = {a for a in sys.argv[1:] if a.startswith("--")}
n = int(args[0]) if args else 100_000
kind = args[1] if len(args) > 1 else "planted"
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.path.join(root, "target", "release", "spillover")
tmp = tempfile.mkdtemp()
edges = os.path.join(tmp, f"{kind}.tsv")
model = {
    "planted": ["sbm", "--n", str(n), "--blocks", str(n // 100), "--mean-degree", "20", "--mu", "0.2"],
    "ba": ["ba", "--n", str(n), "--m", "5"],
    "lfr": ["lfr", "--n", str(n)],
}[kind]
subprocess.run([binary, "generate", "--quiet", "--seed", "1", "--out", edges] + model, check=True)
# Node ids are 0..n-1 in the written file; isolated nodes are not written.
n = 1 + max(max(int(x) for x in line.split()[:2]) for line in open(edges) if not line.startswith("#"))


def best(f, runs=3):
    out = None
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


rows = []
for threads in (1, 2):
    for method in ("louvain",) if "--louvain-only" in flags else ("louvain", "leiden"):
        secs, mods = [], []
        for _ in range(3):
            env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
            r = subprocess.run([binary, "partition", edges, "--method", method, "--json"], check=True,
                               capture_output=True, text=True, env=env)
            v = json.loads(r.stdout)
            secs.append(v["seconds"])
            mods.append(v["quality"]["modularity"])
        rows.append((f"spillover {method}", threads, min(secs), mods[0]))

try:
    if "--no-igraph" in flags:
        raise ImportError("skipped")
    import igraph as ig
    g = ig.Graph.Read_Ncol(edges, directed=False) if False else None
    pairs = []
    with open(edges) as f:
        for line in f:
            if line.startswith("#"):
                continue
            u, v = line.split()[:2]
            pairs.append((int(u), int(v)))
    g = ig.Graph(n=n, edges=pairs)
    t, c = best(lambda: g.community_multilevel())
    rows.append(("igraph community_multilevel", 1, t, g.modularity(c.membership)))
    if "--louvain-only" not in flags:
        t, c = best(lambda: g.community_leiden(objective_function="modularity", n_iterations=2))
        rows.append(("igraph community_leiden (modularity, 2 iterations)", 1, t, g.modularity(c.membership)))
except ImportError as e:
    print(f"igraph skipped ({e}): pip install igraph")

try:
    import networkit as nk
    gk = nk.readGraph(edges, nk.Format.EdgeListTabZero, commentPrefix="#")
    for threads in (1, 2):
        nk.setNumberOfThreads(threads)
        def plm():
            algo = nk.community.PLM(gk, refine=False, gamma=1.0)
            algo.run()
            return algo.getPartition()
        t, part = best(plm)
        rows.append(("networkit PLM", threads, t, nk.community.Modularity().getQuality(part, gk)))
except ImportError:
    print("networkit not installed: pip install networkit")

print(f"{kind} graph: n = {n} ({' '.join(model)})")
print(f"{'implementation':<52} {'threads':>7} {'seconds':>9} {'modularity':>11}")
for name, threads, secs, q in rows:
    print(f"{name:<52} {threads:>7} {secs:>9.3f} {q:>11.4f}")
