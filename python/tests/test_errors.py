"""Bad input raises the exception a Python user expects, with the CLI's message."""

import pytest

import spillover
from conftest import cli_error


def scenario(tmp_path, text):
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


BAD = {
    "replicates below two": 'name = "x"\nreplicates = 1\n[graph]\nmodel = "sbm"\n[[design]]\nname = "u"\nunit = "user"\n',
    "unknown key": 'name = "x"\nreplicats = 100\n[graph]\nmodel = "sbm"\n[[design]]\nname = "u"\nunit = "user"\n',
    "no designs": 'name = "x"\n[graph]\nmodel = "sbm"\n',
    "missing graph file": 'name = "x"\n[graph]\npath = "nowhere.txt"\n[[design]]\nname = "u"\nunit = "user"\n[[design]]\nname = "v"\nunit = "user"\n',
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenarios_raise_the_cli_message(tmp_path, case):
    path = scenario(tmp_path, BAD[case])
    message = cli_error("run", str(path), "--out", str(tmp_path / "o"), "--quiet")
    expected = FileNotFoundError if case == "missing graph file" else ValueError
    with pytest.raises(expected) as e:
        spillover.run(path, progress=False)
    assert str(e.value) == message
    assert not (tmp_path / "o").exists()


def test_a_missing_scenario_is_file_not_found(tmp_path):
    path = tmp_path / "absent.toml"
    message = cli_error("run", str(path))
    with pytest.raises(FileNotFoundError) as e:
        spillover.run(path)
    assert str(e.value) == message


def test_bad_replicates_override():
    message = cli_error("run", "scenarios/quickstart.toml", "--replicates", "1", "--quiet")
    with pytest.raises(ValueError) as e:
        spillover.run("scenarios/quickstart.toml", replicates=1)
    assert str(e.value) == message


def test_bad_edges_raise_value_error(tmp_path):
    import pandas as pd

    bad = tmp_path / "e.txt"
    bad.write_text("a b\nc\n")
    message = cli_error("inspect", str(bad))
    with pytest.raises(ValueError) as e:
        spillover.inspect(bad)
    assert str(e.value) == message
    with pytest.raises(ValueError, match="positive, finite weight"):
        spillover.partition(pd.DataFrame({"source": [1, 2], "target": [2, 3], "weight": [1.0, -1.0]}))
    with pytest.raises(ValueError, match="missing target"):
        spillover.partition(pd.DataFrame({"source": [1, 2], "target": [2, None]}))
    with pytest.raises(TypeError):
        spillover.partition(42)


def test_bad_partition_options_raise_the_cli_message(tmp_path):
    g = tmp_path / "g.txt"
    g.write_text("1 2\n2 3\n3 1\n")
    message = cli_error("partition", str(g), "--method", "balanced")
    with pytest.raises(ValueError) as e:
        spillover.partition(g, method="balanced")
    assert "parts" in str(e.value) and "parts" in message
    with pytest.raises(ValueError, match="unknown field"):
        spillover.partition(g, method="louvain", resolutoin=2.0)


@pytest.mark.parametrize(
    "call, args",
    [
        (lambda: spillover.deff(20, 2.0), ["deff", "--mean-cluster-size", "20", "--icc", "2"]),
        (lambda: spillover.power(0.1, 0.5), ["power", "--effect", "0.1", "--n-per-arm", "0.5"]),
        (lambda: spillover.mde(1000, treated_share=1.5), ["mde", "--n-total", "1000", "--treated-share", "1.5"]),
        (lambda: spillover.clusters_needed(0.1), ["clusters-needed", "--effect", "0.1"]),
    ],
)
def test_bad_calculator_inputs_raise_the_cli_message(call, args):
    message = cli_error(*args)
    with pytest.raises(ValueError) as e:
        call()
    assert str(e.value) == message
