"""One Monte Carlo replicate in vectorized numpy/scipy, for comparison with
`cargo bench --bench sim` (not part of `cargo test`; needs numpy and scipy).

    python3 benches/replicate_numpy.py [n]        # n = 1000000 by default

The replicate: complete randomization (user level, or of the planted blocks),
exposure as a sparse product (treated share of neighbours), outcomes
(alpha + tau z + gamma e + noise), difference in means with its naive SE, and
contamination. Single thread (OPENBLAS/OMP threads pinned to 1). The graph is
spillover's own planted partition, read from the edge list it writes.
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

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = os.path.join(root, "target", "release", "spillover")
edges_path = os.path.join(tempfile.mkdtemp(), "planted.tsv")
subprocess.run([binary, "generate", "--quiet", "--seed", "1", "--out", edges_path, "sbm", "--n", str(n),
                "--blocks", str(n // 1000), "--mean-degree", "20", "--mu", "0.2"], check=True)
e = np.loadtxt(edges_path, dtype=np.int64, comments="#")
rows = np.concatenate([e[:, 0], e[:, 1]])
cols = np.concatenate([e[:, 1], e[:, 0]])
A = sp.csr_matrix((np.ones(len(rows), dtype=np.float64), (rows, cols)), shape=(n, n))
deg = np.asarray(A.sum(axis=1)).ravel()
inv = np.where(deg > 0, 1.0 / np.maximum(deg, 1), 0.0)
block = np.arange(n) // 1000
rng = np.random.default_rng(1)
alpha = rng.normal(0, 1, n)
tau, gamma = 0.1, 0.1


def replicate(cluster):
    if cluster:
        k = n // 1000
        zc = np.zeros(k, dtype=np.float64)
        zc[rng.permutation(k)[: k // 2]] = 1.0
        z = zc[block]
    else:
        z = np.zeros(n, dtype=np.float64)
        z[rng.permutation(n)[: n // 2]] = 1.0
    ex = (A @ z) * inv
    y = alpha + tau * z + gamma * ex + rng.normal(0, 1, n)
    t = z == 1
    y1, y0 = y[t], y[~t]
    dm = y1.mean() - y0.mean()
    se = np.sqrt(y1.var(ddof=1) / len(y1) + y0.var(ddof=1) / len(y0))
    ct = (deg[t] * (1 - ex[t])).sum() / deg[t].sum()
    cc = (deg[~t] * ex[~t]).sum() / deg[~t].sum()
    return dm, se, ct, cc


for cluster in (False, True):
    replicate(cluster)
    reps = 10
    t0 = time.perf_counter()
    for _ in range(reps):
        replicate(cluster)
    dt = (time.perf_counter() - t0) / reps
    print(f"{'cluster' if cluster else 'user':<8} {dt * 1000:8.1f} ms per replicate  ({1 / dt:6.2f} replicates/s, 1 thread)")
