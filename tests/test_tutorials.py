"""The tutorials run as written: every ```bash and ```python block of docs/getting-started.md
and docs/tutorials/*.md runs, in the page's order, in one empty folder per page, and each page's
check looks at the files and the outputs the page promises.

How a page marks its blocks (an HTML comment on the line just before the fence):

    <!-- not run: WHY -->        the block is shown, not run (a real-size command whose tested
                                 size follows, a download, an install)
    <!-- save as: FILE -->       the block is written to FILE in the page's folder, not run
                                 (the page says "save this as FILE")

Other languages (```text for printed output, ```nasty for a genotype shown whole) are not run
unless saved. A bash block runs under `bash -e -o pipefail`; a python block runs as a script of
its own (each is complete: its own imports). `nasty` and `python` are the ones of the
interpreter running the tests (the venv's: `.venv/bin/nasty` in CI), with this checkout first
on PYTHONPATH, so the pages test this tree; `NASTY_TUTORIAL_WRAPPER=1` puts a wrapper that runs
`python -m nasty.cli` on PATH instead of the venv's console script. nasty's caches (datasets,
latency tables) go to the page's folder, so nothing is read from or left in ~/.cache.

`NASTY_TUTORIAL_KEEP=DIR` keeps each page's folder and its blocks' outputs in DIR (to refresh the
abridged outputs the pages show). Each page's wall time and CPU time (every process the page
started, sampled from /proc) are printed: `pytest -s tests/test_tutorials.py`.
"""
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from procs import kill_session, session_pids

ROOT = Path(__file__).parent.parent
DOCS = ROOT / "docs"
PAGES = ["getting-started.md", "tutorials/own-images.md", "tutorials/write-a-space.md",
         "tutorials/rebuild-a-network.md", "tutorials/train-and-deploy.md", "tutorials/latency-budget.md"]

FENCE = re.compile(r"^( *)```(\w*)[^\n]*\n(.*?)^\1```[ \t]*$", re.M | re.S)
MARK = re.compile(r"<!--\s*(not run|save as)\s*:\s*(.*?)\s*-->\s*\Z", re.S)
SNIPPET = re.compile(r'^--8<--\s+"([^"]+)"\s*$', re.M)      # pymdownx.snippets, base_path: the repository


def blocks(page: str):
    """(language, code, action, argument) per fenced block: action is "run", "skip" or "save".
    A fence may be indented (inside a list or an admonition); its code is dedented, and a
    snippet line (--8<-- "path") is replaced by that file, as the site shows it."""
    text = (DOCS / page).read_text()
    out, end = [], 0
    for m in FENCE.finditer(text):
        indent, lang = m.group(1), m.group(2)
        code = "".join(line[len(indent):] if line.startswith(indent) else line
                       for line in m.group(3).splitlines(keepends=True))
        code = SNIPPET.sub(lambda s: (ROOT / s.group(1)).read_text().rstrip("\n"), code)
        mark = MARK.search(text[end:m.start()].rstrip())
        end = m.end()
        if mark and mark.group(1) == "save as":
            out.append((lang, code, "save", mark.group(2)))
        elif mark or lang not in ("bash", "python"):
            out.append((lang, code, "skip", mark.group(2) if mark else ""))
        else:
            out.append((lang, code, "run", ""))
    return out


def test_every_page_marks_its_blocks_and_is_in_the_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in PAGES:
        assert f" {page}" in nav, f"{page} is not in mkdocs.yml's nav"
        bs = blocks(page)
        assert any(action == "run" for _, _, action, _ in bs), f"{page}: no block runs"
        for lang, code, action, arg in bs:
            if action == "skip" and lang in ("bash", "python"):
                assert arg, f"{page}: a {lang} block is marked `not run` without a reason"
            if action == "save":
                assert arg and "/" not in arg.strip("./"), f"{page}: save as {arg!r}: a file name in the page's folder"
    # a marker that is not just before a fence would silently do nothing
    for page in PAGES:
        text = (DOCS / page).read_text()
        for m in re.finditer(r"<!--\s*(not run|save as)\b.*?-->", text, re.S):
            assert re.match(r"[ \t]*\n *```", text[m.end():]), f"{page}: marker {m.group(0)!r} is not followed by a fence"


def test_write_a_space_shows_the_repository_space_as_it_is():
    """The page explains two_op_cell.py line by line from a copy; the copy is the file's code
    (searchspaces/two_op_cell.py after its docstring), so the two cannot drift apart."""
    saved = [code for _, code, action, arg in blocks("tutorials/write-a-space.md")
             if action == "save" and arg == "two_op_cell.py"]
    assert len(saved) == 1
    source = (ROOT / "searchspaces" / "two_op_cell.py").read_text()
    code = source[source.index('"""', 3) + 3:].lstrip("\n")           # after the module docstring
    assert saved[0].strip() == code.strip()


class CpuMeter:
    """CPU seconds of every process in the sessions it watches, sampled from /proc/PID/stat."""

    def __init__(self):
        self.seen = {}                       # (pid, start time) -> utime + stime, in clock ticks
        self.sids = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self):
        for sid in list(self.sids):
            for pid in session_pids(sid):
                try:
                    stat = Path(f"/proc/{pid}/stat").read_text()
                except OSError:
                    continue
                f = stat[stat.rindex(")") + 2:].split()
                self.seen[(pid, f[19])] = int(f[11]) + int(f[12])

    def _run(self):
        while not self._stop.wait(0.25):
            self._sample()

    def stop(self) -> float:
        self._sample()
        self._stop.set()
        self._thread.join()
        return sum(self.seen.values()) / os.sysconf("SC_CLK_TCK")


def _environment(folder: Path) -> dict:
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH", "")] if p),
           "NASTY_CACHE": str(folder / ".cache" / "nasty"), "NASTY_CACHE_DIR": str(folder / ".cache" / "nasty"),
           "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    env.pop("NASTY_DATA_MIRROR", None)
    path = [str(bindir)]
    if os.environ.get("NASTY_TUTORIAL_WRAPPER") or not (bindir / "nasty").exists():
        wrap = folder / ".bin"
        wrap.mkdir()
        (wrap / "nasty").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m nasty.cli "$@"\n')
        (wrap / "nasty").chmod(0o755)
        path.insert(0, str(wrap))
    env["PATH"] = os.pathsep.join(path + [os.environ.get("PATH", "")])
    return env


def run_page(page: str, folder: Path):
    """Run the page's blocks in `folder`; returns the outputs of the blocks that ran, in order."""
    env = _environment(folder)
    meter, outputs = CpuMeter(), []
    t0 = time.monotonic()
    try:
        for i, (lang, code, action, arg) in enumerate(blocks(page)):
            if action == "save":
                (folder / arg).write_text(code)
                continue
            if action == "skip":
                continue
            argv = ["bash", "-e", "-o", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
            p = subprocess.Popen(argv, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, start_new_session=True)
            meter.sids.append(p.pid)
            try:
                out, _ = p.communicate(timeout=420)
            finally:
                kill_session(p.pid)              # Ray's daemons, if a search left any
                p.kill()
                p.wait()
            outputs.append(out)
            keep = os.environ.get("NASTY_TUTORIAL_KEEP")
            if keep:
                d = Path(keep) / Path(page).stem
                d.mkdir(parents=True, exist_ok=True)
                (d / f"block{i:02d}.{lang}.out").write_text(f"$ {code}\n{out}")
            assert p.returncode == 0, f"{page}, block {i} ({lang}) failed with rc {p.returncode}:\n{code}\n---\n{out[-4000:]}"
    finally:
        cpu = meter.stop()
        print(f"\n{page}: {time.monotonic() - t0:.0f} s wall, {cpu:.0f} s CPU (load {os.getloadavg()[0]:.1f})")
    return outputs


def _text(outputs) -> str:
    return "\n".join(outputs)


def _json(path: Path):
    import json
    return json.loads(path.read_text())


def check_getting_started(folder: Path, outputs):
    out = _text(outputs)
    assert re.search(r"^fashion-mnist\s+/\S+", out, re.M)                          # nasty data list found it
    run = folder / "runs" / "first"
    for f in ("config.json", "trials.jsonl", "best.json", "best.nasty", "best_proxy.nasty", "leaderboard.txt",
              "report.html", "study.db", "plots"):
        assert (run / f).exists(), f
    assert "best architecture: trial #" in out
    import nasty
    best = nasty.load(run / "best.nasty")
    c = nasty.cost(best)
    assert tuple(best.input) == (3, 224, 224) and best.classes == 1000            # priced at the ImageNet target
    assert c.macs <= 600_000_000 and f"{c.macs:,}" in out                         # nasty show printed it
    trial = _json(run / "best.json")["trial"]
    assert re.search(rf"^\s+1\s+#{trial}\s", out, re.M)                          # nasty report: rank 1 is the winner
    # step 7: one static page, pictures embedded, its parts in the order the page lists them
    html = (run / "report.html").read_text()
    assert "<script" not in html and "data:image" in html
    heads = re.findall(r"<h[12][^>]*>(.*?)</h[12]>", html)
    parts = ["Leaderboard", "Plots", "Summary", "The run", "The winner's genotype", "The winner's cells"]
    assert [h for h in heads if h in parts] == parts, heads


def check_own_images(folder: Path, outputs):
    out = _text(outputs)
    classes = sorted(p.name for p in (folder / "clothes").iterdir())
    assert classes == ["bag", "sneaker", "trouser", "tshirt"]
    assert sum(1 for _ in (folder / "clothes").rglob("*.png")) == 400
    run = folder / "runs" / "clothes"
    config = _json(run / "config.json")
    assert config["data"]["kind"] == "imagefolder" and config["data"]["shape"] == [1, 32, 32]
    images = config["images"]
    # 400 images: 80 held out for the test (20 %), 32 of the rest for validation (10 %)
    assert (images["test"], images["search"]["val"], images["search"]["train"]) == (80, 32, 288), images
    assert "288 training and 32 validation images per trial, 80 test images" in out
    assert "warning: the validation split has only 32 images" in out                    # the guard fired
    assert any("validation split has only 32 images" in w for w in _json(run / "best.json")["warnings"])
    assert "32 images" in (run / "report.html").read_text()
    best = nasty_load(run / "best.nasty")
    assert tuple(best.input) == (1, 32, 32) and best.classes == 4                        # --target data
    assert (run / "final" / "checkpoint.pt").is_file()
    assert re.search(r"^sneaker\.png\s+(tshirt|trouser|sneaker|bag) \d\.\d{3}", out, re.M)  # nasty predict


def nasty_load(path):
    import nasty
    return nasty.load(path)


def check_write_a_space(folder: Path, outputs):
    out = _text(outputs)
    import json

    import nasty
    assert "48 choices, 42 different costs" in out
    for name in ("smallest", "largest"):
        c = nasty.cost(nasty.load(folder / f"{name}.nasty"))
        assert f"MACs {c.macs:,}" in out, name                                   # nasty show priced it
    run = folder / "runs" / "cells"
    records = [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()]
    ok = [r for r in records if r["status"] == "ok"]
    assert len(ok) >= 2 and all(r["target"]["macs"] <= 5_000_000 for r in ok)
    assert all(r["target"]["macs"] > 5_000_000 for r in records if r["status"] == "rejected")
    trial = _json(run / "best.json")["trial"]
    assert re.search(rf"^\s+1\s+#{trial}\s", out, re.M)                          # the leaderboard's rank 1
    assert "['width', 'op_a', 'op_b', 'b_input', 'cells', 'pool']" in out and "96 choices" in out
    assert "the proxy sees pool: True" in out


def check_rebuild_a_network(folder: Path, outputs):
    out = _text(outputs)
    assert (folder / "my_resnet18.nasty").is_file()
    # nasty show, the counts against torchvision's, and the zoo's resnet18 layer by layer
    assert out.count("11,689,512") >= 4 and out.count("1,814,073,344") >= 3
    assert "the zoo's resnet18, layer by layer: True" in out
    right = re.search(r"^mine: 122 tensors copied; largest logit difference: (\S+)", out, re.M)
    wrong = re.search(r"^mine with bn.eps=1e-3: 122 tensors copied; largest logit difference: (\S+)", out, re.M)
    assert right and float(right.group(1)) < 1e-4, out[-3000:]
    assert wrong and float(wrong.group(1)) > 1e-2, out[-3000:]      # the randomised statistics expose a wrong eps
    # the wrong stride: the same parameter count, and the port's one-line cause
    assert re.search(r"^params 11,689,512, MACs (?!1,814,073,344)", out, re.M)
    assert re.search(r"^port_weights: the nets diverge at layer 10 .*another activation size", out, re.M)


def check_train_and_deploy(folder: Path, outputs):
    out = _text(outputs)
    run = folder / "runs" / "shirts"
    result = _json(run / "final" / "result.json")
    assert (run / "final" / "checkpoint.pt").is_file()
    assert f"test accuracy {result['test_acc']:.4f}" in out
    assert (folder / "model.onnx").is_file() and (folder / "model.onnx.data").is_file() and (folder / "model.pt2").is_file()
    assert "already trained" in out                                              # the second export did not retrain
    for i in range(3):
        assert re.search(rf"^test{i}\.png\s+\S.* \d\.\d{{3}}, ", out, re.M)           # nasty predict, --top 2
    assert "onnx and torch agree: True" in out and "pt2 and torch agree: True" in out


def check_latency_budget(folder: Path, outputs):
    out = _text(outputs)
    import json
    for net in ("resnet18", "mobilenet_v2"):
        assert len(re.findall(rf"^{net}: [0-9.]+ ms \(IQR [0-9.]+-[0-9.]+; .*±", out, re.M)) == 2, net
    assert re.search(r"latency at batch 1, one CPU thread, this machine: [0-9.]+ ms predicted", out)
    assert list((folder / ".cache" / "nasty" / "latency").glob("cpu-*.json")), "calibrate wrote no table"
    assert "correction for two_op_cell" in out
    run = folder / "runs" / "fast"
    assert (run / "latency_table.json").is_file()
    measured = _json(run / "latency.json")["trials"]
    assert measured and all(m["clock"] == "cpu" for m in measured.values())
    records = [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()]
    for r in records:                      # every sample was priced: trained ones within, rejected ones over
        if r["status"] == "ok":
            assert r["target"]["latency_ms"] <= 1.0
        elif r["status"] == "rejected":
            assert r["target"]["latency_ms"] > 1.0 and "ms predicted > 1 ms" in r["reason"]
    assert "pred. ms" in out and "measured ms" in out                              # the leaderboard's columns
    if "no winner: all" in out:
        # a busy machine can push every finalist over 1 ms: the page says the run then names none
        assert not any(m["within_budget"] for m in measured.values()), measured
        return
    best = _json(run / "best.json")
    assert best["latency"]["within_budget"] and best["latency"]["measured_ms"] <= 1.0
    assert measured[str(best["trial"])]["within_budget"]                           # the winner was measured here


CHECKS = {"getting-started.md": check_getting_started, "tutorials/own-images.md": check_own_images,
          "tutorials/write-a-space.md": check_write_a_space, "tutorials/rebuild-a-network.md": check_rebuild_a_network,
          "tutorials/train-and-deploy.md": check_train_and_deploy, "tutorials/latency-budget.md": check_latency_budget}


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_tutorial_runs_as_written(page, tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    outputs = run_page(page, folder)
    CHECKS[page](folder, outputs)
    keep = os.environ.get("NASTY_TUTORIAL_KEEP")
    if keep:
        shutil.copytree(folder, Path(keep) / Path(page).stem / "folder", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("tune", "tune-confirm", ".cache"))
