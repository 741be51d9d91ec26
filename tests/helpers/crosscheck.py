"""Cross-check `spillover inspect` against networkx (test-only helper, not run by cargo test).

Usage: python3 tests/helpers/crosscheck.py [path/to/spillover]
Prints networkx's figures next to spillover's and exits non-zero on a mismatch.
The constants asserted in tests/cli_inspect.rs come from this script.
"""
import json
import subprocess
import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
BIN = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target" / "release" / "spillover")


def ours(path, *flags):
    out = subprocess.run([BIN, "inspect", str(path), "--json", *flags], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)["summary"]


def check(name, a, b, tol=1e-6):
    ok = abs(a - b) <= tol
    print(f"{'ok ' if ok else 'BAD'} {name}: networkx {a} spillover {b}")
    return ok


good = True
fb = nx.read_edgelist(DATA / "facebook_combined.txt", nodetype=int)
s = ours(DATA / "facebook_combined.txt")
good &= check("facebook nodes", fb.number_of_nodes(), s["nodes"], 0)
good &= check("facebook edges", fb.number_of_edges(), s["edges"], 0)
good &= check("facebook clustering", nx.average_clustering(fb), s["clustering"]["average"])
good &= check("facebook components", nx.number_connected_components(fb), s["components"]["count"], 0)

msg = nx.DiGraph()
with open(DATA / "CollegeMsg.txt") as f:
    next(f)
    for line in f:
        u, v, _ = line.split()
        w = msg.get_edge_data(u, v, {"weight": 0})["weight"]
        msg.add_edge(u, v, weight=w + 1)
s = ours(DATA / "CollegeMsg.txt", "--directed")
good &= check("CollegeMsg nodes", msg.number_of_nodes(), s["nodes"], 0)
good &= check("CollegeMsg arcs", msg.number_of_edges(), s["edges"], 0)
good &= check("CollegeMsg weight", msg.size(weight="weight"), s["total_weight"], 0)
good &= check("CollegeMsg reciprocity", nx.overall_reciprocity(msg), s["reciprocity"])
wcc = list(nx.weakly_connected_components(msg))
scc = list(nx.strongly_connected_components(msg))
good &= check("CollegeMsg weak components", len(wcc), s["components"]["count"], 0)
good &= check("CollegeMsg largest weak", max(map(len, wcc)), s["components"]["largest"], 0)
good &= check("CollegeMsg strong components", len(scc), s["strong_components"]["count"], 0)
good &= check("CollegeMsg largest strong", max(map(len, scc)), s["strong_components"]["largest"], 0)
good &= check("CollegeMsg clustering (undirected simple)", nx.average_clustering(msg.to_undirected()), s["clustering"]["average"])
sys.exit(0 if good else 1)
