"""The shareable report of a results folder: one self-contained HTML file.

``mcengine report DIR --out FILE.html`` writes the scenario's name and description, the
run's provenance, the summary tables of :func:`mcengine.report.summary_data` (all
trajectories pooled, then per regime), the figures of :func:`mcengine.plot.save_all`
embedded as PNG ``data:`` URIs, and the scenario text the run recorded. It has no scripts
and no external references (styles inline, no fonts or images to fetch), so it opens
offline and prints as it shows. Every string from the results is escaped.
"""

from __future__ import annotations

import base64
import datetime
import html
import tempfile
import tomllib
from pathlib import Path

from . import __version__, io, report
from .errors import OutputError
from .results import Results, read_results
from .scenario import recorded_overrides

EXTENSIONS = (".html", ".htm")
DEFAULT_NAME = "report.html"  # inside the results folder; io counts it as mcengine's own file

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1a1a1a;
  max-width: 1180px; margin: 2em auto; padding: 0 1.2em; line-height: 1.4; font-size: 15px; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { font-size: 1.3em; border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
h3 { font-size: 1.1em; margin-top: 1.6em; }
p.description { font-size: 1.05em; color: #333; margin-top: 0; }
p.note, figcaption { color: #555; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.9em; }
caption { text-align: left; font-weight: 600; padding: 0.3em 0; caption-side: top; }
th, td { padding: 0.25em 0.7em; border-bottom: 1px solid #e2e2e2; vertical-align: top; }
thead th { border-bottom: 2px solid #888; text-align: right; }
thead th:first-child, tbody th { text-align: left; font-weight: 600; }
td { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td small, td .share { display: block; color: #666; font-size: 0.85em; }
table.provenance td { text-align: left; white-space: normal; }
.table-wrap { overflow-x: auto; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
pre { background: #f6f6f6; border: 1px solid #ddd; padding: 0.8em; font-size: 0.8em; overflow-x: auto;
  white-space: pre-wrap; word-break: break-word; }
nav { margin: 0.8em 0 0; font-size: 0.95em; }
nav a { color: #1f4e99; }
footer { margin-top: 3em; color: #777; font-size: 0.85em; }
@media print {
  nav { display: none; }
  body { max-width: none; margin: 0; font-size: 11pt; }
  h2, h3 { break-after: avoid; }
  table, figure { break-inside: avoid; }
  .table-wrap { overflow: visible; }
}
"""


def report_command(folder, out=None, overwrite: bool = False) -> Path:
    """``mcengine report DIR [--out FILE.html]``: write the report of results folder
    ``folder`` (default ``DIR/report.html``) and return its path. An existing file is
    replaced only with ``overwrite`` or if it is ``report.html`` inside a folder mcengine
    wrote. Raises a UserError (one line) for a folder that is not a results folder, an
    extension other than .html/.htm, or a path that cannot or must not be written."""
    folder = Path(folder)
    out = Path(out) if out is not None else folder / DEFAULT_NAME
    check_out(out, overwrite)  # before reading: a bad --out fails fast
    results = read_results(folder)
    page = render(results)
    return io.write_file(out, page.encode("utf-8"), overwrite=overwrite or _own(out))


def check_out(out: Path, overwrite: bool = False) -> None:
    """Fail if the report could not or must not be written at ``out``."""
    if out.suffix.lower() not in EXTENSIONS:
        shown = repr(out.suffix) if out.suffix else "(none)"
        raise OutputError(f"{out}: unsupported report file type {shown}; use .html")
    io.check_output_file(out, replace=overwrite or _own(out))


def _own(out: Path) -> bool:
    """Whether ``out`` is the report of a folder mcengine wrote (replaced without --force)."""
    return out.name == DEFAULT_NAME and io.written_by_mcengine(out.parent)


def render(results: Results) -> str:
    """The report as one HTML page (text)."""
    d = report.summary_data(results)
    m = results.metadata
    text = m.get("scenario_toml") or ""
    names = [t["threshold"] for t in d["thresholds"]]
    pooled = {
        "frontier_date": {t["threshold"]: t["frontier_date"] for t in d["thresholds"]},
        "lead_time": {t["threshold"]: t["lead_time"] for t in d["thresholds"]},
        **{k: d[k] for k in ("diffusion", "channels", "counts")},
    }
    sections = [("run", "Run"), ("summary", "Summary"), ("figures", "Figures")]
    sections += [(f"regime-{i}", f"Regime {g['regime']}") for i, g in enumerate(d["regimes"], 1)]
    sections += [("scenario", "Scenario")]
    contents = " · ".join(f"<a href='#{key}'>{_e(title)}</a>" for key, title in sections)
    body = [
        f"<h1>{_e(d['scenario'])}</h1>",
        f"<p class='description'>{_e(_description(text))}</p>" if _description(text) else "",
        f"<nav>{contents}</nav>",
        _provenance(d, m, text),
        "<h2 id='summary'>Summary: all trajectories</h2>",
        _frontier_table(d),
        _part(names, pooled, title=None),
        "<h2 id='figures'>Figures</h2>",
        *_figures(results),
    ]
    for i, g in enumerate(d["regimes"], 1):
        body += [
            f"<h2 id='regime-{i}'>Regime {_e(g['regime'])}</h2>",
            f"<p class='note'>The trajectories of regime {_e(g['regime'])} only.</p>",
            _part(names, g, title=g["regime"]),
        ]
    body += [
        "<h2 id='scenario'>Scenario</h2>",
        "<p class='note'>The scenario text as the run recorded it (overrides follow as <code># --set</code> "
        "lines).</p>",
        f"<pre>{_e(text)}</pre>",
        f"<footer>Written by mcengine {_e(__version__)} on "
        f"{_e(datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds'))} from a run finished "
        f"{_e(m.get('finished', '—'))}.</footer>",
    ]
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{_e(d['scenario'])}: mcengine report</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(b for b in body if b)
        + "\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------------------------------
# Parts of the page
# ---------------------------------------------------------------------------------------


def _provenance(d: dict, m: dict, text: str) -> str:
    """The run's provenance as a two-column table."""
    versions = m.get("versions") or {}
    rows = [
        ("scenario source", m.get("scenario_source")),
        ("trajectories", f"{d['trajectories']:,}"),
        ("seed", d["seed"]),
        ("period", f"{_num(d['start'])} to {_num(d['horizon'])}, {_num(m.get('steps_per_year'))} steps a year"),
        ("overrides", "; ".join(recorded_overrides(text)) or "none"),
        ("random numbers", f"{m.get('prng', '—')}, shocks by {m.get('generator', '—')}"),
        ("device", f"{d['device']} × {m.get('device_count', '—')}, {m.get('processes', 1)} process(es)"),
        ("host", m.get("host")),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items())),
        ("started / finished", f"{m.get('started', '—')} / {m.get('finished', '—')}"),
        (
            "time",
            f"compiled in {_num(m.get('compile_seconds'))} s, sampled in {_num(m.get('sample_seconds'))} s",
        ),
    ]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e('—' if v is None else v)}</td></tr>" for k, v in rows)
    return f"<h2 id='run'>Run</h2>\n<table class='provenance'><tbody>{body}</tbody></table>"


def _frontier_table(d: dict) -> str:
    """Per threshold: its FLOP and kind, the frontier's median date, 90% interval, share reached."""
    by = f" by {d['horizon']:g}" if d["horizon"] else ""
    head = ["threshold", "FLOP", "kind", "median date", "90% interval", f"reached{by}"]
    rows = []
    for t in d["thresholds"]:
        f = t["frontier_date"]
        cells = [
            f"{t['flop']:.3g}",
            t["kind"],
            report.date_text(f, "reached at start"),
            f"{report.fmt(f['p5'], '.2f')} – {report.fmt(f['p95'], '.2f')}",
            report.pct(f["p_reached"]),
        ]
        rows.append((t["threshold"], [_e(c) for c in cells]))
    return _table(f"Frontier date (calendar year; '—': the quantile is not reached{by})", head, rows, cls="frontier")


def _part(names: list[str], g: dict, title: str | None) -> str:
    """The tables of one regime (``title``) or of all trajectories (None): the frontier's date
    per regime, lead times, diffusion dates, dates by channel and counts."""
    out = []
    where = f" in regime {title}" if title else ""
    if title is not None:
        rows = [("frontier", [_date_html(g["frontier_date"].get(n)) for n in names])]
        out.append(_table(f"Frontier date{where} (calendar year; median, 90% interval)", ["", *names], rows))
    actors = list(dict.fromkeys(a for leads in g["lead_time"].values() for a in leads))
    if actors:
        rows = [(a, [_lead_html(g["lead_time"].get(n, {}).get(a)) for n in names]) for a in actors]
        out.append(
            _table(
                f"Lead time{where}: years after the frontier (median, 90% interval; the share reached by the "
                "horizon if below 100%)",
                ["actor", *names],
                rows,
            )
        )
    if g["diffusion"]:
        rows = [
            (f"{report.usd(a['budget_usd'])}", [_date_html(a["dates"].get(n)) for n in names]) for a in g["diffusion"]
        ]
        out.append(
            _table(
                f"Diffusion date{where}: when an access budget can reach each threshold (calendar year; median, "
                "90% interval)",
                ["budget", *names],
                rows,
            )
        )
    if g["channels"]:
        rows = [
            (f"{c['actor']}: {c['channel']}", [_channel_html(c["dates"].get(n)) for n in names]) for c in g["channels"]
        ]
        out.append(
            _table(
                f"Date by channel{where} (calendar year; median over all trajectories, '—' where the channel came "
                "first in fewer than half; below, the share of trajectories in which it came first)",
                ["actor: channel", *names],
                rows,
            )
        )
    if g["counts"] and g["counts"][0]["by_year"]:
        years = list(g["counts"][0]["by_year"])
        rows = [
            (
                c["threshold"],
                [
                    f"{_e(report.fmt(v['p50'], '.0f'))}<small>{_e(report.fmt(v['p5'], '.0f'))}–"
                    f"{_e(report.fmt(v['p95'], '.0f'))}</small>"
                    for v in c["by_year"].values()
                ],
            )
            for c in g["counts"]
        ]
        out.append(
            _table(
                f"Organisations able to reach each threshold by 1 January of the year{where} (actors and every "
                "group member; median, 90% interval)",
                ["threshold", *years],
                rows,
            )
        )
    return "\n".join(out)


def _figures(results: Results) -> list[str]:
    """Every figure :func:`mcengine.plot.save_all` draws, as an embedded PNG shown at the
    figure's own size (100 CSS pixels an inch, at most the page's width)."""
    from . import plot

    out = []
    with tempfile.TemporaryDirectory(prefix="mcengine-report-") as tmp:
        for p in plot.save_all(results, Path(tmp) / "figure.png"):
            data = p.read_bytes()
            width = _png_width_inches(data) * 100
            name = p.stem.removeprefix("figure-")
            out.append(
                f"<figure id='figure-{_e(name)}'><img src='data:image/png;base64,"
                f"{base64.b64encode(data).decode('ascii')}' width='{width:.0f}' alt='{_e(name)} figure'></figure>"
            )
    return out


# ---------------------------------------------------------------------------------------
# Cells and helpers
# ---------------------------------------------------------------------------------------


def _date_html(x: dict | None) -> str:
    """A median date (as in the terminal summary) over its 90% interval."""
    return "" if x is None else f"{_e(report.date_cell(x))}{_interval(x, '.2f')}"


def _lead_html(x: dict | None) -> str:
    """A median lead time (as in the terminal summary) over its 90% interval."""
    return "" if x is None else f"{_e(report.lead_cell(x))}{_interval(x, '+.2f')}"


def _channel_html(x: dict | None) -> str:
    """A channel's median date over the share of trajectories in which it came first."""
    if x is None:
        return ""
    return f"{_e(report.date_text(x))}<span class='share'>{_e(report.pct(x['p_reached']))} first</span>"


def _png_width_inches(data: bytes) -> float:
    """A PNG's width in inches: its pixel width (IHDR) over its resolution (pHYs, pixels
    a metre; 100 dpi if it has none)."""
    width, dpi, i = int.from_bytes(data[16:20], "big"), 100.0, 8
    while i + 8 <= len(data):
        size, kind = int.from_bytes(data[i : i + 4], "big"), data[i + 4 : i + 8]
        if kind == b"pHYs" and data[i + 16] == 1:
            dpi = int.from_bytes(data[i + 8 : i + 12], "big") * 0.0254
            break
        if kind == b"IDAT":
            break
        i += 12 + size
    return width / dpi


def _interval(x: dict, spec: str) -> str:
    """The 90% interval in small print; nothing where it is a single number."""
    lo, hi = x["p5"], x["p95"]
    if lo is not None and hi is not None and round(lo, 2) == round(hi, 2):
        return ""
    return f"<small>{_e(report.fmt(x['p5'], spec))} – {_e(report.fmt(x['p95'], spec))}</small>"


def _table(caption: str, head: list[str], rows: list[tuple[str, list[str]]], cls: str = "") -> str:
    """An HTML table: escaped caption, header and row names; cells are HTML already."""
    th = "".join(f"<th scope='col'>{_e(h)}</th>" for h in head)
    body = "".join(
        f"<tr><th scope='row'>{_e(name)}</th>{''.join(f'<td>{c}</td>' for c in cells)}</tr>" for name, cells in rows
    )
    attr = f" class='{cls}'" if cls else ""
    return (
        f"<div class='table-wrap'><table{attr}><caption>{_e(caption)}</caption>"
        f"<thead><tr>{th}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _description(text: str) -> str:
    """The scenario's description from its recorded text; empty if there is none."""
    try:
        value = tomllib.loads(text).get("scenario", {}).get("description", "")
    except (tomllib.TOMLDecodeError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def _num(x) -> str:
    return "—" if x is None else f"{x:g}"


def _e(x) -> str:
    return html.escape(str(x), quote=True)
