"""runs/<name>/report.html: a run as one static page (no server, no JavaScript).

This module only lays out what results.py gathers: a page template with one slot per
section, and small builders for its tables and figures. Every string that reaches the
page goes through `escape`: genotypes, failure reasons, cell and run names come from
user input (a space file, a --name). Pictures are embedded (data: URIs of the run's own SVG
or PNG files), so the page stands alone when it is mailed or copied without plots/; each
figure also links its files by relative path (plots/...).
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from html import escape as _escape
from pathlib import Path
from string import Template
from urllib.parse import quote

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>$title</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 76em; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.3em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
p.headline { font-size: 1.05em; margin-top: 0; }
div.warning { background: #fff3e0; border-left: 4px solid #e65100; padding: 0.5em 0.8em; margin: 0.6em 0; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 0.2em 0.7em; border-bottom: 1px solid #eee; text-align: right; vertical-align: top; }
th { border-bottom: 2px solid #999; } td.text, th.text { text-align: left; }
table.facts th { text-align: left; border: none; font-weight: normal; color: #555; }
table.facts td { text-align: left; border: none; }
tr.winner td { background: #fff6cc; font-weight: bold; }
pre { background: #f6f6f6; padding: 0.7em; overflow-x: auto; font-size: 0.85em; }
td pre { margin: 0; padding: 0.2em; white-space: pre-wrap; }
ul.summary { padding-left: 1.2em; } ul.summary li { margin: 0.2em 0; }
code { background: #f3f3f3; padding: 0 0.2em; font-size: 0.9em; overflow-wrap: anywhere; }
details summary { cursor: pointer; color: #333; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
</style>
</head>
<body>
<h1>$title</h1>
$headline
$warnings
<h2>Leaderboard</h2>
$leaderboard
<h2>Plots</h2>
$plots
<h2>Summary</h2>
$summary
<h2>The run</h2>
$facts
<h2>The winner's genotype</h2>
$genotype
<h2>The winner's cells</h2>
$cells
<h2>Failed trials</h2>
$failed
<p><small>Written by nasty on $written from the run's trials.jsonl; <code>nasty report RUN</code> rewrites it.</small></p>
</body>
</html>
""")


def escape(value) -> str:
    """Any value as HTML text (quotes too: safe inside attributes)."""
    return _escape("" if value is None else str(value), quote=True)


@dataclass(frozen=True)
class Picture:
    """A picture in the run folder: its caption and its files, relative to the run folder."""
    caption: str
    svg: str | None = None
    png: str | None = None


@dataclass(frozen=True)
class Table:
    """A table: header, rows of values, and per column whether it is text (left-aligned)."""
    header: tuple
    rows: list
    text_columns: frozenset = frozenset()
    highlight_first: bool = False        # the leaderboard's winner
    preformatted: frozenset = frozenset()   # columns shown as they are (reasons, tracebacks)


def page(title: str, facts: list[tuple[str, object]], summary: list[str], leaderboard: Table,
         plots: list[Picture], cells: list[Picture], no_cells: str, failed: Table, written: str,
         root: Path | None = None, headline: str = "", warnings: list[str] = (),
         genotype: tuple[str, str] | None = None) -> str:
    """The whole page: the leaderboard and plots first, then the summary, the run's facts, the
    winner's genotype (folded: (label, text)), its cells and the failures. `headline`: one line
    under the title (the winner); `warnings`: what the accuracies cannot say, in boxes at the top;
    `no_cells`: what to say when `cells` is empty; `root`: the folder the pictures' paths are
    relative to (their files are embedded), None to only link them. Text in `backticks` (commands)
    is shown as code: no Markdown reaches the page raw."""
    lines = [line for line in summary if line.strip() and line not in warnings]
    return PAGE.substitute(
        title=escape(title),
        headline=f'<p class="headline">{_inline(headline)}</p>' if headline else "",
        warnings="\n".join(f'<div class="warning">{_inline(w)}</div>' for w in warnings),
        facts=_facts(facts),
        summary='<ul class="summary">\n' + "\n".join(f"<li>{_inline(line.strip())}</li>" for line in lines)
                + "\n</ul>" if lines else "<p>-</p>",
        leaderboard=_table(leaderboard) if leaderboard.rows else "<p>No trial has a validation accuracy yet.</p>",
        plots="\n".join(_figure(p, root) for p in plots) or "<p>No plots were written.</p>",
        genotype=(f"<details><summary>{escape(genotype[0])}</summary>\n<pre>{escape(genotype[1])}</pre>\n</details>"
                  if genotype else "<p>No winner yet.</p>"),
        cells="\n".join(_figure(p, root) for p in cells) or f"<p>{escape(no_cells)}</p>",
        failed=_table(failed) if failed.rows else "<p>No trial failed.</p>",
        written=escape(written))


def _inline(text: str) -> str:
    """A line of text as HTML: escaped, with `backtick spans` as <code>."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:                       # an odd backtick: no code spans
        return escape(text)
    return "".join(f"<code>{escape(p)}</code>" if i % 2 else escape(p) for i, p in enumerate(parts))


def _facts(facts) -> str:
    rows = [f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in facts]
    return '<table class="facts">\n' + "\n".join(rows) + "\n</table>"


def _table(t: Table) -> str:
    def cell(tag, i, v):
        cls = ' class="text"' if i in t.text_columns else ""
        body = f"<pre>{escape(v)}</pre>" if tag == "td" and i in t.preformatted else escape(v)
        return f"<{tag}{cls}>{body}</{tag}>"

    head = "<tr>" + "".join(cell("th", i, h) for i, h in enumerate(t.header)) + "</tr>"
    rows = []
    for n, r in enumerate(t.rows):
        cls = ' class="winner"' if t.highlight_first and n == 0 else ""
        rows.append(f"<tr{cls}>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>")
    return "<table>\n<thead>" + head + "</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>"


def _href(path: str) -> str:
    return escape(quote(path))


EMBED_LIMIT = 4 << 20          # bytes: a larger picture is linked, not embedded


def _embedded(root: Path | None, path: str) -> str | None:
    """The picture file as a data: URI (an <img> never runs an SVG's scripts), or None."""
    if root is None:
        return None
    try:
        f = Path(root) / path
        if f.stat().st_size > EMBED_LIMIT:
            return None
        data = f.read_bytes()
    except OSError:
        return None
    kind = "image/svg+xml" if path.endswith(".svg") else "image/png"
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


def _figure(p: Picture, root: Path | None = None) -> str:
    shown = p.svg or p.png
    src = _embedded(root, shown) or _href(shown)
    links = " · ".join(f'<a href="{_href(f)}">{kind}</a>' for kind, f in (("SVG", p.svg), ("PNG", p.png)) if f)
    return (f'<figure><img src="{src}" alt="{escape(p.caption)}">'
            f"<figcaption>{escape(p.caption)} ({links})</figcaption></figure>")
