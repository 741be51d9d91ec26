"""Side-by-side Louvain/Leiden timing: spillover vs networkit PLM and igraph.

Not part of `cargo test`. Needs `pip install igraph networkit` and a release build
(`cargo build --release`). Usage, from the repository root:

    python3 benches/compare_louvain.py [n]      # n = 100000 by default

It generates the planted partition (n nodes, blocks of 100, mean degree 20,
mu 0.2) with spillover, then times each library on the same edge list, in one
go, best of 3 runs, partitioning only (reading excluded), and prints modularity.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.path.join(root, "target", "release", "spillover")
tmp = tempfile.mkdtemp()
edges = os.path.join(tmp, "planted.tsv")
subprocess.run([binary, "generate", "--quiet", "--seed", "1", "--out", edges, "sbm", "--n", str(n),
                "--blocks", str(n // 100), "--mean-degree", "20", "--mu", "0.2"], check=True)


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
    for method in ("louvain", "leiden"):
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
    t, c = best(lambda: g.community_leiden(objective_function="modularity", n_iterations=2))
    rows.append(("igraph community_leiden (modularity, 2 iterations)", 1, t, g.modularity(c.membership)))
except ImportError:
    print("igraph not installed: pip install igraph")

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

print(f"planted partition: n = {n}, blocks of 100, mean degree 20, mu = 0.2")
print(f"{'implementation':<52} {'threads':>7} {'seconds':>9} {'modularity':>11}")
for name, threads, secs, q in rows:
    print(f"{name:<52} {threads:>7} {secs:>9.3f} {q:>11.4f}")
