"""Shared fixtures: the repository, the command-line binary, the SNAP data."""

import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data"


def binary() -> pathlib.Path:
    """The `spillover` binary the test command built (SPILLOVER_BIN overrides)."""
    env = os.environ.get("SPILLOVER_BIN")
    candidates = [pathlib.Path(env)] if env else []
    candidates += [REPO / "target" / p / "spillover" for p in ("ci", "release", "debug")]
    for c in candidates:
        if c.exists():
            return c
    raise RuntimeError(
        "no spillover binary: run the tests with scripts/test (it builds one), "
        "or set SPILLOVER_BIN"
    )


def cli(*args: str, cwd: pathlib.Path = REPO, check: bool = True) -> subprocess.CompletedProcess:
    """Run the command line; returns the finished process (text output)."""
    p = subprocess.run(
        [str(binary()), *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    if check and p.returncode != 0:
        raise AssertionError(f"spillover {' '.join(args)} failed: {p.stderr}")
    return p


def cli_error(*args: str, cwd: pathlib.Path = REPO) -> str:
    """The message of a command that must fail with exit code 2 (after 'error: ')."""
    p = cli(*args, cwd=cwd, check=False)
    assert p.returncode == 2, (p.returncode, p.stderr)
    line = p.stderr.strip()
    assert line.startswith("error: "), line
    return line[len("error: "):]


def data(name: str) -> pathlib.Path:
    path = DATA / name
    if not path.exists():
        raise RuntimeError(
            f"missing test data {path}: the SNAP files live in ../shared/data beside the repository"
        )
    return path


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    """Scenario paths in tests are relative to the repository, as in the README."""
    monkeypatch.chdir(REPO)
