"""Side-by-side Louvain/Leiden timing: spillover vs networkit PLM and igraph.

Not part of `cargo test`. Needs `pip install igraph networkit` and a release build
(`cargo build --release`). Usage, from the repository root:

    python3 benches/compare_louvain.py [n] [graph ...] [--louvain-only] [--no-igraph] [--runs R]
                                       [--leiden-passes K,K,...]

n = 100000 by default; graphs are `planted` (blocks of 100, mean degree 20,
mu 0.2), `ba` (Barabási–Albert, m = 5: hubs of degree in the thousands) and
`lfr` (the LFR-like generator's defaults: power-law degrees and community
sizes); `planted` alone by default, several in one go when named. Each graph
is generated once with spillover; every implementation then runs on the same
edge list in a process of its own, so its peak memory (the child's maximum
resident set, reading the graph included) is its own. Times are partitioning
only (reading excluded), best of R runs (3 by default), on 1 and 2 threads
where the implementation has threads (igraph has none). Modularity at
resolution 1 as each library reports it, of the fastest run (the one whose
time is shown), and its range over the R runs (networkit's parallel PLM
varies from run to run; spillover's partition is the same in every run).
spillover's Louvain refines by default (its multilevel refinement, as
networkit's PLM with refine=True); rows for `--no-refine` (two threads) and
for networkit's PLM with and without refine are shown beside it.
`--louvain-only` skips Leiden, `--no-igraph` skips igraph (slow at a
million nodes), `--no-multilevel` its
multilevel (minutes per run on the BA graph). `--leiden-passes 2,6`
adds rows for spillover's Leiden capped at those whole passes (`--passes K`,
two threads); its default is at most 10, until the partition stops changing.
igraph's Leiden is `community_leiden(objective_function="modularity")` at its
default of two iterations.
"""
import json
import os
import subprocess
import sys
import tempfile

args = [a for a in sys.argv[1:] if not a.startswith("--")]
flags = [a for a in sys.argv[1:] if a.startswith("--")]
runs = 3
if "--runs" in sys.argv:
    runs = int(sys.argv[sys.argv.index("--runs") + 1])
    args = [a for a in args if a != str(runs)]
leiden_passes = []
if "--leiden-passes" in sys.argv:
    value = sys.argv[sys.argv.index("--leiden-passes") + 1]
    leiden_passes = [int(k) for k in value.split(",")]
    args = [a for a in args if a != value]
n_nodes = int(args[0]) if args and args[0].isdigit() else 100_000
kinds = [a for a in args if not a.isdigit()] or ["planted"]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.path.join(root, "target", "release", "spillover")
tmp = tempfile.mkdtemp()

# Each child prints one JSON line: {"seconds": [...], "modularity": q, "clusters": k}.
NETWORKIT = r"""
import json, sys, time
import networkit as nk
path, threads, runs, refine = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
g = nk.readGraph(path, nk.Format.EdgeListTabZero, commentPrefix="#")
nk.setNumberOfThreads(threads)
secs, qs, ks = [], [], []
for _ in range(runs):
    t = time.perf_counter()
    algo = nk.community.PLM(g, refine=refine, gamma=1.0)
    algo.run()
    part = algo.getPartition()
    secs.append(time.perf_counter() - t)
    qs.append(nk.community.Modularity().getQuality(part, g))
    ks.append(part.numberOfSubsets())
print(json.dumps({"seconds": secs, "modularity": qs, "clusters": ks}))
"""
IGRAPH = r"""
import json, sys, time
import igraph as ig
path, method, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
pairs = []
with open(path) as f:
    for line in f:
        if not line.startswith("#"):
            u, v = line.split()[:2]
            pairs.append((int(u), int(v)))
n = 1 + max(max(p) for p in pairs)
g = ig.Graph(n=n, edges=pairs)
secs, qs, ks = [], [], []
for _ in range(runs):
    t = time.perf_counter()
    if method == "multilevel":
        c = g.community_multilevel()
    else:
        c = g.community_leiden(objective_function="modularity", n_iterations=2)
    secs.append(time.perf_counter() - t)
    qs.append(g.modularity(c.membership))
    ks.append(len(set(c.membership)))
print(json.dumps({"seconds": secs, "modularity": qs, "clusters": ks}))
"""


def child(argv, env=None):
    """Run argv; return its standard output and its peak resident memory in MiB."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"{argv[:3]} exited {p.returncode}")
    return out, usage.ru_maxrss / 1024


def fastest(secs, qs, ks):
    """The fastest run's time, modularity and cluster count, and the range of
    the modularity over all runs (spillover's is the same in every run)."""
    i = secs.index(min(secs))
    return secs[i], qs[i], ks[i], (min(qs), max(qs))


def spillover(path, method, threads, extra=()):
    secs, qs, ks, peak = [], [], [], 0.0
    for _ in range(runs):
        env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
        line, mib = child([binary, "partition", path, "--method", method, "--json", *extra], env)
        v = json.loads(line)
        secs.append(v["seconds"])
        peak = max(peak, mib)
        qs.append(v["quality"]["modularity"])
        ks.append(v["quality"]["clusters"])
    return (*fastest(secs, qs, ks), peak)


def python_child(code, *argv):
    line, mib = child([sys.executable, "-c", code, *map(str, argv)])
    v = json.loads(line)
    return (*fastest(v["seconds"], v["modularity"], v["clusters"]), mib)


print(f"{'graph':<8} {'implementation':<44} {'threads':>7} {'seconds':>8} {'modularity':>10} {'clusters':>8} "
      f"{'peak MiB':>8} {'modularity over runs':>21}", flush=True)
for kind in kinds:
    path = os.path.join(tmp, f"{kind}.tsv")
    model = {
        "planted": ["sbm", "--n", str(n_nodes), "--blocks", str(max(1, n_nodes // 100)), "--mean-degree", "20",
                    "--mu", "0.2"],
        "ba": ["ba", "--n", str(n_nodes), "--m", "5"],
        "lfr": ["lfr", "--n", str(n_nodes)],
    }[kind]
    subprocess.run([binary, "generate", "--quiet", "--seed", "1", "--out", path] + model, check=True)
    rows = []
    for method in ("louvain",) if "--louvain-only" in flags else ("louvain", "leiden"):
        for threads in (1, 2):
            rows.append((f"spillover {method}", threads, *spillover(path, method, threads)))
        if method == "louvain":
            rows.append(("spillover louvain --no-refine", 2, *spillover(path, method, 2, ("--no-refine",))))
    if "--louvain-only" not in flags:
        for k in leiden_passes:
            rows.append((f"spillover leiden --passes {k}", 2,
                         *spillover(path, "leiden", 2, ("--passes", str(k)))))
    try:
        for refine in (0, 1):
            for threads in (1, 2):
                rows.append((f"networkit PLM (refine={bool(refine)})", threads,
                             *python_child(NETWORKIT, path, threads, runs, refine)))
    except (RuntimeError, json.JSONDecodeError, IndexError) as e:
        print(f"networkit skipped ({e}): pip install networkit")
    if "--no-igraph" not in flags:
        methods = ("multilevel",) if "--louvain-only" in flags else ("multilevel", "leiden")
        if "--no-multilevel" in flags:
            methods = tuple(m for m in methods if m != "multilevel")
        for method in methods:
            name = "igraph community_multilevel" if method == "multilevel" else \
                "igraph community_leiden (modularity, 2 it.)"
            try:
                rows.append((name, 1, *python_child(IGRAPH, path, method, runs)))
            except (RuntimeError, json.JSONDecodeError, IndexError) as e:
                print(f"igraph skipped ({e}): pip install igraph")
    for name, threads, secs, q, k, (lo, hi), peak in rows:
        print(f"{kind:<8} {name:<44} {threads:>7} {secs:>8.2f} {q:>10.6f} {k:>8} {peak:>8.0f} "
              f"{f'{lo:.6f}-{hi:.6f}':>21}", flush=True)
