"""Nothing lost, nothing escapes: output paths, scenario names and --force.

The property test builds a sandbox (a user's folder with files and a subfolder, an empty
folder, a results folder of an older mcengine without the marker, a marked results folder,
a marked folder holding a user's file, a file, links to a folder and to a file, a dangling
link, a fake home folder) and runs ``run``, ``sweep`` and ``sensitivity`` in-process
with generated ``--out`` paths (relative, absolute, ``.``, ``..``, existing files and
folders, nested new paths, paths through a file or a link), scenario names and with or
without ``--force``. It hashes the whole sandbox tree (path, type, mode, content) before and
after, and checks that

* a refusal is exactly one line on stderr starting ``error:``, exit status 2, and the
  sandbox is unchanged, bit for bit;
* an accepted command changed nothing outside its results folder (save creating the
  folders above it), replaced an existing folder only with ``--force`` and only if it was
  empty or written by mcengine, and left a marked folder.

The unit tests below pin down each rule with its message.
"""

from __future__ import annotations

import contextlib
import hashlib
import io as stdio
import json
import os
import stat
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mcengine
import mcengine.api
from mcengine import io

from .conftest import exit_code, scenario_toml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EXAMPLES = 60
TINY = dict(
    scenario={"name": "t", "start": 2025.0, "horizon": 2027.0, "steps_per_year": 2},
    algorithms={"initial": 1.0, "rate": {"normal": [0.3, 0.5]}},
    thresholds=[{"name": "x", "flop": 1e26, "kind": "effective"}],
)
# folders the sandbox holds that mcengine may replace with --force: empty or written by it
REPLACEABLE = {"empty", "old-results", "marked", "work/mcengine-results/t", "work/mcengine-results/t-sweep"}


def cli(args: list[str]) -> tuple[int, str]:
    """Run the command line in-process: (exit status, stderr)."""
    from mcengine.cli import main

    err = stdio.StringIO()
    code = 0
    with contextlib.redirect_stdout(stdio.StringIO()), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as e:
            code = e.code
    return code, err.getvalue()


def make_sandbox(root: Path) -> None:
    (root / "user" / "sub").mkdir(parents=True)
    (root / "user" / "thesis.tex").write_text("\\section{Results}\n")
    (root / "user" / "sub" / "data.csv").write_text("a,b\n1,2\n")
    (root / "empty").mkdir()
    (root / "old-results").mkdir()  # written by a version before the marker
    meta = {b"mcengine": json.dumps({"scenario": "old"}).encode()}
    pq.write_table(pa.table({"n": [1]}).replace_schema_metadata(meta), root / "old-results" / "events.parquet")
    for name in ("marked", "marked-plus", "work/mcengine-results/t", "work/mcengine-results/t-sweep"):
        (root / name).mkdir(parents=True)
        io.write_marker(root / name, "results", "t")
        (root / name / "events.parquet").write_bytes(b"old")
    (root / "marked-plus" / "notes.txt").write_text("mine")
    (root / "file.txt").write_text("a file")
    (root / "link").symlink_to("user")
    (root / "link-file").symlink_to("file.txt")
    (root / "dangling").symlink_to("nowhere")
    (root / "home").mkdir()
    os.chmod(root / "user" / "thesis.tex", 0o600)


def tree(root: Path) -> dict[str, tuple]:
    """Every entry under ``root``: relative path -> (type, mode, content hash or link target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st_ = p.lstat()
            if stat.S_ISLNK(st_.st_mode):
                what = ("link", os.readlink(p))
            elif stat.S_ISDIR(st_.st_mode):
                what = ("dir", None)
            else:
                what = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
            out[str(p.relative_to(root))] = (*what, stat.S_IMODE(st_.st_mode))
    return out


OUTS = [
    None,
    ".",
    "..",
    "../..",
    "",
    "new",
    "new/nested/deep",
    "../user",
    "../user/thesis.tex",
    "../user/sub",
    "../file.txt",
    "../file.txt/sub",
    "../empty",
    "../old-results",
    "../marked",
    "../marked-plus",
    "../link",
    "../link/inner",
    "../link-file",
    "../dangling",
    "../dangling/x",
    "mcengine-results",
    "mcengine-results/t",
    "../home",
    "/",
    "ABS/user",
    "ABS/marked",
    "ABS/new/x",
    "ABS/old-results",
    "ABS",
    "ABS/work",
]
ACCEPTABLE = [
    None,
    None,
    "new",
    "new/nested/deep",
    "../link/inner",
    "ABS/new/x",
    "../empty",
    "../old-results",
    "../marked",
    "mcengine-results/t",
    "../user/sub/new",
]  # may be written (some only with --force)
NAMES = (
    ["t"] * 10
    + ["a.b-c_d"] * 2
    + ["../../escaped", "..", ".hidden", "a/b", "a\\b", "x\ny", " ", "", "e" * 101, "t\u00e9"]
)


@st.composite
def cases(draw):
    command = draw(st.sampled_from(["run"] * 6 + ["sweep"] * 2 + ["sensitivity"]))
    out = draw(st.sampled_from(ACCEPTABLE if draw(st.booleans()) else OUTS))
    return command, out, draw(st.sampled_from(NAMES)), draw(st.booleans())


@settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
@given(case=cases())
def test_nothing_outside_the_results_folder_changes(case, tmp_path_factory):
    command, out, name, force = case
    root = tmp_path_factory.mktemp("sandbox").resolve()
    make_sandbox(root)
    scenario = root / "s.toml"
    scenario.write_text(
        scenario_toml(**{**TINY, "scenario": {**TINY["scenario"], "name": name}}).replace(
            f'name = "{name}"', f"name = {json.dumps(name)}", 1
        )
    )
    args = {
        "run": ["run", str(scenario), "-n", "100", "-q"],
        "sweep": ["sweep", str(scenario), "--set", "hardware.rate=0.1,0.2", "-n", "100", "-q"],
        "sensitivity": ["sensitivity", str(scenario), "-n", "100"],
    }[command]
    if out is not None:
        args += ["--out", out.replace("ABS", str(root))]
    args += ["--force"] if force else []
    with contextlib.suppress(ImportError):  # before HOME moves: matplotlib caches its fonts there on first use
        import matplotlib.font_manager  # noqa: F401
    before = tree(root)
    cwd, home = os.getcwd(), os.environ.get("HOME")
    os.chdir(root / "work")
    os.environ["HOME"] = str(root / "home")
    try:
        code, err = cli(args)
    finally:
        os.chdir(cwd)
        if home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = home
    after = tree(root)
    hypothesis.event(f"{command} exit {code}")
    assert "Traceback" not in err and code in (0, 2), err
    if code == 2:
        assert len(err.splitlines()) == 1 and err.startswith("error: ") and err.endswith("\n"), err
        assert after == before
        return
    default = {"run": name, "sweep": f"{name}-sweep", "sensitivity": f"{name}-sensitivity"}[command]
    target = Path(args[args.index("--out") + 1]) if out is not None else Path("mcengine-results") / default
    target = Path(os.path.realpath(root / "work" / target.parent)) / target.name
    rel = target.relative_to(root.resolve())  # an accepted output lies in the sandbox
    inside = lambda p: Path(p) == rel or rel in Path(p).parents
    assert {p: after.get(p) for p in before if not inside(p)} == {p: v for p, v in before.items() if not inside(p)}
    assert all(inside(p) or p in before or Path(p) in rel.parents for p in after)  # new: the folder and its parents
    if str(rel) in before:  # replaced: only with --force, only an empty folder or one mcengine wrote
        assert force and str(rel) in REPLACEABLE, (rel, err)
    assert json.loads((target / ".mcengine").read_text())["kind"] == command.replace("run", "results")


# ---------------------------------------------------------------------------------------
# Each rule, with its message


def one_line_refusal(args, capsys, match: str):
    code = exit_code(args)
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert match in err, err
    return err


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(scenario_toml(**TINY))
    return path


def test_force_refuses_a_folder_mcengine_did_not_write(tmp_path, tiny, capsys, monkeypatch):
    make_sandbox(tmp_path)
    monkeypatch.setattr(mcengine.api, "run", lambda *a, **k: pytest.fail("sampled before checking --out"))
    before = tree(tmp_path)
    one_line_refusal(
        ["run", str(tiny), "--out", str(tmp_path / "user"), "--force"], capsys, "user: was not written by mcengine"
    )
    one_line_refusal(
        ["run", str(tiny), "--out", str(tmp_path / "marked-plus"), "--force"],
        capsys,
        "holds files mcengine did not write (notes.txt)",
    )
    one_line_refusal(["run", str(tiny), "--out", str(tmp_path / "link"), "--force"], capsys, "symbolic link")
    monkeypatch.chdir(tmp_path / "work")
    for out, what in (
        (".", "the current folder"),
        ("..", "a folder above the current one"),
        (str(tmp_path / "work"), "the current folder"),
        ("/", "the root folder"),
    ):
        one_line_refusal(["run", str(tiny), "--out", out, "--force"], capsys, what)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "x").write_text("")
    one_line_refusal(["run", str(tiny), "--out", str(tmp_path / "home"), "--force"], capsys, "the home folder")
    (tmp_path / "home" / "x").unlink()
    assert tree(tmp_path) == before


def test_force_replaces_results_folders_old_and_new(tmp_path, tiny):
    make_sandbox(tmp_path)
    assert io.written_by_mcengine(tmp_path / "old-results") and io.written_by_mcengine(tmp_path / "marked")
    assert not io.written_by_mcengine(tmp_path / "user") and not io.written_by_mcengine(tmp_path / "empty")
    for name in ("old-results", "marked", "empty"):
        assert exit_code(["run", str(tiny), "-n", "100", "-q", "--out", str(tmp_path / name), "--force"]) == 0
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == [
            ".mcengine",
            "access.parquet",
            "counts.parquet",
            "events.parquet",
            "paths.parquet",
        ]
    assert (tmp_path / "user" / "thesis.tex").is_file()


@pytest.mark.parametrize("name", ["../../escaped", "..", ".", ".hidden", "a/b", "a\\\\b", "x\\ny", "-x", "e" * 101])
def test_a_scenario_name_is_one_safe_path_component(name, tmp_path, capsys, monkeypatch):
    path = tmp_path / "s.toml"
    path.write_text(scenario_toml(**TINY).replace('name = "t"', f'name = "{name}"', 1))
    monkeypatch.chdir(tmp_path)
    one_line_refusal(["run", str(path), "-n", "100"], capsys, "scenario.name: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]
    with pytest.raises(mcengine.ScenarioError, match="letters, digits, '-', '_' or '.'"):
        mcengine.load_scenario(path)


def test_every_builtin_name_is_a_safe_name():
    for name in mcengine.builtin_names():
        assert mcengine.load_scenario(name).name == name


@pytest.mark.parametrize(
    "n, match",
    [
        ("10000000000000", "more than one run samples (1e12)"),
        ("18446744073709551616", "more than one run samples (1e12)"),
        ("1e300", "more than one run samples (1e12)"),
        ("2.5", "'2.5' is not a whole number"),
        ("1e6x", "is not a whole number"),
        ("nan", "is not a whole number"),
        ("0", "0 is not at least 1"),
        ("-1e3", "is not at least 1"),
    ],
)
def test_impossible_sizes_are_refused_before_sampling(n, match, tmp_path, tiny, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(mcengine.engine, "run", lambda *a, **k: pytest.fail("sampled"))
    one_line_refusal(["run", str(tiny), "-n", n], capsys, match)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.toml"]  # no empty mcengine-results/


def test_whole_numbers_in_exponent_form_are_accepted(tmp_path, tiny):
    from mcengine.cli import Count

    assert [Count().convert(v, None, None) for v in ("1e6", "2.5e5", "200000", "1_000", 7)] == [
        10**6,
        250_000,
        200_000,
        1000,
        7,
    ]
    assert exit_code(["run", str(tiny), "-n", "1.5e2", "-q", "--out", str(tmp_path / "r")]) == 0
    assert pq.read_table(tmp_path / "r" / "events.parquet").column("n")[0].as_py() == 150


def test_a_run_estimated_to_take_too_long_is_refused(tmp_path, tiny, capsys):
    err = one_line_refusal(
        ["run", str(tiny), "-n", "1e5", "-q", "--chunk-size", "64", "--max-days", "1e-9", "--out", str(tmp_path / "r")],
        capsys,
        "sampling would take about",
    )
    assert "trajectories/s" in err and "--max-days" in err and not (tmp_path / "r").exists()
    with pytest.raises(mcengine.engine.ResourceError, match="over the limit"):
        mcengine.run(mcengine.load_scenario(tiny), trajectories=10_000, chunk_size=64, max_days=1e-9)
    mcengine.engine._check_time(1.0, 10, 64, 100.0, mcengine.engine.jax.devices())  # 10 s left: fine


def test_a_refused_run_with_checkpoints_leaves_no_folders(tmp_path, tiny, capsys):
    """The checkpoint's folder is made at its first save: a run refused before that (here
    by --max-days after its second chunk) creates none of the folders above --out."""
    out = tmp_path / "new" / "deeper" / "r"
    args = ["run", str(tiny), "-q", "--chunk-size", "64", "--out", str(out)]
    one_line_refusal([*args, "-n", "1e5", "--max-days", "1e-9", "--checkpoint-every", "50"], capsys, "would take")
    assert not (tmp_path / "new").exists()
    assert exit_code([*args, "-n", "200", "--checkpoint-every", "1"]) == 0
    assert sorted(os.listdir(out.parent)) == ["r"]  # the checkpoint was saved, then removed


def test_failed_commands_leave_no_empty_results_root(tmp_path, tiny, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_refusal(["run", str(tiny), "-n", "100", "--chunk-size", "1e15"], capsys, "use a smaller --chunk-size")
    one_line_refusal(["sweep", str(tiny), "--set", "hardware.rate=0.1,-", "-n", "100"], capsys, "error")
    one_line_refusal(
        ["sweep", str(tiny), "--set", "scenario.steps_per_year=2,0", "-n", "100"], capsys, "steps_per_year"
    )
    one_line_refusal(["sensitivity", str(tiny), "-n", "5"], capsys, "5 is not from 100")
    fixed = tmp_path / "fixed.toml"
    fixed.write_text(scenario_toml(scenario=TINY["scenario"]))
    one_line_refusal(["sensitivity", str(fixed), "-n", "100"], capsys, "fixed.toml: no uncertain inputs")
    fixed.unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.toml"]


def test_a_failing_sweep_point_writes_nothing(tmp_path, tiny, monkeypatch):
    calls = []
    real = mcengine.api.run

    def second_fails(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise mcengine.engine.ResourceError("too big")
        return real(*a, **k)

    monkeypatch.setattr(mcengine.api, "run", second_fails)
    monkeypatch.chdir(tmp_path)
    assert exit_code(["sweep", str(tiny), "--set", "hardware.rate=0.1,0.2", "-n", "100", "-q"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.toml"]


def test_internal_errors_are_exit_1_in_one_line_and_write_nothing(tmp_path, tiny, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(mcengine.io, "provenance", lambda *a, **k: {}["boom"])
    code = exit_code(["run", str(tiny), "-n", "100", "-q"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.splitlines()) == 1, err
    assert err.startswith("error: internal error (a bug in mcengine): KeyError: 'boom'; ") and "MCENGINE_DEBUG=1" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.toml"]
    monkeypatch.setattr(mcengine.io, "provenance", lambda *a, **k: (_ for _ in ()).throw(ValueError("inner")))
    assert exit_code(["run", str(tiny), "-n", "100", "-q"]) == 1  # a plain ValueError is a bug too
    capsys.readouterr()
    monkeypatch.setenv("MCENGINE_DEBUG", "1")
    with pytest.raises(ValueError, match="inner"):  # the traceback, for a bug report
        exit_code(["run", str(tiny), "-n", "100", "-q"])


def test_user_errors_share_one_base():
    from mcengine import backtest, errors, scenario

    for cls in (
        scenario.ScenarioError,
        io.OutputError,
        mcengine.engine.ResourceError,
        errors.DataError,
        errors.ArgumentError,
    ):
        assert issubclass(cls, errors.UserError) and issubclass(cls, ValueError)
    with pytest.raises(errors.DataError):
        backtest.read_observed(Path(__file__))  # not the CSV layout
    with pytest.raises(errors.ArgumentError):
        mcengine.run("baseline", trajectories=0)


@pytest.mark.parametrize(
    "kind, match",
    [
        ("folder", "is a folder, not a scenario file"),
        ("latin1", "not UTF-8 text (byte 5); save the file as UTF-8"),
        ("empty", "the file is empty"),
        ("comments", "the file is empty"),
    ],
)
def test_unreadable_scenario_files_say_what_to_do(kind, match, tmp_path, capsys):
    path = tmp_path / "s.toml"
    if kind == "folder":
        path.mkdir()
    else:
        path.write_bytes(
            {"latin1": "# caf\u00e9 \u00e9t\u00e9".encode("latin-1"), "empty": b"", "comments": b"# nothing yet\n\n"}[
                kind
            ]
        )
    err = one_line_refusal(["run", str(path)], capsys, match)
    assert "Error)" not in err  # not an exception's class name


def test_two_forms_of_one_quantity_are_refused(capsys):
    err = one_line_refusal(
        ["validate", "baseline", "--set", "hardware.rate=0.2", "--set", "hardware.doubling_years=3"],
        capsys,
        "--set hardware.doubling_years: sets the same quantity as --set hardware.rate",
    )
    assert "given before" in err
    one_line_refusal(
        ["validate", "baseline", "--set", "algorithms.halving_years=1", "--set", "algorithms.factor_per_year=3"],
        capsys,
        "same quantity",
    )
    one_line_refusal(
        ["validate", "baseline", "--set", "actors.frontier.cap=1e11", "--set", "actors.frontier.cap=1e12"],
        capsys,
        "same quantity",
    )
    assert (
        exit_code(["validate", "baseline", "--set", "hardware.doubling_years=3"]) == 0
    )  # one form replaces the file's


def test_distributed_without_a_coordinator_names_the_variables(tmp_path, tiny, capsys, monkeypatch):
    for var in ("MCENGINE_COORDINATOR", "SLURM_JOB_ID", "OMPI_COMM_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    import jax

    monkeypatch.setattr(jax.config, "update", lambda *a: None)
    monkeypatch.setattr(
        jax.distributed,
        "initialize",
        lambda **k: (_ for _ in ()).throw(ValueError("coordinator_address should be defined.")),
    )
    err = one_line_refusal(
        ["run", str(tiny), "-n", "100", "--distributed", "--out", str(tmp_path / "r")],
        capsys,
        "MCENGINE_COORDINATOR=host:port",
    )
    assert "MCENGINE_NUM_PROCESSES" in err and "MCENGINE_PROCESS_ID" in err


def test_every_file_gets_the_same_mode(tmp_path, tiny):
    old = os.umask(0o022)
    try:
        assert (
            exit_code(["run", str(tiny), "-n", "100", "-q", "--keep-trajectories", "--out", str(tmp_path / "r")]) == 0
        )
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "r").iterdir()}
    assert set(modes) == {
        ".mcengine",
        "events.parquet",
        "access.parquet",
        "counts.parquet",
        "paths.parquet",
        "trajectories.parquet",
    }
    assert set(modes.values()) == {0o644}, modes


def test_plot_does_not_overwrite_files_outside_a_results_folder(tmp_path, tiny, capsys):
    pytest.importorskip("matplotlib")
    assert exit_code(["run", str(tiny), "-n", "100", "-q", "--out", str(tmp_path / "r")]) == 0
    (tmp_path / "figs").mkdir()
    (tmp_path / "figs" / "a-fan.png").write_text("my own figure")
    one_line_refusal(
        ["plot", str(tmp_path / "r"), "--out", str(tmp_path / "figs" / "a.png")],
        capsys,
        "a-fan.png: already exists; pass --force",
    )
    assert (tmp_path / "figs" / "a-fan.png").read_text() == "my own figure"
    one_line_refusal(
        ["plot", str(tmp_path / "r"), "--out", str(tmp_path / "tiny.toml" / "a.png")], capsys, "cannot write there"
    )
    one_line_refusal(["plot", str(tmp_path / "figs")], capsys, "not a results folder")
    assert exit_code(["plot", str(tmp_path / "r"), "--out", str(tmp_path / "figs" / "a.png"), "--force"]) == 0
    from mcengine import plot

    drawn = plot.figure_paths(tmp_path / "figs" / "a.png", plot.drawn_figures(tmp_path / "r"))
    assert {"a-fan.png", "a-cdf.png", "a-lead.png", "a-access.png"} <= {p.name for p in drawn}
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == sorted(p.name for p in drawn)


def test_backtest_replaces_only_its_own_file(tmp_path, capsys):
    from mcengine import backtest as bt

    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "backtest.parquet").write_text("not mine")
    with pytest.raises(io.OutputError, match="exists and was not written by mcengine"):
        bt.check_output(tmp_path / "user")
    (tmp_path / "link").symlink_to("user")
    with pytest.raises(io.OutputError, match="symbolic link"):
        bt.check_output(tmp_path / "link")
    table = bt._table({k: [] for k in bt.SCHEMA.names}, {"scenario": "t"}, [])
    bt.write(table, tmp_path / "new" / "bt")
    assert sorted(p.name for p in (tmp_path / "new" / "bt").iterdir()) == [".mcengine", "backtest.parquet"]
    assert io.written_by_mcengine(tmp_path / "new" / "bt")
    bt.write(table, tmp_path / "new" / "bt")  # its own file: replaced


def test_per_trajectory_rows_that_cannot_fit_on_the_disk_are_refused(tmp_path, tiny, capsys, monkeypatch):
    import collections
    import shutil

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**12, 10**12 - 10**6, 10**6))
    monkeypatch.chdir(tmp_path)
    one_line_refusal(
        ["run", str(tiny), "-n", "1e5", "-q", "--keep-trajectories"], capsys, "trajectories.parquet would take about"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.toml"]  # no scratch file, no folder


def test_a_results_folder_with_the_longest_name_takes_checkpoints(tmp_path, tiny):
    """A --out name of 254 bytes is a valid folder name; its checkpoint and temporary files
    (longer names beside it) are shortened to fit, so the run succeeds and leaves nothing
    else behind."""
    out = tmp_path / ("é" * 127)  # 254 bytes of UTF-8
    assert (
        exit_code(
            ["run", str(tiny), "-q", "-n", "200", "--chunk-size", "64", "--out", str(out), "--checkpoint-every", "1"]
        )
        == 0
    )
    assert os.listdir(tmp_path) and sorted(os.listdir(tmp_path)) == sorted(["tiny.toml", out.name])
    names = [mcengine.io.fitting_name("." + "é" * k, ".checkpoint.npz", 231) for k in (127, 126, 3)]
    assert len(set(names)) == 3 and all(len(n.encode()) <= 231 for n in names) and names[2] == ".ééé.checkpoint.npz"
