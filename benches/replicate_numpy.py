"""One Monte Carlo replicate in vectorized numpy/scipy against spillover's, on
the same graphs, in one script run (not part of `cargo test`; needs numpy and
scipy, and a release build: `cargo build --release`).

    python3 benches/replicate_numpy.py [n] [graph ...]

n = 1000000 by default; graphs: `planted` (blocks of 1,000, mean degree 20,
mu 0.2), `lfr` (the LFR-like generator's defaults: power-law degrees and
community sizes) and `ba` (Barabási–Albert, m = 5: hubs of degree in the
thousands); all three by default. Each graph is written once by
`spillover generate` and read by both sides.

numpy's replicate: complete randomization of users, exposure as a sparse
product (treated share of in-neighbours), outcomes
(alpha + tau z + gamma e + noise) for the model **and** the null run (the same
noise), the difference in means with its naive SE for both, and
contamination. One thread (OPENBLAS/OMP threads pinned to 1); best of 3 runs
of 10 replicates.

spillover's replicate: the same work as `spillover run` does it (user design,
estimator `dm-naive`, model and null run), on one thread (`--threads 1`). A
scenario compares at least two designs, so it holds the user design twice; its
cost per replicate is the slope between two runs of the same scenario, with
R1 = 64 and R2 = 1088 replicates: (T(R2) − T(R1)) / (2 (R2 − R1)), so
reading the graph, partitioning it for the population's clusters and
drawing the population cancel out. It is the median of three such slopes,
each from a pair of runs one after the other (the middle pair in the other
order, so a steady drift does not push all three the same way), so that a
slow spell of the machine (seen to last minutes and to slow a run by 30 %)
meets both runs of a pair and one odd pair does not decide. The runs
differ by 1,024 replicates of each of the two designs (2,048 replicates,
about 10 s) because the fixed part (about 10 s of reading and partitioning
a million-user graph) was seen to vary from 9.0 to 13.3 s for the same
binary: over 1,024 replicates that can move a slope by 4 ms, over 2,048 by
2. The ratio divides numpy's best of 3 by spillover's median, which leans
towards numpy.
Both are multiples of 64, the batch a one-thread run shares one exposure
sweep among, so the slope charges each replicate its share of the sweep.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import subprocess
import sys
import tempfile
import time

import numpy as np
import scipy.sparse as sp

args = sys.argv[1:]
n = int(args[0]) if args and args[0].isdigit() else 1_000_000
kinds = [a for a in args if not a.isdigit()] or ["planted", "lfr", "ba"]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.path.join(root, "target", "release", "spillover")
tmp = tempfile.mkdtemp()
R1, R2 = 64, 1088


def generate(kind):
    path = os.path.join(tmp, f"{kind}.tsv")
    model = {
        "planted": ["sbm", "--n", str(n), "--blocks", str(max(1, n // 1000)), "--mean-degree", "20", "--mu", "0.2"],
        "lfr": ["lfr", "--n", str(n)],
        "ba": ["ba", "--n", str(n), "--m", "5"],
    }[kind]
    subprocess.run([binary, "generate", "--quiet", "--seed", "1", "--out", path] + model, check=True)
    return path


def numpy_replicate_ms(path):
    e = np.loadtxt(path, dtype=np.int64, comments="#", usecols=(0, 1))
    m = 1 + int(e.max())
    rows = np.concatenate([e[:, 0], e[:, 1]])
    cols = np.concatenate([e[:, 1], e[:, 0]])
    A = sp.csr_matrix((np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(m, m))
    deg = np.asarray(A.sum(axis=1)).ravel()
    inv = np.where(deg > 0, 1.0 / np.maximum(deg, 1), 0.0)
    rng = np.random.default_rng(1)
    alpha = rng.normal(0, 1, m)
    tau, gamma = 0.1, 0.1

    def dm(y, t):
        y1, y0 = y[t], y[~t]
        return y1.mean() - y0.mean(), np.sqrt(y1.var(ddof=1) / len(y1) + y0.var(ddof=1) / len(y0))

    def replicate():
        z = np.zeros(m, dtype=np.float64)
        z[rng.permutation(m)[: m // 2]] = 1.0
        ex = (A @ z) * inv
        noise = rng.normal(0, 1, m)
        y = alpha + tau * z + gamma * ex + noise
        y_null = alpha + noise
        t = z == 1
        ct = (deg[t] * (1 - ex[t])).sum() / deg[t].sum()
        cc = (deg[~t] * ex[~t]).sum() / deg[~t].sum()
        return dm(y, t), dm(y_null, t), ct, cc

    replicate()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(10):
            replicate()
        best = min(best, (time.perf_counter() - t0) / 10)
    return best * 1000, m


def spillover_replicate_ms(path):
    scen = os.path.join(tmp, "replicate.toml")
    with open(scen, "w") as f:
        f.write(f"""name = "replicate"
seed = 1
replicates = {R2}
[graph]
path = "{path}"
[outcome]
icc = 0.05
direct_effect = 0.1
spillover = 0.1
[[design]]
name = "user"
[[design]]
name = "user-again"
[analysis]
estimators = ["dm-naive"]
""")

    def run(r):
        t0 = time.perf_counter()
        subprocess.run([binary, "run", scen, "--quiet", "--threads", "1", "--replicates", str(r),
                        "--out", os.path.join(tmp, "out")], check=True)
        return time.perf_counter() - t0

    # Three pairs of runs, each pair one after the other (so a slow spell of
    # the machine meets both of its runs); the median of the three slopes.
    # Two identical user designs (a scenario compares at least two).
    slopes = []
    for k in range(3):
        if k == 1:
            t2 = run(R2)
            t1 = run(R1)
        else:
            t1 = run(R1)
            t2 = run(R2)
        slopes.append((t2 - t1) / (2 * (R2 - R1)) * 1000)
    return sorted(slopes)[1], slopes


print(f"{'graph':<8} {'users':>9} {'numpy ms':>9} {'spillover ms':>13} {'ratio':>6}   (one replicate, model + null run, one thread; spillover's three slopes)")
for kind in kinds:
    path = generate(kind)
    np_ms, users = numpy_replicate_ms(path)
    sp_ms, slopes = spillover_replicate_ms(path)
    three = " ".join(f"{x:.2f}" for x in slopes)
    print(f"{kind:<8} {users:>9} {np_ms:>9.1f} {sp_ms:>13.2f} {np_ms / sp_ms:>5.1f}x   {three}", flush=True)
