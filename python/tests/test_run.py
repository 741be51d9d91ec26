"""spillover.run against the command line: same bytes, same tables."""

import io
import os
import signal
import subprocess
import sys
import textwrap
import tomllib

import pandas as pd
import pytest

import spillover
from conftest import REPO, cli

QUICKSTART = "scenarios/quickstart.toml"
FILES = ["report.json", "summary.csv", "replicates.csv"]


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    """The quickstart run once by the command line and once from Python."""
    out = tmp_path_factory.mktemp("cli") / "quickstart"
    os.chdir(REPO)
    cli("run", QUICKSTART, "--out", str(out), "--quiet")
    report = spillover.run(QUICKSTART, progress=False)
    return out, report


def test_run_matches_the_command_line_byte_for_byte(quickstart):
    out, report = quickstart
    for name in FILES:
        assert report.files[name] == (out / name).read_text(), name


def test_summary_is_summary_csv_as_a_dataframe(quickstart):
    out, report = quickstart
    pd.testing.assert_frame_equal(report.summary, pd.read_csv(out / "summary.csv"))
    pd.testing.assert_frame_equal(report.replicates, pd.read_csv(out / "replicates.csv"))
    designs = {d["name"] for d in report.designs}
    assert designs == set(report.summary["design"])
    assert abs(report.estimand["value"] - 0.1) < 1e-9
    assert report.recommendation["pick"]["design"] in designs


def test_report_renders_for_notebooks_and_files(quickstart, tmp_path):
    _, report = quickstart
    html = report._repr_html_()
    assert "<table" in html and report.recommendation["text"][0][:30] in html
    report.to_html(tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert "quickstart" in repr(report)


def test_out_writes_what_the_command_line_writes(quickstart, tmp_path):
    out, _ = quickstart
    r = spillover.run(QUICKSTART, out=tmp_path / "py", progress=False, replicates=64)
    cli("run", QUICKSTART, "--out", str(tmp_path / "cli"), "--quiet", "--replicates", "64")
    names = sorted(p.relative_to(tmp_path / "cli") for p in (tmp_path / "cli").rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(tmp_path / "py") for p in (tmp_path / "py").rglob("*") if p.is_file())
    for n in names:  # PNGs included
        assert (tmp_path / "py" / n).read_bytes() == (tmp_path / "cli" / n).read_bytes(), n
    assert len(r.written) == len(names)


def test_a_dict_scenario_runs_like_its_file():
    with open(QUICKSTART, "rb") as f:
        as_dict = tomllib.load(f)
    a = spillover.run(as_dict, replicates=64, progress=False)
    b = spillover.run(QUICKSTART, replicates=64, progress=False)
    for name in FILES:
        assert a.files[name] == b.files[name], name


def test_threads_do_not_change_results():
    a = spillover.run(QUICKSTART, replicates=64, threads=1, progress=False)
    b = spillover.run(QUICKSTART, replicates=64, threads=2, progress=False)
    assert a.files == b.files


def test_progress_reaches_the_total():
    seen = []
    spillover.run(QUICKSTART, replicates=64, progress=lambda d, t: seen.append((d, t)))
    assert seen, "the callback was never called"
    done, total = seen[-1]
    # Three designs × 64, and the quickstart's power curve.
    assert done == total > 3 * 64
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))


def test_an_exception_in_the_callback_stops_the_run(tmp_path):
    def boom(done, total):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        spillover.run(QUICKSTART, replicates=640, progress=boom, out=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_ctrl_c_stops_a_run_cleanly(tmp_path):
    """SIGINT during the replicates: KeyboardInterrupt within a second, nothing written."""
    script = textwrap.dedent(
        f"""
        import sys, time, spillover
        t = None
        def tick(done, total):
            global t
            if t is None and done > 0:
                t = time.time()
                print("started", flush=True)
        try:
            spillover.run({QUICKSTART!r}, replicates=20000, out={str(tmp_path / 'o')!r}, progress=tick)
        except KeyboardInterrupt:
            print("interrupted %.2f" % (time.time() - t), flush=True)
            sys.exit(0)
        sys.exit(3)
        """
    )
    p = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert p.stdout.readline().strip() == "started"
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out
    assert out.startswith("interrupted")
    # The stop comes within a couple of seconds of the signal (replicates
    # take milliseconds; the signal is polled every 100 ms).
    assert float(out.split()[1]) < 10
    assert not (tmp_path / "o").exists()


def test_zero_threads_is_refused():
    with pytest.raises(ValueError, match="threads"):
        spillover.run(QUICKSTART, threads=0)
