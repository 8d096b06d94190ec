"""The summary's per-regime and per-channel parts, and ``mcengine report`` (the HTML page):
complete, escaped, self-contained, safe to write, and shown by a real browser.

One small run with regimes, access budgets and two access channels (module scoped); the
browser check needs Debian's Chromium and says so when it skips.
"""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pyarrow.compute as pc
import pytest

import mcengine
from mcengine import io, report

from .conftest import scenario_toml
from .test_commands import cli, ok

pytest.importorskip("matplotlib")

CHROMIUM = Path("/usr/bin/chromium")
DESCRIPTION = "a <b>small</b> & 'odd' run"
SCENARIO = scenario_toml(
    scenario={"name": "small", "description": DESCRIPTION, "start": 2025.0, "horizon": 2040.0, "steps_per_year": 4},
    actors=[
        {"name": "frontier", "budget": {"lognormal": [1e8, 1e9]}, "growth": 0.3},
        {"name": "ow", "budget": 3e7, "growth": 0.3, "algo_lag": 0.5, "releases_weights": True, "release_lag": 0.25},
        {"name": "follower", "budget": {"lognormal": [1e6, 1e8]}, "growth": 0.3, "access_via": ["ow"]},
    ],
    thresholds=[
        {"name": "1e28", "flop": 1e28, "kind": "effective"},
        {"name": "1e31", "flop": 1e31, "kind": "effective"},
    ],
    access={"budgets": [1e6, 1e9]},
    regimes=[
        {"name": "fast", "weight": 0.5, "set": {"hardware.rate": 0.2}},
        {"name": "slow", "weight": 0.5, "set": {"hardware.rate": 0.05}},
    ],
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(results, folder, report.html's text) of one small run."""
    folder = tmp_path_factory.mktemp("report") / "small"
    results = mcengine.run(
        mcengine.parse_scenario(SCENARIO, "small.toml", ["hardware.volatility=0.1"]), trajectories=2000, seed=1
    )
    results.write(folder)
    assert ok(cli("report", folder)).strip() == f"wrote {folder / 'report.html'}"
    return mcengine.read_results(folder), folder, (folder / "report.html").read_text(encoding="utf-8")


def test_summary_has_regimes_lead_times_diffusion_and_channels(run):
    results = run[0]
    d = report.summary_data(results)
    assert list(d) == [
        *("scenario", "trajectories", "seed", "start", "horizon", "device"),
        *("thresholds", "diffusion", "regimes", "counts", "channels"),
    ]  # keys kept, channels added
    events = results.events.to_pylist()
    pick = lambda **k: next(r for r in events if all(r[c] == v for c, v in k.items()))
    assert [(c["actor"], c["channel"]) for c in d["channels"]] == [("follower", "trained"), ("follower", "released")]
    for g in [None, "fast", "slow"]:
        part = d if g is None else next(x for x in d["regimes"] if x["regime"] == g)
        for c in part["channels"]:
            r = pick(regime=g, actor="follower", channel=c["channel"], metric="t_first", threshold="1e28")
            assert c["dates"]["1e28"]["p_reached"] == r["p_reached"] and c["dates"]["1e28"]["p50"] == r["p50"]
    fast = d["regimes"][0]
    assert fast["regime"] == "fast" and set(fast) == {
        "regime",
        "frontier_date",
        "lead_time",
        "diffusion",
        "channels",
        "counts",
    }
    assert list(fast["lead_time"]["1e28"]) == ["ow", "follower"]
    lead = pick(regime="fast", actor="follower", metric="lead_time", threshold="1e31", channel=None)
    assert fast["lead_time"]["1e31"]["follower"]["p50"] == lead["p50"]
    access = pc.filter(results.access, pc.equal(results.access["regime"], "slow")).to_pylist()
    slow = d["regimes"][1]
    assert [(a["budget_usd"], a["dates"]["1e31"]["p50"]) for a in slow["diffusion"]] == [
        (r["budget_usd"], r["p50"]) for r in access if r["threshold"] == "1e31"
    ]
    assert [c["threshold"] for c in slow["counts"]] == ["1e28", "1e31"] and slow["counts"] != d["counts"]
    json.dumps(d)  # --json


def test_summary_text_shows_channels_and_regime_rows_only_when_there_are_some(run):
    results = run[0]
    d = report.summary_data(results)
    text = report.summary_text(results, width=140)
    share = text.split("Share of trajectories in which each channel")[1].split("\n\n")[0]
    trained = next(line for line in share.splitlines() if line.split()[:2] == ["follower", "trained"])
    assert trained.split()[2] == report.pct(d["channels"][0]["dates"]["1e28"]["p_reached"])
    regimes = text.split("Frontier median date per regime")[1].split("\n\n")[0].splitlines()
    slow = next(i for i, line in enumerate(regimes) if line.split()[:1] == ["slow"])
    assert regimes[slow + 2].split()[:1] == ["follower"]  # slow's frontier row, then ow, follower
    assert report.lead_cell(d["regimes"][1]["lead_time"]["1e28"]["follower"]) in regimes[slow + 2]
    assert any(line.split()[:2] == ["$1B", "access"] for line in regimes[slow:])
    pooled = lambda t: t.filter(pc.and_kleene(pc.is_null(t["regime"]), pc.is_null(t["channel"])))
    plain = mcengine.Results(
        pooled(results.events),
        results.access.filter(pc.is_null(results.access["regime"])),
        results.paths,
        results.metadata,
    )
    text = report.summary_text(plain, width=140)
    assert "channel" not in text and "per regime" not in text and "Median lead time" in text


def test_report_is_complete_escaped_and_self_contained(run):
    results, folder, page = run
    d = report.summary_data(results)
    tags = _Tags()
    tags.feed(page)
    tags.close()
    assert tags.opened.count("table") == 1 + 1 + 4 + 2 * 5 and not tags.unclosed  # run, frontier, pooled, regimes
    refs = [v for _, a in tags.attrs for k, v in a if k in ("src", "href", "srcset", "action", "data")]
    assert refs and all(v.startswith(("data:image/png;base64,", "#")) for v in refs), refs
    assert not re.search(r"(?i)https?:|url\(|@import|<script|<link|<iframe", page)
    images = [v for v in refs if v.startswith("data:")]
    from mcengine import plot

    assert len(images) == len(plot.drawn_figures(results)) == len(plot.figure_paths("figure.png"))  # all seven
    for v in images:
        png = base64.b64decode(v.split(",", 1)[1], validate=True)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and png.endswith(b"IEND\xaeB`\x82") and len(png) > 10_000
    text = html.unescape(re.sub(r"<[^>]+>", " ", page))
    for word in [*results.thresholds(), *results.regimes(), "follower: trained", "follower: released", "ow"]:
        assert word in text, word
    assert "$1M" in text and "$1B" in text and "hardware.volatility=0.1" in text and f"{2000:,}" in text
    assert DESCRIPTION not in page and html.escape(DESCRIPTION) in page and DESCRIPTION in text
    recorded = results.metadata["scenario_toml"]
    pre = re.search(r"<pre>(.*)</pre>", page, re.S)
    assert pre and html.unescape(pre.group(1)) == recorded and "# --set hardware.volatility=0.1" in recorded
    f = d["thresholds"][1]["frontier_date"]  # 1e31: not at the start
    assert f"{f['p50']:.2f}" in text and f"{f['p5']:.2f} – {f['p95']:.2f}" in text
    share = d["regimes"][1]["channels"][1]["dates"]["1e31"]["p_reached"]
    assert f"{report.pct(share)} first" in text


def test_report_writes_safely(run, tmp_path):
    folder = run[1]
    ok(cli("report", folder))  # report.html inside a results folder is mcengine's own
    io.check_output_folder(folder, overwrite=True)  # and --force can still replace the folder
    mine = tmp_path / "mine.html"
    mine.write_text("keep")

    def refused(*args, match):
        code, out, err = cli("report", *args)
        assert code == 2 and not out and len(err.strip().splitlines()) == 1 and re.search(match, err), err

    refused(folder, "--out", mine, match=r"^error: .*already exists; pass --force")
    assert mine.read_text() == "keep"
    refused(folder, "--out", tmp_path / "r.pdf", match=r"unsupported report file type '\.pdf'")
    refused(tmp_path, "--out", tmp_path / "r.html", match=r"not a results folder")
    (tmp_path / "file").write_text("")
    refused(folder, "--out", tmp_path / "file" / "r.html", match=r"cannot write there")
    (tmp_path / "link.html").symlink_to(mine)
    refused(folder, "--out", tmp_path / "link.html", "--force", match=r"is not a plain file")
    (tmp_path / "link.html").unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "mine.html"]  # nothing half-written
    ok(cli("report", folder, "--out", mine, "--force"))
    assert mine.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_in_a_browser(run, tmp_path):
    """Chromium, offline (every host name unresolvable), loads the page: every figure decodes
    whole, at its PNG's width, and the tables are in the DOM. A copy of the page with a
    garbled figure, a truncated one and an external image proves the check sees failures."""
    if not CHROMIUM.is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM}: install Debian's chromium to run the browser check")
    page = run[2]
    widths = [int.from_bytes(base64.b64decode(m)[16:20], "big") for m in re.findall(r"base64,([^'\"]+)", page)]
    # per image: its decoded width, or 0 if its last row of pixels is missing (a truncated PNG
    # decodes partly: its lower rows stay transparent; the figures are opaque)
    probe = """<script>addEventListener('load', () => {
      document.body.dataset.images = JSON.stringify([...document.images].map(i => {
        if (!i.complete || !i.naturalWidth) return 0;
        const c = document.createElement('canvas');
        c.width = i.naturalWidth; c.height = i.naturalHeight;
        const g = c.getContext('2d'); g.drawImage(i, 0, 0);
        const last = g.getImageData(0, i.naturalHeight - 1, i.naturalWidth, 1).data;
        for (let k = 3; k < last.length; k += 4) if (last[k] < 255) return 0;
        return i.naturalWidth;
      }));
    });</script></body>"""
    good = tmp_path / "good.html"
    good.write_text(page.replace("</body>", probe), encoding="utf-8")
    broken = tmp_path / "broken.html"  # the first figure garbled, the second cut short, one external image
    starts = [m.end() for m in re.finditer("base64,", page)][:2]
    end = page.index("'", starts[1])
    cut = base64.b64encode(base64.b64decode(page[starts[1] : end])[:-2000]).decode()
    text = page[: starts[0]] + "AAAA" + page[starts[0] + 4 : starts[1]] + cut + page[end:]
    broken.write_text(text.replace("</body>", "<img src='http://example.com/x.png'>" + probe), encoding="utf-8")
    dom = _dump_dom(good, tmp_path / "profile-good")
    shown = json.loads(html.unescape(re.search(r'data-images="([^"]*)"', dom).group(1)))
    assert shown == widths and len(shown) >= 4
    assert dom.count("<table") == page.count("<table") and "follower: released" in dom
    dom = _dump_dom(broken, tmp_path / "profile-broken")
    shown = json.loads(html.unescape(re.search(r'data-images="([^"]*)"', dom).group(1)))
    assert shown[:2] == [0, 0] and shown[2:-1] == widths[2:] and shown[-1] == 0


def _dump_dom(page: Path, profile: Path) -> str:
    args = [
        str(CHROMIUM),
        *("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"),
        *("--disable-background-networking", "--disable-component-update", "--disable-sync"),
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=10000",
        "--dump-dom",
        page.as_uri(),
    ]
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the tags left open."""

    VOID = {"meta", "img", "br", "hr", "link", "input", "source", "wbr"}

    def __init__(self):
        super().__init__()
        self.opened: list[str] = []
        self.attrs: list[tuple[str, list]] = []
        self.unclosed: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.opened.append(tag)
        self.attrs.append((tag, attrs))
        if tag not in self.VOID:
            self.unclosed.append(tag)

    def handle_endtag(self, tag):
        assert self.unclosed and self.unclosed[-1] == tag, (tag, self.unclosed[-5:])
        self.unclosed.pop()
