"""The pictures of a run folder: the accuracy-vs-cost plot (over-budget samples' costs, the
space's canonical members, a params panel; PNG and SVG), the winner's cell diagrams, and
report.html (valid, complete, escaped), after a search's finalize and after `nasty report`.
Run folders are built from records (no Ray, no training); one search runs through the CLI."""
from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image
from rich.console import Console

import nasty
from nasty.cli import main
from nasty.display import human
from nasty.search import results
from nasty.search.folder import RunFolder
from nasty.search.record import Epoch, NetCost, Status, TrialRecord
from nasty.space import load_space

EVIL = "<script>alert(1)</script>"
EVIL_VALUE = "<img src=x onerror=alert(1)>"
BUDGET = 20_000_000

# A space whose networks have a cell (so the winner's cells can be drawn), a canonical member,
# and a decision whose value is markup (it reaches the summary: it must be escaped there).
SPACE = f'''
import nasty
from nasty.space import space


@space(target=dict(input=(3, 32, 32), classes=10), proxy=dict(input=(1, 28, 28), classes=10),
       canonical={{"ref_net": dict(width=16, kernel=3, note="plain")}})
def cells(t, net):
    width = t.choice("width", (8, 16, 32))
    k = t.choice("kernel", (3, 5))
    t.choice("note", ("plain", {EVIL_VALUE!r}))
    c, h, w = net.input
    return nasty.parse(f"net cells input {{c}}x{{h}}x{{w}} classes {{net.classes}}\\n"
                       "cell blk(c):\\n"
                       f"  a   = conv{{k}}x{{k}} c=c bn relu <- in\\n"
                       "  b   = conv1x1 c=c bn <- in\\n"
                       "  out = relu <- add(a, b)\\n"
                       f"stem  conv3x3 c={{width}} bn relu\\n"
                       f"stage blk({{width}})\\nstage blk({{2 * width}})\\n"
                       "head  gap flatten fc c=classes\\n")
'''


@pytest.fixture
def space_file(tmp_path):
    p = tmp_path / "cells_space.py"
    p.write_text(SPACE)
    return str(p)


def _trained(space, n, decisions, acc, status=Status.OK, reason=None):
    g = space.genotype(decisions)
    c = nasty.cost(g)
    pg = space.genotype(decisions, proxy=True)
    pc = nasty.cost(pg)
    scored = status.scored
    return TrialRecord(status, n, sample=n, decisions=decisions, reason=reason, genotype=nasty.format(g),
                       proxy_genotype=nasty.format(pg), target=NetCost(c.macs, c.params, tuple(g.input), g.classes),
                       proxy=NetCost(pc.macs, pc.params, tuple(pg.input), pg.classes),
                       epochs=(Epoch(1, acc - 0.05), Epoch(2, acc)) if scored else (),
                       val_acc=acc if scored else None)


def _rejected(space, sample, decisions):
    c = nasty.cost(space.genotype(decisions))
    return TrialRecord(Status.REJECTED, None, sample=sample, decisions=decisions, reason="over budget",
                       target=NetCost(c.macs, c.params))


def _records(space):
    """Trained trials (the winner with a decision that is markup, the runner-up the canonical
    ref_net), a stopped one, a failed one with a malicious reason, and over-budget samples."""
    def d(w, k, note="plain"):
        return {"width": w, "kernel": k, "note": note}

    return [
        _trained(space, 0, d(8, 3), 0.70),
        _rejected(space, 1, d(32, 3)),
        _trained(space, 1, d(16, 3, EVIL_VALUE), 0.80),           # the winner
        _trained(space, 2, d(16, 3), 0.75),                       # ref_net
        _rejected(space, 4, d(32, 5)),
        _trained(space, 3, d(16, 5), 0.60, Status.STOPPED),
        _trained(space, 4, d(8, 3, EVIL_VALUE), 0.0, Status.FAILED, reason=f"RuntimeError: {EVIL}"),
        _rejected(space, 7, d(32, 5, EVIL_VALUE)),
    ]


def _run_folder(tmp_path, space_file, records, name="run") -> RunFolder:
    folder = RunFolder(tmp_path / name)
    folder.create({"space": space_file, "space_name": "cells", "budget": "20M", "budget_macs": BUDGET,
                   "budget_params": None, "controller": "random", "objective": None, "dataset": "fashion",
                   "trials": 5, "epochs": 2, "subset": 100, "val_subset": 50, "created": "2026-01-02 03:04:05",
                   "target": {"input": [3, 32, 32], "classes": 10}, "proxy": {"input": [1, 28, 28], "classes": 10}})
    for r in records:
        folder.append(r)
    return folder


def _check_png(path: Path):
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > 300 and im.height > 200
        im.verify()


def _svg_text(path: Path) -> str:
    root = ET.parse(path).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return " ".join(t.strip() for t in root.itertext() if t.strip())


# ------------------------------------------------------------------ the plots
def test_accuracy_vs_cost_shows_rejected_costs_canonical_members_and_params(tmp_path, space_file, monkeypatch):
    space = load_space(space_file)
    recs = _records(space)
    folder = _run_folder(tmp_path, space_file, recs)
    figures = []
    save = results._save_fig
    monkeypatch.setattr(results, "_save_fig", lambda fig, stem: figures.append(fig) or save(fig, stem))
    paths = results.write_plots(folder, recs, BUDGET, 20_000, space.canonical, chance=0.1)

    names = sorted(p.name for p in paths)
    assert names == ["accuracy_vs_macs.png", "accuracy_vs_macs.svg", "best_so_far.png", "best_so_far.svg"]
    for p in paths:
        _check_png(p) if p.suffix == ".png" else _svg_text(p)

    fig = figures[0]
    macs_ax, params_ax, macs_strip, params_strip = fig.axes
    rejected = [r for r in recs if r.status is Status.REJECTED]
    # the over-budget samples' costs: MACs on the left strip, params on the right, all beyond the MACs budget;
    # the trained trials and the budget set the axis, and a sample beyond it sits at its edge, counted
    for ax, strip, cost, budget in ((macs_ax, macs_strip, "macs", BUDGET), (params_ax, params_strip, "params", 20_000)):
        assert _strip_costs(ax, strip) == pytest.approx(sorted(_at_edge(ax, getattr(r.target, cost)) for r in rejected))
        hi = ax.get_xlim()[1]
        assert hi >= max([budget] + [getattr(r.target, cost) for r in recs if r.status is Status.OK])
        beyond = [getattr(r.target, cost) for r in rejected if getattr(r.target, cost) > hi]
        if beyond:
            assert any(t.get_text().startswith(f"{len(beyond)} more, up to {human(max(beyond))}") for t in strip.texts)
    assert macs_ax.get_xlim()[1] < max(r.target.macs for r in rejected)      # the axis was not stretched
    assert all(r.target.macs > BUDGET for r in rejected)
    # the budget lines: MACs on the left, params on the right, through the strips too
    for ax, b in ((macs_ax, BUDGET), (macs_strip, BUDGET), (params_ax, 20_000), (params_strip, 20_000)):
        assert [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == "--"] == [b]
    # the params panel plots each trained trial at its target params
    ok = [r for r in recs if r.status is Status.OK]
    points = {(round(x), round(y, 6)) for c in params_ax.collections for x, y in c.get_offsets()}
    assert {(r.target.params, r.val_acc) for r in ok} <= points
    # the canonical member that was evaluated is labelled where it is, on both panels
    ref = recs[3]
    for ax, x in ((macs_ax, ref.target.macs), (params_ax, ref.target.params)):
        labels = [(t.get_text(), t.xy) for t in ax.texts]
        assert labels == [("ref_net", (x, ref.val_acc))]
    assert not [t for t in macs_strip.texts if "ref" in t.get_text()]   # no over-budget sample is a canonical member
    assert macs_ax.get_legend() is None               # the legend sits above the panels: it hides no point
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "canonical member" in legend and "budget" in legend and "winner (#1)" in legend
    # the chance level on every accuracy axis; whole-number trial ticks
    best_ax = figures[1].axes[0]
    for ax in (macs_ax, params_ax, best_ax):
        assert [list(line.get_ydata()) for line in ax.get_lines() if line.get_linestyle() == ":"] == [[0.1, 0.1]]
    assert all(float(t).is_integer() for t in best_ax.get_xticks())
    assert best_ax.get_legend() and best_ax.get_legend().get_bbox_to_anchor().x0 > best_ax.get_window_extent().x1 - 1
    # the SVG keeps its text as text: the labels are there to read (and to search)
    svg = _svg_text(folder.path / "plots" / "accuracy_vs_macs.svg")
    assert "ref_net" in svg and "over" in svg and "3 over budget" in svg


def _strip_costs(ax, strip) -> list[float]:
    """The x of every over-budget mark in a strip, sorted."""
    return sorted(float(x) for c in strip.collections for x, _ in c.get_offsets())


def _at_edge(ax, cost) -> float:
    """Where an over-budget sample of `cost` is drawn: at its cost, or at the axis' right edge beyond it."""
    return min(cost, ax.get_xlim()[1])


def test_the_same_records_give_the_same_svg_bytes(tmp_path, space_file):
    space = load_space(space_file)
    recs = _records(space)
    a, b = (_run_folder(tmp_path, space_file, recs, name) for name in ("a", "b"))
    svgs = [[p.read_bytes() for p in results.write_plots(f, recs, BUDGET) if p.suffix == ".svg"] for f in (a, b)]
    assert svgs[0] == svgs[1] and len(svgs[0]) == 2


def test_the_loops_plots_show_the_rejected_samples_it_does_not_keep(tmp_path, space_file, monkeypatch):
    """The search loop may keep only the trials; the over-budget samples come from trials.jsonl."""
    space = load_space(space_file)
    recs = _records(space)
    folder = _run_folder(tmp_path, space_file, recs)
    figures = []
    monkeypatch.setattr(results, "_save_fig", lambda fig, stem: figures.append(fig) or [])
    results.write_results(folder, [r for r in recs if r.status.counted], BUDGET)
    ax, strip = figures[0].axes[0], figures[0].axes[2]
    assert _strip_costs(ax, strip) == pytest.approx(sorted(
        _at_edge(ax, r.target.macs) for r in recs if r.status is Status.REJECTED))
    assert [t.get_text() for t in figures[0].axes[0].texts] == ["ref_net"]     # canonical: from config.json


def test_a_rejected_canonical_member_is_labelled_on_the_strip(tmp_path, space_file, monkeypatch):
    space = load_space(space_file)
    canonical = {"big_ref": {"width": 32, "kernel": 5, "note": "plain"}}
    recs = _records(space)
    folder = _run_folder(tmp_path, space_file, recs)
    figures = []
    monkeypatch.setattr(results, "_save_fig", lambda fig, stem: figures.append(fig) or [])
    results.write_plots(folder, recs, BUDGET, None, canonical)
    strip = figures[0].axes[2]
    assert [t.get_text() for t in strip.texts if "big_ref" in t.get_text()]      # at its cost, or at the edge
    assert not figures[0].axes[0].texts


def test_plots_of_a_run_without_results_are_still_written(tmp_path, space_file):
    space = load_space(space_file)
    folder = _run_folder(tmp_path, space_file, [])
    assert len(results.write_plots(folder, [], BUDGET)) == 4
    only_rejected = [_rejected(space, 0, {"width": 32, "kernel": 5, "note": "plain"})]
    for p in results.write_plots(folder, only_rejected, BUDGET):
        _check_png(p) if p.suffix == ".png" else _svg_text(p)


# ------------------------------------------------------------------ report.html
class StrictHTML(HTMLParser):
    """Fails on unbalanced tags; collects the tags, the text, and every src/href."""
    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.tags, self.text, self.refs, self.doctype = [], [], [], [], None

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.refs += [v for k, v in attrs if k in ("src", "href")]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(path: Path) -> StrictHTML:
    p = StrictHTML()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    assert p.doctype == "DOCTYPE html" and not p.stack
    return p


def test_nasty_report_writes_a_valid_escaped_report_and_draws_the_winners_cells(tmp_path, space_file, capsys):
    space = load_space(space_file)
    recs = _records(space)
    folder = _run_folder(tmp_path, space_file, recs)
    folder.write_json("best.json", {"trial": 1, "test_acc": 0.7712})      # the winner's test accuracy, kept
    (folder.path / "plots").mkdir()
    (folder.path / "plots" / "cell_old_winner.svg").write_text("<svg/>")  # an earlier winner's cell: removed

    assert main(["report", str(folder.path), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert f"page: {folder.path / 'report.html'}" in out and "could not" not in out

    plots = folder.path / "plots"
    assert sorted(p.name for p in plots.iterdir()) == [
        "accuracy_vs_macs.png", "accuracy_vs_macs.svg", "best_so_far.png", "best_so_far.svg",
        "cell_blk.png", "cell_blk.svg"]
    _check_png(plots / "cell_blk.png")
    assert "conv 3x3" in _svg_text(plots / "cell_blk.svg")     # the winner (ref_net) is width 16, kernel 3

    page = _parse(folder.path / "report.html")
    html = (folder.path / "report.html").read_text()
    text = "".join(page.text)
    # nothing from the records became markup: the malicious reason and decision are text
    assert not any(tag == "script" for tag, _ in page.tags)
    assert EVIL not in html and EVIL_VALUE not in html
    assert f"RuntimeError: {EVIL}" in text and EVIL_VALUE in text
    assert [tag for tag, _ in page.tags if tag == "img"] and all(
        set(a) == {"src", "alt"} for tag, a in page.tags if tag == "img")
    # every picture it shows is embedded (the page stands alone) from the run folder's own file, and
    # every link is a file of the run folder, by relative path
    import base64
    shown = [a["src"] for tag, a in page.tags if tag == "img"]
    assert len(shown) == 3 and all(src.startswith("data:image/svg+xml;base64,") for src in shown)
    embedded = {base64.b64decode(src.split(",", 1)[1]) for src in shown}
    assert embedded == {(plots / f).read_bytes() for f in ("accuracy_vs_macs.svg", "best_so_far.svg", "cell_blk.svg")}
    links = [r for r in page.refs if not r.startswith("data:")]
    assert links and all(not r.startswith(("/", "http")) and (folder.path / r).is_file() for r in links)
    assert {"plots/accuracy_vs_macs.svg", "plots/best_so_far.svg", "plots/cell_blk.svg", "plots/cell_blk.png"} \
        <= set(links)
    # the header, the summary and the leaderboard: every ranked trial, best first, the winner's test accuracy
    for fact in ("cells", "20M (multiply-adds)", "random", "fashion", "2026-01-02 03:04:05", "3x32x32, 10 classes"):
        assert fact in text
    assert "best architecture: trial #1" in text and "test acc 0.7712" in text
    board = html.split("<h2>Leaderboard</h2>", 1)[1].split("<h2>", 1)[0]
    rows = board.split("<tr")[2:]                 # after the header row
    ranked = results.ranked(recs)
    assert len(rows) == len(ranked) == 4
    for row, r in zip(rows, ranked):
        assert f"#{r.trial}" in row and f"{r.val_acc:.4f}" in row and r.status.value in row
    assert 'class="winner"' in rows[0] and "0.7712" in rows[0] and "0.7712" not in "".join(rows[1:])
    assert "#2 = ref_net" in rows[1] and "ref_net" not in rows[0] + "".join(rows[2:])
    failed = html.split("<h2>Failed trials</h2>", 1)[1]
    assert "#4" in failed and "&lt;script&gt;alert(1)&lt;/script&gt;" in failed
    # the layout: the winner in one line, the leaderboard and plots first; the genotype folded below;
    # commands as code, no raw Markdown
    heads = [h.split("</h2>")[0] for h in html.split("<h2>")[1:]]
    assert heads[:3] == ["Leaderboard", "Plots", "Summary"] and heads.index("The winner's genotype") > 2
    assert html.index('<p class="headline">best architecture: trial #1') < html.index("<h2>Leaderboard</h2>")
    genotype = html.split("<h2>The winner's genotype</h2>", 1)[1].split("<h2>", 1)[0]
    assert genotype.lstrip().startswith("<details><summary>") and "<pre>net " in genotype
    assert "`" not in text and "<code>nasty train " in html


def test_report_html_of_a_run_with_nothing_trained(tmp_path, space_file):
    space = load_space(space_file)
    folder = _run_folder(tmp_path, space_file, [_rejected(space, 0, {"width": 32, "kernel": 5, "note": "plain"})])
    results.report(folder.path)
    page = _parse(folder.path / "report.html")
    text = "".join(page.text)
    assert "No trial has a validation accuracy yet." in text and "No trial finished training." in text
    assert not list((folder.path / "plots").glob("cell_*"))


def test_a_winner_without_cells_and_a_page_that_cannot_be_written_are_notes(tmp_path):
    tiny = str(Path(__file__).parent / "spaces" / "tiny.py")
    space = load_space(tiny)
    d = {"width": 8, "depth": 1, "kernel": 3, "blowup": False}
    folder = _run_folder(tmp_path, tiny, [_trained(space, 0, d, 0.5)])
    pictures = results.write_pictures(folder, folder.records(), folder.config())
    assert pictures.cells == [] and pictures.notes == [] and pictures.page == folder.path / "report.html"
    assert "The winner has no cells to draw" in "".join(_parse(pictures.page).text)
    pictures.page.unlink()
    pictures.page.mkdir()                           # report.html cannot be replaced now
    pictures = results.write_pictures(folder, folder.records(), folder.config())
    assert pictures.page is None and len(pictures.notes) == 1
    assert pictures.notes[0].startswith("(report.html could not be written: ")
    assert pictures.lines() == pictures.notes


# ------------------------------------------------------------------ the end of a search
def _search_loop(tmp_path, space_file, trials=4):
    from test_search_package import FakeExecutor

    from nasty.controllers import make_controller
    from nasty.search.budget import Budget
    from nasty.search.loop import SearchLoop
    from nasty.search.settings import Settings
    s = Settings(space=space_file, budget="20M", trials=trials, epochs=2, subset=100, val_subset=50,
                 seed=3).resolved(gpu=False)
    space = load_space(space_file)
    folder = _run_folder(tmp_path, space_file, [])
    loop = SearchLoop(s, folder, space, make_controller("random", space, seed=3), Budget.parse("20M"),
                      (1, 28, 28), 10)
    FakeExecutor().run(loop)
    loop.write(plots=True)
    return s, folder, loop


def test_finalize_draws_the_winners_cells_and_writes_report_html(tmp_path, space_file):
    from nasty.search.budget import Budget
    from nasty.search.runner import finalize
    s, folder, loop = _search_loop(tmp_path, space_file)
    console = Console(file=io.StringIO(), width=300)
    summary = finalize(folder, s, loop.records, None, Budget.parse("20M"), console, "the test says so", 12.0)
    assert summary["cells"] == ["blk"] and summary["notes"] == []
    assert summary["report"] == str(folder.path / "report.html")
    plots = folder.path / "plots"
    for name in ("cell_blk.png", "cell_blk.svg", "accuracy_vs_macs.svg", "best_so_far.svg"):
        assert (plots / name).is_file()
    printed = console.file.getvalue()
    assert "report.html" in printed and "stopped because the test says so" in printed
    page = _parse(folder.path / "report.html")
    text = "".join(page.text)
    best = results.best_of(loop.records)
    assert f"best architecture: trial #{best.trial}" in text and "stopped because the test says so" in text
    assert "plots/cell_blk.svg" in page.refs


def test_a_drawing_that_fails_is_a_note_and_never_fails_the_search(tmp_path, space_file, monkeypatch):
    from nasty import draw
    from nasty.search.budget import Budget
    from nasty.search.runner import finalize
    s, folder, loop = _search_loop(tmp_path, space_file, trials=2)
    (folder.path / "plots" / "cell_blk.png").write_bytes(b"an earlier winner's picture")

    def broken(*a, **k):
        raise RuntimeError("no fonts\ntoday")

    monkeypatch.setattr(draw, "draw_cells", broken)
    console = Console(file=io.StringIO(), width=300)
    summary = finalize(folder, s, loop.records, None, Budget.parse("20M"), console)
    note = "(the winner's cells could not be drawn: RuntimeError: no fonts today)"
    assert summary["cells"] == [] and summary["notes"] == [note] and summary["report"]
    assert note in console.file.getvalue()
    assert not list((folder.path / "plots").glob("cell_*"))          # no picture of another winner is left
    assert note in "".join(_parse(folder.path / "report.html").text)


# ------------------------------------------------------------------ one search through the CLI
@pytest.mark.slow
def test_a_cli_search_leaves_plots_cells_and_report_html(tmp_path, space_file, capsys):
    argv = ["search", "--space", space_file, "--budget", "20M", "--trials", "2", "--epochs", "1",
            "--subset", "200", "--val-subset", "100", "--seed", "2", "--runs-dir", str(tmp_path / "runs"),
            "--name", "e2e"]
    assert main(argv) == 0
    folder = tmp_path / "runs" / "e2e"
    out = capsys.readouterr()
    assert "report.html" in out.out + out.err
    best = json.loads((folder / "best.json").read_text())
    assert best["trial"] in (0, 1)
    for name in ("accuracy_vs_macs", "best_so_far", "cell_blk"):
        _check_png(folder / "plots" / f"{name}.png")
        _svg_text(folder / "plots" / f"{name}.svg")
    page = _parse(folder / "report.html")
    assert all(r.startswith("data:image/") or (folder / r).is_file() for r in page.refs)
    assert f"best architecture: trial #{best['trial']}" in "".join(page.text)
