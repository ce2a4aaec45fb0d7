"""`nasty upgrade FILE` (nasty/commands/upgrade.py, legacy.rewrite): a genotype file written before
`else` was required gets the else of every guarded line at once, each the one a past rule built;
nothing else in the file changes, and the new text is checked to build what the old one built."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

import nasty
from nasty.cli import main
from nasty.genotype import ParseError, parse
from nasty.genotype.jsonform import to_json
from nasty.genotype.legacy import explicit, readings, rewrite, rewrite_json

COMPAT = Path(__file__).parent / "fixtures" / "compat_before_else"
EXPECTED = json.loads((COMPAT / "expected.json").read_text())["files"]

# the DLA-style root of issue 23: the two past rules build different networks from it
DLA = """# a DLA-style tree, written before else
net dla input 3x16x16 classes 10
let kids=2
cell tree:
  bottom = conv3x3 c=8 bn relu <- in
  r      = conv3x3 c=8 bn relu <- bottom
  r1     = cat(r, bottom) if kids == 1   # the root when one child: if kids == 1
  out    = conv1x1 c=16 bn relu <- cat(r1, r, in)
stage tree
head  gap flatten fc c=classes
"""


def upgrade(capsys, *argv):
    """(rc, stdout, stderr) of `nasty upgrade ...`."""
    rc = main(["upgrade", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def only_guarded_lines_changed(old: str, new: str, changed: set[int]):
    """Every line but those in `changed` is byte-identical; each changed line is the old one with
    ` else NAME` inserted after its code (spacing and comment kept)."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b), start=1):
        if i not in changed:
            assert x == y, i
        else:
            m = re.search(r" else \w+", y)
            assert m and y[:m.start()] + y[m.end():] == x, (x, y)
    assert {i for i, (x, y) in enumerate(zip(a, b), start=1) if x != y} == changed


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_user_file_upgraded_builds_exactly_what_it_built(name, tmp_path, capsys):
    src = COMPAT / name
    out = tmp_path / name
    rc, said, err = upgrade(capsys, src, "-o", out)
    assert rc == 0, err
    old, new = src.read_text(), out.read_text()
    c = nasty.cost(nasty.load(out))
    assert (c.params, c.macs) == (EXPECTED[name]["params"], EXPECTED[name]["macs"]), name
    changed = {int(m) for m in re.findall(r"^\+(\d+): ", said, re.M)}
    only_guarded_lines_changed(old, new, changed)
    if changed:
        assert f"params {c.params:,}, MACs {c.macs:,}" in said and f"written to {out}" in said
        with pytest.raises(ParseError, match=f"nasty upgrade {re.escape(str(src))}` writes the else of every "):
            nasty.load(src)                              # the refusal names the command that fixes it all
    else:
        assert "nothing to upgrade" in said and new == old


def test_the_file_of_six_guarded_lines_is_fixed_at_once_and_stdout_is_the_text(capsys):
    src = COMPAT / "efficientnet_v2_s.nasty"
    rc, out, err = upgrade(capsys, src)
    assert rc == 0 and len(re.findall(r"^\+\d+: ", err, re.M)) == 6 and err.count("\n-") == 6
    assert "else in" in out and "guarded" not in out            # the summary goes to stderr, the text to stdout
    assert parse(out, "x") == parse(rewrite(src.read_text()).text)


def test_write_rewrites_in_place_and_then_there_is_nothing_to_upgrade(tmp_path, capsys):
    f = tmp_path / "repvgg.nasty"
    shutil.copy(COMPAT / "repvgg_a0.nasty", f)
    f.chmod(0o640)
    assert upgrade(capsys, f, "--write")[0] == 0
    assert (f.stat().st_mode & 0o777) == 0o640 and "if eq(stride, 1) * eq(c, cin) else s" in f.read_text()
    before = f.read_bytes()
    rc, said, _ = upgrade(capsys, f, "--write")
    assert rc == 0 and "nothing to upgrade" in said and f.read_bytes() == before


def test_an_already_explicit_file_is_unchanged(tmp_path, capsys):
    f = tmp_path / "z.nasty"
    text = nasty.format(nasty.zoo.get("mobilenet_v2"))
    assert " else " in text
    f.write_text(text)
    rc, out, err = upgrade(capsys, f)
    assert rc == 0 and out == text and "nothing to upgrade" in err
    assert rewrite(text).genotype is None and rewrite(text).text == text


def test_where_the_past_rules_differ_nothing_is_guessed(tmp_path, capsys):
    f = tmp_path / "dla.nasty"
    f.write_text(DLA)
    rc, out, err = upgrade(capsys, f)
    assert rc == 2 and out == "" and f.read_text() == DLA
    msg = err.strip()
    assert "\n" not in msg and msg.startswith(f"nasty: error: {f}: 1 guarded line read directly by a cat(...)")
    assert ("line 7 (r1): `else none` (--rule current: left out of the cat, as nasty built it since 2026-11-30) "
            "or `else r` (--rule before)") in msg and msg.endswith("choose with --rule current or --rule before")
    # the plain refusal of the file says so too
    with pytest.raises(ParseError, match=re.escape(f"`nasty upgrade {f} --rule current` (or --rule before)")):
        nasty.load(f)


@pytest.mark.parametrize("rule, alt", [("current", "none"), ("before", "r")])
def test_each_rule_is_obeyed_and_builds_what_it_built(rule, alt, tmp_path, capsys):
    f, out = tmp_path / "dla.nasty", tmp_path / "up.nasty"
    f.write_text(DLA)
    rc, said, err = upgrade(capsys, f, "--rule", rule, "-o", out)
    assert rc == 0, err
    new = out.read_text()
    only_guarded_lines_changed(DLA, new, {7})
    assert f"r1     = cat(r, bottom) if kids == 1 else {alt}   # the root when one child: if kids == 1\n" in new
    want = nasty.cost(parse(DLA.replace("kids == 1   #", f"kids == 1 else {alt}   #")))
    assert (nasty.cost(parse(new)).params, nasty.cost(parse(new)).macs) == (want.params, want.macs)
    assert f"params {want.params:,}, MACs {want.macs:,}" in said and f"--rule {rule}" in said
    # the two rules are the two readings legacy.py knows, and they differ
    assert parse(new) in readings(DLA)
    assert len({nasty.cost(g).params for g in readings(DLA)}) == 2


def test_a_node_read_by_cat_and_elsewhere_has_no_single_else_by_the_current_rule(capsys, tmp_path):
    text = ("net t input 8x8x8\nlet w=0\ncell c:\n  b = conv3x3 c=4 <- in if w\n  x = relu <- b\n"
            "  out = cat(b, x)\nstage c\n")
    f = tmp_path / "t.nasty"
    f.write_text(text)
    rc, _, err = upgrade(capsys, f, "--rule", "current")
    assert rc == 2 and "line 4 (b: left out of its cat but in elsewhere): no single else says that" in err
    rc, out, err = upgrade(capsys, f)
    assert rc == 2 and "line 4 (b): `else in` (--rule before;" in err
    rc, out, _ = upgrade(capsys, f, "--rule", "before")
    assert rc == 0 and "  b = conv3x3 c=4 <- in if w else in\n" in out


def test_line_endings_byte_order_mark_and_comments_are_kept(tmp_path, capsys):
    f = tmp_path / "crlf.nasty"
    text = DLA.replace("\n", "\r\n")
    f.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert upgrade(capsys, f, "--rule", "before", "--write")[0] == 0
    data = f.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") and data.count(b"\r\n") == text.count("\r\n")
    assert data[3:].decode() == text.replace("kids == 1   #", "kids == 1 else r   #")


def test_json_files_are_upgraded_in_place_too(tmp_path, capsys):
    doc = to_json(parse(DLA.replace("kids == 1   #", "kids == 1 else r   #"))).replace(" else r\"", "\"")
    f, out = tmp_path / "dla.json", tmp_path / "up.json"
    f.write_text(doc)
    rc, _, err = upgrade(capsys, f)
    assert rc == 2 and "cells[0].nodes[2] (r1): `else none`" in err
    rc, said, err = upgrade(capsys, f, "--rule", "before", "-o", out)
    assert rc == 0, err
    changed = {int(m) for m in re.findall(r"^\+(\d+): ", said, re.M)}
    assert len(changed) == 1
    only_guarded_lines_changed(doc, out.read_text(), changed)
    assert nasty.load(out) == parse(DLA.replace("kids == 1   #", "kids == 1 else r   #"))


def test_json_whose_strings_json_would_write_otherwise_is_written_anew(tmp_path):
    g = parse(DLA.replace("kids == 1   #", "kids == 1 else none   #"))
    doc = to_json(g).replace(" else none\"", "\"").replace("cat(r, bottom)", "cat(r,\\u0020bottom)")
    rw = rewrite_json(doc, "x.json", "current")
    assert rw.reindented and json.loads(rw.text) and rw.genotype == g


def test_an_upgrade_that_would_not_build_writes_nothing(tmp_path, capsys):
    # p is read only by out; out is skipped at res=0, so p is built for nothing: refused once explicit
    text = ("net t input 8x8x8\nlet res=0\ncell c:\n  p = conv3x3 c=16 bn relu <- in\n"
            "  out = add(in, slice end=8 <- p) if res\nstage c\n")
    f = tmp_path / "t.nasty"
    f.write_text(text)
    rc, out, err = upgrade(capsys, f, "--write")
    assert rc == 2 and "with every else written it parses but does not build" in err and "node 'p'" in err
    assert f.read_text() == text and out == ""


def test_the_explicit_genotype_is_legacy_explicit():
    # what rewrite checks against: the genotype legacy.explicit makes of the old text by that rule
    from nasty.genotype.check import check
    from nasty.genotype.text import Parser
    old = check(Parser(DLA, "", legacy=True).parse(), legacy=True)
    for rule in ("current", "before"):
        assert rewrite(DLA, "", rule).genotype == explicit(old, rule == "before")


@pytest.mark.parametrize("argv, says", [
    (["missing.nasty"], "genotype file 'missing.nasty' does not exist"),
    ([str(COMPAT / "repvgg_a0.nasty"), "-o", "/nonexistent/dir/x.nasty"], "folder '/nonexistent/dir' does not exist"),
])
def test_bad_paths_are_one_line_errors(argv, says, capsys):
    rc, _, err = upgrade(capsys, *argv)
    assert rc == 2 and says in err and err.count("\n") == 1


def test_through_python_m_nasty_cli(tmp_path):
    import os
    import subprocess
    import sys
    root = Path(__file__).parent.parent
    f = tmp_path / "dla.nasty"
    f.write_text(DLA)

    def run(*argv):
        return subprocess.run([sys.executable, "-m", "nasty.cli", "upgrade", str(f), *argv], capture_output=True,
                              text=True, timeout=300, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(root)})
    r = run()
    assert r.returncode == 2 and r.stdout == "" and r.stderr.startswith("nasty: error: ") and "Traceback" not in r.stderr
    r = run("--rule", "current")
    assert r.returncode == 0 and r.stdout == DLA.replace("kids == 1   #", "kids == 1 else none   #")
    assert "+7: " in r.stderr and "checked:" in r.stderr and f.read_text() == DLA
