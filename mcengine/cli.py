"""The ``mcengine`` command: a thin layer over the library.

Every error a user can cause (a bad scenario, an unwritable output folder, a bad option:
a :class:`mcengine.errors.UserError` or a usage error) is one line on stderr and exit
status 2; any other exception is a bug in mcengine, said so in one line with exit status 1
(``MCENGINE_DEBUG=1`` shows its traceback). An interrupted or failed command writes nothing.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
from pathlib import Path

# Keep XLA's C++ log quiet unless the user asked for it (set before JAX loads; where a parent
# process that loaded JAX exported its default, jaxsetup.quiet_cache_loads still silences the
# false alarms of a program loaded from the cache).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import click  # noqa: E402

from . import api, engine, io, jaxsetup  # noqa: E402
from .errors import UserError  # noqa: E402
from .kernels import DEFAULT_GENERATOR, GENERATORS  # noqa: E402
from .report import progress_bar, summary_data, summary_text, sweep_summary_text  # noqa: E402
from .results import read_results  # noqa: E402
from .scenario import ScenarioError, builtin_names, load_scenario  # noqa: E402

DEFAULT_SCENARIO = "baseline"


class Count(click.ParamType):
    """A whole number, written as forecasters do: ``200000``, ``1e6``, ``2.5e5``."""

    name = "N"

    def __init__(self, low: int = 1, high: int | None = None):
        self.low, self.high = low, high

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            n = value
        else:
            text = str(value).strip().replace("_", "")
            try:
                n = int(text)
            except ValueError:
                try:
                    x = float(text)
                except ValueError:
                    x = None
                if x is None or not math.isfinite(x) or not x.is_integer():
                    self.fail(f"{value!r} is not a whole number (write it as 200000, 1e6 or 2.5e5)", param, ctx)
                n = int(x)
        if n < self.low or (self.high is not None and n > self.high):
            bounds = f"from {self.low:,} to {self.high:,}" if self.high is not None else f"at least {self.low:,}"
            self.fail(f"{value} is not {bounds}", param, ctx)
        return n


class Interrupted(Exception):
    """Ctrl-C or SIGTERM during a run: its message says what was (not) kept."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mcengine")
def cli():
    """Monte Carlo forecasts of when AI capabilities are first reached (frontier dates),
    how far behind other actors are (lead times) and when a given budget can reach them
    (diffusion dates)."""


class PathArg(click.Path):
    """A path argument or option (as a Path); one with a NUL character is a usage error."""

    def __init__(self):
        super().__init__(path_type=Path)

    def convert(self, value, param, ctx):
        if "\0" in str(value):
            self.fail(f"{str(value)!r} contains a NUL character", param, ctx)
        return super().convert(value, param, ctx)


_set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a scenario value (repeatable), e.g. --set hardware.rate=0.2 or "
    "--set 'actors.frontier.budget={ lognormal = [1e8, 1e9] }'.",
)


@cli.command()
@click.argument("scenario", required=False, default=DEFAULT_SCENARIO)
@click.option(
    "-n",
    "--trajectories",
    type=Count(),
    default=100_000,
    show_default=True,
    help="Number of joint trajectories to sample (e.g. 200000, 1e6; at most 1e12).",
)
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True, help="Random seed.")
@click.option(
    "--out", "out", type=PathArg(), default=None, help="Results folder [default: ./mcengine-results/<scenario name>]."
)
@click.option(
    "--chunk-size",
    type=Count(),
    default=None,
    help="Trajectories per call, split over the devices (at least 64 per device) "
    "[default: chosen for the device]. Results do not depend on it.",
)
@_set_option
@click.option("--force", is_flag=True, help="Replace the results folder if it exists and mcengine wrote it.")
@click.option(
    "--max-days",
    type=click.FloatRange(min=0, min_open=True),
    default=7.0,
    show_default=True,
    help="Refuse a run whose sampling is estimated (from its second chunk) to take longer.",
)
@click.option(
    "--checkpoint-every",
    type=click.IntRange(min=1),
    default=None,
    metavar="K",
    help="Save the aggregation state every K chunks, beside the results folder.",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its checkpoint (same options).")
@click.option(
    "--keep-trajectories",
    is_flag=True,
    help="Also write trajectories.parquet: one row per trajectory (inputs, dates), streamed.",
)
@click.option(
    "--generator",
    type=click.Choice(GENERATORS),
    default=DEFAULT_GENERATOR,
    show_default=True,
    help="Generator of the per-step shocks (recorded in the outputs); 'jax' is jax.random.normal, "
    "slower, for cross-checks.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or status lines.")
@click.option(
    "--distributed",
    is_flag=True,
    help="Join a multi-process run (jax.distributed): under SLURM (srun) or Open MPI nothing else "
    "is needed; otherwise set MCENGINE_COORDINATOR=host:port, MCENGINE_NUM_PROCESSES and "
    "MCENGINE_PROCESS_ID. Process 0 writes the results.",
)
def run(
    scenario,
    trajectories,
    seed,
    out,
    chunk_size,
    overrides,
    force,
    max_days,
    checkpoint_every,
    resume,
    keep_trajectories,
    generator,
    quiet,
    distributed,
):
    """Run SCENARIO (a .toml path or a built-in name; default: baseline) and write
    events.parquet, access.parquet and paths.parquet.

    \b
    Examples:
      mcengine run
      mcengine run benchmarks/peer.toml -n 200000 --seed 1 --out results/peer
      mcengine run baseline --set algorithms.halving_years=1.0 --out results/slow-algorithms
      mcengine run baseline -n 10000000 --checkpoint-every 20   # then, if interrupted: --resume
    """
    s = load_scenario(scenario, overrides)
    _warn(s)
    out = out if out is not None else Path("mcengine-results") / s.name
    io.check_output_folder(out, overwrite=force)  # before any sampling
    engine.check_trajectories(trajectories)
    if keep_trajectories and (resume or distributed):
        raise click.UsageError("--keep-trajectories cannot be combined with --resume or --distributed")
    writer = _join_processes() if distributed else True
    quiet = quiet or not writer
    checkpoint = None
    if checkpoint_every or resume:  # beside the results folder (its folder is made at the first save)
        # room for the temporary file's and a process's suffixes (io.atomic_files, engine)
        path = out.absolute().parent / io.fitting_name(f".{out.name}", ".checkpoint.npz", limit=255 - 24)
        checkpoint = engine.Checkpoint(path, checkpoint_every or 10, resume)
    status = _status(quiet)
    _status(quiet, terminal=True)(f"running {s.name}: {trajectories:,} trajectories, seed {seed}")
    with progress_bar(trajectories, enabled=not quiet) as advance:
        try:
            results = api.run(
                s,
                trajectories=trajectories,
                seed=seed,
                chunk_size=chunk_size,
                progress=advance,
                checkpoint=checkpoint,
                generator=generator,
                max_days=max_days,
                keep_trajectories=io.existing_ancestor(out.parent) if keep_trajectories else False,
            )
        except KeyboardInterrupt:
            saved = checkpoint is not None and checkpoint.path.exists()
            raise Interrupted(
                "interrupted; no results were written"
                + (f"; continue with the same command and --resume ({checkpoint.path.name})" if saved else "")
            ) from None
    if not writer:
        return
    results.write(out, overwrite=force)
    m = results.metadata
    files = "events,access,paths,counts" + (",trajectories" if keep_trajectories else "")
    status(
        f"compiled in {m['compile_seconds']:.1f} s, sampled in {m['sample_seconds']:.1f} s "
        f"on {m['devices']} {m['platform']} device(s); wrote {out}/{{{files}}}.parquet"
    )
    click.echo(summary_text(results))


@cli.command()
@click.argument("scenarios", nargs=-1, required=True)
@_set_option
def validate(scenarios, overrides):
    """Check scenario files (paths or built-in names) as a run would before sampling; exit 0
    if all are valid, else 2."""
    failed = False
    for name in scenarios:
        try:
            s = load_scenario(name, overrides)
            engine.build_for(s)  # what a run refuses before compiling (too many sampled members)
            _warn(s)
            click.echo(
                f"ok: {name} ({s.name}: {len(s.actors)} actors, {len(s.thresholds)} thresholds, "
                f"{s.start:g}-{s.horizon:g})"
            )
        except ScenarioError as e:
            click.echo(f"error: {' '.join(str(e).split())}", err=True)
            failed = True
        except UserError as e:
            click.echo(f"error: {name}: {' '.join(str(e).split())}", err=True)
            failed = True
    sys.exit(2 if failed else 0)


@cli.command()
def scenarios():
    """List the built-in scenarios with their descriptions."""
    for name in builtin_names():
        s = load_scenario(name)
        click.echo(f"{name:<28} {s.description}")


@cli.command()
@click.argument("folder", type=PathArg())
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON, for machines.")
def summary(folder, as_json):
    """Print the summary of a results FOLDER written by `mcengine run`."""
    results = read_results(folder)
    click.echo(json.dumps(summary_data(results), indent=1) if as_json else summary_text(results))


@cli.command()
@click.argument("folders", nargs=-1, required=True, type=PathArg())
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON, for machines.")
def compare(folders, as_json):
    """Compare results FOLDERS side by side: frontier dates, lead times, diffusion dates and
    counts of organisations, each with its difference from the first folder (the reference).
    A sweep folder stands for its points.

    \b
    Example:
      mcengine compare mcengine-results/baseline mcengine-results/rand-futures
      mcengine compare mcengine-results/baseline-sweep
    """
    from .compare import compare_runs, compare_text

    data = compare_runs(folders)
    click.echo(json.dumps(data, indent=1, allow_nan=False) if as_json else compare_text(data))


@cli.command()
@click.argument("folder", type=PathArg())
@click.option(
    "--out",
    type=PathArg(),
    default=None,
    help="FILE.png, .svg or .pdf: writes FILE-fan, -cdf, -lead, -access (and -counts, -regimes, -channels when "
    "the results have them) beside it [default: FOLDER/plots.png].",
)
@click.option(
    "--threshold",
    default=None,
    help="Threshold for the date, lead-time, regime and channel plots [default: the first the frontier reaches "
    "in the median].",
)
@click.option("--force", is_flag=True, help="Replace existing figure files outside a results folder.")
def plot(folder, out, threshold, force):
    """Draw a results FOLDER: fan chart of effective compute with the thresholds, the
    distribution of each actor's date for one threshold, lead times, the access and
    performance effects side by side, and the counts, regimes and channels when the results
    have them."""
    try:
        from . import plot as plots
    except ImportError:
        raise click.UsageError("plotting needs matplotlib: pip install 'mcengine[plot]'") from None
    for path in plots.plot_command(folder, out=out, threshold=threshold, overwrite=force):
        click.echo(f"wrote {path}")


@cli.command("report")
@click.argument("folder", type=PathArg())
@click.option("--out", type=PathArg(), default=None, help="FILE.html [default: FOLDER/report.html].")
@click.option("--force", is_flag=True, help="Replace an existing file (report.html in a results folder: always).")
def report_(folder, out, force):
    """Write a results FOLDER as one self-contained HTML page to share: scenario, provenance,
    the summary tables (pooled, per regime and per channel), every figure and the scenario
    text; it opens offline."""
    from . import htmlreport

    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise click.UsageError("the report's figures need matplotlib: pip install 'mcengine[plot]'") from None
    click.echo(f"wrote {htmlreport.report_command(folder, out=out, overwrite=force)}")


@cli.command()
@click.argument("scenario")
@click.option(
    "--set",
    "axes",
    multiple=True,
    required=True,
    metavar="PATH=V1,V2,...",
    help="A swept path and its values (repeatable: the grid is every combination).",
)
@click.option("--fix", "fixed", multiple=True, metavar="PATH=VALUE", help="A fixed override for every point.")
@click.option("-n", "--trajectories", type=Count(), default=20_000, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True)
@click.option(
    "--out", type=PathArg(), default=None, help="Output folder [default: ./mcengine-results/<scenario name>-sweep]."
)
@click.option("--force", is_flag=True, help="Replace the output folder if it exists and mcengine wrote it.")
@click.option("-q", "--quiet", is_flag=True)
def sweep(scenario, axes, fixed, trajectories, seed, out, force, quiet):
    """Run SCENARIO over a grid of values and write events/, access/, paths/ and counts/ as
    Parquet datasets (a file per point, a typed column per swept path), then print the
    frontier's median date per point.

    \b
    Example:
      mcengine sweep baseline --set algorithms.halving_years=0.6,0.8,1.2 --set actors.frontier.cap=1e11,1e12
      python -c "import pandas as pd; print(pd.read_parquet('mcengine-results/baseline-sweep/events'))"
    """
    from . import sweep as sweeps

    out = out if out is not None else Path("mcengine-results") / f"{load_scenario(scenario, fixed).name}-sweep"
    io.check_output_folder(out, overwrite=force)
    path = sweeps.sweep(
        scenario, list(axes), tuple(fixed), trajectories, seed, out, force, progress=_status(quiet, terminal=True)
    )
    _status(quiet)(f"wrote {path}/{{events,access,paths,counts}}/ and sweep.json")
    click.echo(sweep_summary_text(json.loads((path / "sweep.json").read_text(encoding="utf-8"))))
    _status(quiet)(f"every output of every point beside the first: mcengine compare {path}")


@cli.command()
@click.argument("scenario", required=False, default=DEFAULT_SCENARIO)
@click.option("-n", "--trajectories", type=Count(100, 2_000_000), default=20_000, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True)
@_set_option
@click.option(
    "--out",
    type=PathArg(),
    default=None,
    help="Folder for sensitivity.parquet [default: ./mcengine-results/<scenario name>-sensitivity].",
)
@click.option("--force", is_flag=True, help="Replace the output folder if it exists and mcengine wrote it.")
@click.option(
    "--output",
    "chart_output",
    default=None,
    help="Output of tornado.png: t_first, lead_time or diffusion_date [default: t_first].",
)
@click.option(
    "--actor", default=None, help="Its actor, group rank ('labs #5') or budget ('$1e+06') [default: the first]."
)
@click.option("--threshold", default=None, help="Its threshold [default: the middle one].")
def sensitivity(scenario, trajectories, seed, overrides, out, force, chart_output, actor, threshold):
    """Which uncertain input drives which output: rank correlation and first-order
    variance share per input and output, censoring handled explicitly. Writes
    sensitivity.parquet and tornado.png (of the output chosen by --output, --actor and
    --threshold) and prints the top drivers."""
    from . import sensitivity as sens

    s = load_scenario(scenario, overrides)
    out = out if out is not None else Path("mcengine-results") / f"{s.name}-sensitivity"
    io.check_output_folder(out, overwrite=force)
    chart = sens.choose(sens.output_keys(s), chart_output, actor, threshold)  # refused before sampling
    table = sens.sensitivity(s, trajectories, seed)
    lines = [
        f"{label:<28} {threshold:<16} "
        + (
            "; ".join(
                f"{name} {share:.0%}" + (f" (rho {rho:+.2f})" if rho is not None else "") for name, share, rho in items
            )
            or "none (the output does not vary in this sample)"
        )
        for label, threshold, items in sens.top_drivers(table)
    ]
    try:
        from . import plot as plots

        fig = plots.tornado(table, chart[0], sens.label(chart[1], chart[2]), chart[3])
    except ImportError:
        fig = None
    with io.atomic_folder(out, overwrite=force, kind="sensitivity", scenario=s.name) as tmp:
        io.pq.write_table(table, tmp / "sensitivity.parquet")
        if fig is not None:
            fig.savefig(tmp / "tornado.png", dpi=150)
    click.echo("\n".join(lines))
    click.echo(f"wrote {out}/sensitivity.parquet" + (" and tornado.png" if fig is not None else ""), err=True)


@cli.command()
@click.argument("scenario", required=False, default=None)
@click.option(
    "--observed",
    type=PathArg(),
    required=True,
    help="CSV of observed models in the layout of Epoch's database (organization, publication_date, "
    "training_compute_flop, base_model, ...).",
)
@click.option(
    "--as-of",
    "as_of",
    default=None,
    metavar="YYYY-MM-DD",
    help="Score what was observed up to this date [default: the file's latest date].",
)
@click.option("--group", default=None, help="The [[groups]] entry whose ranks are scored [default: the only one].")
@click.option("-n", "--trajectories", type=Count(100, 2_000_000), default=20_000, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True)
@_set_option
@click.option("--out", type=PathArg(), default=None, help="Folder for backtest.parquet.")
@click.option(
    "--rolling",
    default=None,
    metavar="YEAR,YEAR,...",
    help="Rolling origins instead of SCENARIO: at each origin (a year = its 31 December, or YYYY-MM-DD) "
    "calibrate a scenario from the rows published by then (needs --hardware) and score it up to "
    "--as-of.",
)
@click.option(
    "--hardware",
    type=PathArg(),
    default=None,
    help="With --rolling: CSV of ML hardware in the layout of Epoch's database.",
)
@click.option(
    "--plot",
    "plot_file",
    type=PathArg(),
    default=None,
    metavar="FILE.png",
    help="Also draw the PIT histogram and reliability diagram of the observed events (png, svg, pdf).",
)
@click.option("--force", is_flag=True, help="Replace an existing --plot file.")
def backtest(scenario, observed, as_of, group, trajectories, seed, overrides, out, rolling, hardware, plot_file, force):
    """Score SCENARIO's predicted dates against observed ones: for each physical threshold
    and rank k, when the k-th distinct organisation first published a model at or above it,
    the predicted quantile it fell at (PIT), 50%/90% interval coverage (over the events that
    happened; not-yet events are reported apart) and a censoring-aware CRPS. With --rolling,
    a calibrated scenario per origin instead, one summary line each.

    \b
    Example:
      mcengine backtest historical-2020 --observed epoch_models.csv --as-of 2025-06-30
      mcengine backtest --rolling 2012,2014,2016,2018 --observed models.csv --hardware hardware.csv --plot pit.png
    """
    from . import backtest as bt

    if plot_file is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise click.UsageError("--plot needs matplotlib: pip install 'mcengine[plot]'") from None
        if plot_file.suffix.lower() not in (".png", ".svg", ".pdf"):
            raise click.UsageError(f"--plot: {plot_file}: expected a .png, .svg or .pdf file name")
        if plot_file.exists() and not force:
            raise click.UsageError(f"{plot_file}: already exists; pass --force to replace it")
    if rolling is None:
        if scenario is None:
            raise click.UsageError("give a SCENARIO, or --rolling YEARS with --hardware FILE.csv")
        if hardware is not None:
            raise click.UsageError("--hardware is for --rolling (a SCENARIO is scored as it is)")
        tables = []
        click.echo(
            bt.command(
                scenario,
                observed,
                as_of=as_of,
                group=group,
                trajectories=trajectories,
                seed=seed,
                out=out,
                overrides=overrides,
                tables=tables,
            )
        )
        if plot_file is not None and tables:
            table = tables[0]
            path = bt.write_plot(bt.plot_pit([(bt.metadata(table).get("scenario", ""), table)]), plot_file, force)
            click.echo(f"wrote {path}")
        return
    if scenario is not None or overrides or group is not None or out is not None:
        raise click.UsageError("--rolling calibrates its own scenarios: give no SCENARIO, --set, --group or --out")
    if hardware is None:
        raise click.UsageError("--rolling needs --hardware FILE.csv (the FLOP/$ data to calibrate from)")
    origins = bt.parse_origins(rolling)
    results = bt.rolling(observed, hardware, origins, as_of=as_of, trajectories=trajectories, seed=seed)
    first = bt.metadata(results[0][1])
    click.echo(
        f"rolling-origin backtest against {first.get('observed')} up to {first.get('as_of')} "
        f"({trajectories:,} trajectories per origin, seed {seed}); coverage and PIT over events that "
        "happened, not-yet events apart"
    )
    click.echo(bt.format_rolling(results))
    if plot_file is not None:
        path = bt.write_plot(bt.plot_pit([(o.isoformat(), t) for o, t in results]), plot_file, force)
        click.echo(f"wrote {path}")


@cli.command()
@click.option(
    "--models",
    type=PathArg(),
    required=True,
    help="CSV of models in the layout of Epoch's database (organization, publication_date, "
    "training_compute_flop, base_model, ...).",
)
@click.option(
    "--hardware",
    type=PathArg(),
    required=True,
    help="CSV of ML hardware in the layout of Epoch's database (Release date, Release price (USD), FLOP/s columns).",
)
@click.option(
    "--as-of",
    "as_of",
    required=True,
    metavar="YYYY-MM-DD",
    help="Use only rows published (released) on or before this date; the scenario starts the next day.",
)
@click.option("--out", type=PathArg(), required=True, help="The scenario file to write (TOML).")
@click.option("--name", default=None, help="Scenario name [default: calibrated-<as-of>].")
@click.option("--description", default=None, help="Scenario description [default: what it was calibrated from].")
@click.option(
    "--header",
    type=PathArg(),
    default=None,
    help="A file of '#' comment lines to put first (e.g. the question and the sources).",
)
@click.option(
    "--access",
    default=None,
    metavar="$,$,...",
    help="Access budgets in $ to add as [access] budgets, e.g. 1e5,1e6,1e7.",
)
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def calibrate(models, hardware, as_of, out, name, description, header, access, force):
    """Fit a scenario from data published by --as-of: the FLOP/$ trend of hardware, the
    compute trend of the top runs, the budgets of the organisations that publish and their
    entry rate, each number with its estimator, n and standard error as a comment, and the
    fits' uncertainty as distributions. Writes a complete scenario file.

    \b
    Example:
      mcengine calibrate --models epoch_models.csv --hardware ml_hardware.csv --as-of 2019-12-31 --out cal.toml
    """
    from . import calibrate as cal
    from .errors import ArgumentError
    from .scenario import parse_scenario

    budgets = ()
    if access is not None:
        try:
            budgets = tuple(float(x) for x in access.split(","))
        except ValueError:
            raise ArgumentError(
                f"--access: expected $ amounts separated by commas, e.g. 1e5,1e6; got {access!r}"
            ) from None
    if out.exists() and not force:
        raise io.OutputError(f"{out}: already exists; pass --force to replace it, or choose another --out")
    head = ""
    if header is not None:
        try:
            head = header.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ArgumentError(f"--header: {header}: cannot read it as UTF-8 text ({e})") from None
        bad = [i for i, line in enumerate(head.splitlines(), 1) if line.strip() and not line.lstrip().startswith("#")]
        if bad:
            raise ArgumentError(f"--header: {header}: line {bad[0]} is not a '#' comment line")
    if description is not None and ('"' in description or "\\" in description or "\n" in description):
        raise ArgumentError("--description: no quotes, backslashes or line breaks")
    c = cal.calibrate(models, hardware, as_of, access=budgets)
    text = cal.scenario_toml(c, name=name, description=description, header=head)
    parse_scenario(text, source=str(out))  # a complete, valid scenario, or a bug
    io.write_file(out, text.encode("utf-8"), overwrite=force)
    click.echo(cal.summary(c))
    click.echo(f"wrote {out}")


def main(argv=None) -> None:
    """Entry point: runs the command group, turning every user error into one line."""
    jaxsetup.configure()
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        cli.main(args=argv, prog_name="mcengine", standalone_mode=False)
    except UserError as e:
        _fail(str(e))
    except Interrupted as e:
        _fail(str(e), code=130)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _fail("interrupted; no results were written", code=130)
    except click.ClickException as e:
        _fail(e.format_message(), code=e.exit_code)
    except Exception as e:
        if jaxsetup.debugging():
            raise
        _fail(
            f"internal error (a bug in mcengine): {type(e).__name__}: {' '.join(str(e).split())[:300]}; "
            "run again with MCENGINE_DEBUG=1 for the traceback",
            code=1,
        )
    finally:
        signal.signal(signal.SIGTERM, previous)


def _warn(s) -> None:
    """Print a scenario's warnings on stderr, one line each."""
    for w in s.warnings:
        click.echo(f"warning: {' '.join(w.split())}", err=True)


def _status(quiet: bool, terminal: bool = False):
    """A function printing a status line on stderr: never if ``quiet``; with ``terminal``,
    only when stderr is a terminal (progress, not results: in a pipe or a log file a
    refusal is then its one line)."""
    if quiet or (terminal and not sys.stderr.isatty()):
        return lambda msg: None
    return lambda msg: click.echo(msg, err=True)


def _join_processes() -> bool:
    """Start jax.distributed from SLURM / Open MPI, or from MCENGINE_COORDINATOR,
    MCENGINE_NUM_PROCESSES and MCENGINE_PROCESS_ID; True for the process that writes."""
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    env = os.environ
    kwargs: dict = {}
    if "MCENGINE_COORDINATOR" in env:
        try:
            kwargs = dict(
                coordinator_address=env["MCENGINE_COORDINATOR"],
                num_processes=int(env["MCENGINE_NUM_PROCESSES"]),
                process_id=int(env["MCENGINE_PROCESS_ID"]),
            )
        except (KeyError, ValueError):
            raise click.UsageError(
                "MCENGINE_COORDINATOR needs MCENGINE_NUM_PROCESSES and MCENGINE_PROCESS_ID (whole numbers)"
            ) from None
    try:
        jax.distributed.initialize(**kwargs)
    except (RuntimeError, ValueError) as e:
        hint = (
            ""
            if kwargs
            else (
                "; outside SLURM and Open MPI, name the coordinator: set MCENGINE_COORDINATOR=host:port, "
                "MCENGINE_NUM_PROCESSES and MCENGINE_PROCESS_ID (see mcengine run --help)"
            )
        )
        raise click.UsageError(
            f"--distributed: could not start jax.distributed ({' '.join(str(e).split())[:200]}){hint}"
        ) from None
    return jax.process_index() == 0


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
