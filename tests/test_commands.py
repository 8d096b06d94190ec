"""Every command on every built-in scenario, at a small number of trajectories.

One ``mcengine run`` per built-in (module-scoped, in-process: the compile dominates and is
shared), then ``validate``, ``summary``, ``summary --json``, ``compare`` (with baseline's),
``plot``, ``report``, ``sensitivity`` and ``backtest`` on each, ``sweep`` (and ``compare`` of its
points) on a few, and the README's pandas example on each results folder. A command
either succeeds or, where it does not apply (a backtest of a scenario without a group),
refuses in one line with exit status 2; never exit status 1 (a bug) and never a traceback.
Every command uses the same number of trajectories, so the program compiled for ``run``
serves ``sensitivity`` and ``backtest`` too (``test_analyses_reuse_the_run_s_program``).
"""

from __future__ import annotations

import contextlib
import io as stdio
import json
import os
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import mcengine

from .conftest import ROOT, TEST_CACHE

N = "256"
BUILTINS = mcengine.builtin_names()
SWEPT = {"baseline": "hardware.volatility=0.05,0.1", "rand-futures": "algorithms.volatility=0.1,0.2"}
DATA = ROOT.parent / "shared" / "data" / "epoch_models_to_2019.csv"
OBSERVED = """model,organization,publication_date,training_compute_flop,base_model
A,Lab One,2020-06-01,2e23,
B,Lab Two,2021-03-01,3e24,
C,"Lab One, Lab Three",2022-05-01,2e25,
D,Lab Four,2023-01-15,1e26,
E,Lab Two,2024-06-01,5e25,
F,Lab Five,2024-07-01,1e26,A
"""


def cli(*args) -> tuple[int, str, str]:
    """Run the command line in-process: (exit status, stdout, stderr)."""
    from mcengine.cli import main

    out, err = stdio.StringIO(), stdio.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


def ok(result) -> str:
    code, out, err = result
    assert code == 0 and "Traceback" not in err, err
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """``folder(name)``: the results folder of ``mcengine run NAME -n 256``, run once."""
    root = tmp_path_factory.mktemp("runs")
    done = {}

    def get(name: str) -> Path:
        if name not in done:
            out = root / name
            ok(cli("run", name, "-n", N, "-q", "--out", out))
            done[name] = out
        return done[name]

    return get


@pytest.mark.parametrize("name", BUILTINS)
def test_run_writes_a_marked_results_folder(name, folder):
    out = folder(name)
    assert sorted(p.name for p in out.iterdir()) == [
        ".mcengine",
        "access.parquet",
        "counts.parquet",
        "events.parquet",
        "paths.parquet",
    ]
    marker = json.loads((out / ".mcengine").read_text())
    assert marker["kind"] == "results" and marker["scenario"] == name and marker["mcengine"] == mcengine.__version__


@pytest.mark.parametrize("name", BUILTINS)
def test_validate(name):
    assert ok(cli("validate", name)).startswith(f"ok: {name} ")


@pytest.mark.parametrize("name", BUILTINS)
def test_summary_text_and_json(name, folder):
    assert f"{int(N):,} trajectories" in ok(cli("summary", folder(name)))
    data = json.loads(ok(cli("summary", folder(name), "--json")))
    assert data and json.dumps(data)


@pytest.mark.parametrize("name", BUILTINS)
def test_plot(name, folder):
    pytest.importorskip("matplotlib")
    from mcengine import plot

    out = ok(cli("plot", folder(name)))
    expected = plot.figure_paths(folder(name) / "plots.png", plot.drawn_figures(folder(name)))
    assert sorted(folder(name).glob("plots-*.png")) == sorted(expected)
    assert {"plots-fan.png", "plots-cdf.png", "plots-lead.png", "plots-access.png"} <= {p.name for p in expected}
    assert out.count("wrote ") == len(expected)
    ok(cli("plot", folder(name)))  # again: figures inside a results folder are mcengine's own


@pytest.mark.parametrize("name", BUILTINS)
def test_report(name, folder):
    pytest.importorskip("matplotlib")
    assert ok(cli("report", folder(name))).strip() == f"wrote {folder(name) / 'report.html'}"
    page = (folder(name) / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.count("data:image/png;base64,") >= 4
    assert all(f"<th scope='row'>{t}</th>" in page for t in mcengine.read_results(folder(name)).thresholds())


@pytest.mark.parametrize("name", BUILTINS)
def test_sensitivity(name, tmp_path):
    out = tmp_path / "sens"
    code, _, err = cli("sensitivity", name, "-n", N, "--out", out, "--output", "lead_times")
    assert code == 2 and err.startswith("error: unknown output 'lead_times'; valid outputs: t_first")
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    lines = ok(cli("sensitivity", name, "-n", N, "--out", out)).splitlines()
    assert lines and all(re.search(r"\d+%|none \(the output does not vary", line) for line in lines)
    assert any("%" in line for line in lines)
    table = pq.read_table(out / "sensitivity.parquet")
    assert table.num_rows > 0 and set(table.column("scenario").to_pylist()) == {name}
    assert json.loads((out / ".mcengine").read_text())["kind"] == "sensitivity"


@pytest.mark.parametrize("name", BUILTINS)
def test_backtest_scores_or_says_why_not(name, tmp_path):
    observed = tmp_path / "observed.csv"
    observed.write_text(OBSERVED)
    code, out, err = cli(
        "backtest", name, "--observed", observed, "--as-of", "2024-12-31", "-n", N, "--out", tmp_path / "bt"
    )
    scenario = mcengine.load_scenario(name)
    groups = [a for a in scenario.actors if a.is_group]
    if len(groups) != 1:  # nothing to score against: one line, exit 2
        assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
        assert not (tmp_path / "bt").exists()
        return
    assert code == 0 and "Traceback" not in err, err
    if any(t.kind == "physical" for t in scenario.thresholds) and scenario.start < 2024.99:
        assert "scored" in out and (tmp_path / "bt" / "backtest.parquet").is_file()


def test_backtest_into_a_results_folder_keeps_it_replaceable(folder, tmp_path):
    observed = tmp_path / "observed.csv"
    observed.write_text(OBSERVED)
    results = folder("historical-2020")
    out = ok(
        cli("backtest", "historical-2020", "--observed", observed, "--as-of", "2024-12-31", "-n", N, "--out", results)
    )
    assert "scored" in out and (results / "backtest.parquet").is_file()
    if DATA.is_file():  # the real file: nothing after 2019 in it, so nothing to score yet
        assert "nothing to score yet" in ok(
            cli("backtest", "historical-2020", "--observed", DATA, "--as-of", "2019-12-31", "-n", N)
        )
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        plot = tmp_path / "pit.png"
        out = ok(
            cli("backtest", "historical-2020", "--observed", observed, "--as-of", "2024-12-31", "-n", N, "--plot", plot)
        )
        assert f"wrote {plot}" in out and plot.is_file()
        code, _, err = cli("backtest", "historical-2020", "--observed", observed, "--plot", plot, "-n", N)
        assert code == 2 and "already exists" in err
    ok(cli("run", "historical-2020", "-n", N, "-q", "--out", results, "--force"))  # backtest.parquet is its own
    assert not (results / "backtest.parquet").exists()


@pytest.mark.skipif(not DATA.is_file(), reason="the shared Epoch data are not beside this checkout")
def test_calibrate(tmp_path):
    """calibrate makes a scenario (so it is not run per built-in) that validates; its run and
    backtest --rolling are in test_calibrate.py."""
    hardware = DATA.parent / "ml_hardware_2025-12.csv"
    out = tmp_path / "cal.toml"
    text = ok(cli("calibrate", "--models", DATA, "--hardware", hardware, "--as-of", "2016-12-31", "--out", out))
    assert "calibrated at 2016-12-31" in text and out.is_file()
    assert "(calibrated-2016-12-31: 2 actors" in ok(cli("validate", out))


@pytest.mark.parametrize("name", sorted(SWEPT))
def test_sweep(name, tmp_path):
    out = tmp_path / "sweep"
    ok(cli("sweep", name, "--set", SWEPT[name], "-n", N, "-q", "--out", out))
    manifest = json.loads((out / "sweep.json").read_text())
    assert len(manifest["points"]) == 2
    assert sorted(p.name for p in out.iterdir()) == [".mcengine", "access", "counts", "events", "paths", "sweep.json"]
    assert json.loads((out / ".mcengine").read_text())["kind"] == "sweep"
    assert "2 runs; the reference is " in ok(cli("compare", out))


@pytest.mark.parametrize("name", BUILTINS)
def test_compare_with_baseline(name, folder):
    text = ok(cli("compare", folder("baseline"), folder(name)))
    assert "2 runs; the reference is " in text and "Frontier date" in text
    data = json.loads(ok(cli("compare", folder("baseline"), folder(name), "--json")), parse_constant=pytest.fail)
    thresholds = {t.name for t in mcengine.load_scenario(name).thresholds}
    assert thresholds <= {r["threshold"] for r in data["frontier_date"]}


def readme_block(heading: str) -> str:
    """The first python code block after ``heading`` in the README."""
    text = (ROOT / "README.md").read_text()
    return re.search(r"```python\n(.*?)```", text[text.index(heading) :], re.S).group(1)


@pytest.mark.parametrize("name", BUILTINS)
def test_readme_pandas_example_runs(name, folder, capsys):
    code = readme_block("## Reading the results").replace("mcengine-results/baseline", str(folder(name)))
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own example
    lead = scope["lead"]
    assert {actor for actor, _ in lead.columns} <= {a.name for a in mcengine.load_scenario(name).actors}
    assert len(lead) == len(mcengine.load_scenario(name).thresholds)


def test_matrix_covers_every_command():
    """A new command must join this matrix: the commands tested here are all there are."""
    from mcengine.cli import cli as group

    tested = {
        *("run", "validate", "summary", "compare", "plot", "report", "sensitivity", "backtest", "sweep", "scenarios"),
        "calibrate",
    }
    assert set(group.commands) == tested
    assert ok(cli("scenarios")).count("\n") == len(BUILTINS)
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == TEST_CACHE  # never the user's cache
