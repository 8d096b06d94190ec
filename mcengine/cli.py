"""The ``mcengine`` command: a thin layer over the library.

Every error a user can cause (a bad scenario, an unwritable output folder, a bad option)
is one line on stderr and exit status 2; an interrupted run writes nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import api, io
from .report import summary_text
from .scenario import ScenarioError, builtin_names, load_scenario

DEFAULT_SCENARIO = "baseline"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mcengine")
def cli():
    """Monte Carlo forecasts of when AI capabilities are first reached (frontier dates),
    how far behind other actors are (lead times) and when a given budget can reach them
    (diffusion dates)."""


@cli.command()
@click.argument("scenario", required=False, default=DEFAULT_SCENARIO)
@click.option("-n", "--trajectories", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Number of joint trajectories to sample.")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True, help="Random seed.")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Results folder [default: ./mcengine-results/<scenario name>].")
@click.option("--chunk-size", type=click.IntRange(min=1), default=None,
              help="Trajectories per device call [default: chosen for the device]. Results do not depend on it.")
@click.option("--force", is_flag=True, help="Replace the results folder if it exists.")
def run(scenario, trajectories, seed, out, chunk_size, force):
    """Run SCENARIO (a .toml path or a built-in name; default: baseline) and write
    events.parquet, access.parquet and paths.parquet.

    \b
    Examples:
      mcengine run
      mcengine run benchmarks/peer.toml -n 200000 --seed 1 --out results/peer
    """
    s = load_scenario(scenario)
    out = out if out is not None else Path("mcengine-results") / s.name
    io.check_output_folder(out, overwrite=force)  # before any sampling
    click.echo(f"running {s.name}: {trajectories:,} trajectories, seed {seed}", err=True)
    results = api.run(s, trajectories=trajectories, seed=seed, chunk_size=chunk_size)
    results.write(out, overwrite=force)
    m = results.metadata
    click.echo(f"compiled in {m['compile_seconds']:.1f} s, sampled in {m['sample_seconds']:.1f} s; "
               f"wrote {out}/{{events,access,paths}}.parquet", err=True)
    click.echo(summary_text(results))


@cli.command()
@click.argument("scenarios", nargs=-1, required=True)
def validate(scenarios):
    """Check scenario files (paths or built-in names); exit 0 if all are valid, else 2."""
    failed = False
    for name in scenarios:
        try:
            s = load_scenario(name)
            click.echo(f"ok: {name} ({s.name}: {len(s.actors)} actors, {len(s.thresholds)} thresholds, "
                       f"{s.start:g}-{s.horizon:g})")
        except ScenarioError as e:
            click.echo(f"error: {e}", err=True)
            failed = True
    sys.exit(2 if failed else 0)


@cli.command()
def scenarios():
    """List the built-in scenarios with their descriptions."""
    for name in builtin_names():
        s = load_scenario(name)
        click.echo(f"{name:<28} {s.description}")


@cli.command()
@click.argument("folder", type=click.Path(path_type=Path))
def summary(folder):
    """Print the summary of a results FOLDER written by `mcengine run`."""
    click.echo(summary_text(api.read_results(folder)))


def main(argv=None) -> None:
    """Entry point: runs the command group, turning every user error into one line."""
    try:
        cli.main(args=argv, prog_name="mcengine", standalone_mode=False)
    except (ScenarioError, io.OutputError) as e:
        _fail(str(e))
    except click.exceptions.Abort:
        _fail("interrupted; no results were written", code=130)
    except KeyboardInterrupt:
        _fail("interrupted; no results were written", code=130)
    except click.ClickException as e:
        _fail(e.format_message(), code=e.exit_code)
    except ValueError as e:
        _fail(str(e))
    except SystemExit as e:
        raise


def _fail(message: str, code: int = 2) -> None:
    click.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
