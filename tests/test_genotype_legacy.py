"""Genotype texts stored before `if` needed `else` (nasty/genotype/legacy.py): a run folder's
records and checkpoints keep building what they built when stored, or are refused; never
built otherwise."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import nasty
from nasty.cli import main
from nasty.genotype import ParseError, parse
from nasty.genotype.legacy import needs_else, parse_stored, readings, upgrade
from nasty.search.record import NetCost, TrialRecord

# the DLA-style root of issue 23: up to 2026-11-30 the skipped r1 was `r`; since then it was left
# out of the cat. The two past rules build different networks from this very text.
OLD = """net dla input {c}x16x16 classes 10
let kids=2
cell tree:
  bottom = conv3x3 c=8 bn relu <- in
  r      = conv3x3 c=8 bn relu <- bottom
  r1     = cat(r, bottom) if kids == 1
  res    = add(r, bottom) if kids > 1
  out    = conv1x1 c=16 bn relu <- cat(r1, res, in)
stage tree
head  gap flatten fc c=classes
"""


def explicit(alt, c=3):
    return OLD.format(c=c).replace("kids == 1", f"kids == 1 else {alt}").replace("kids > 1", f"kids > 1 else {alt}")


def cost_of(text, c=3):
    k = nasty.cost(parse(text))
    return NetCost(k.macs, k.params, (c, 16, 16), 10)


def test_old_texts_are_recognised_cheaply():
    assert needs_else(OLD) and not needs_else(explicit("r")) and not needs_else("net t input 3x8x8\nstem relu\n")
    assert not needs_else("net t input 3x8x8\ncell c:\n  out = relu <- in  # relu if you like\nstage c\n")


def test_where_the_past_rules_agree_no_cost_is_needed():
    text = ("net t input 8x8x8\nlet res=0\ncell c:\n  p = conv3x3 c=8 <- in\n  out = add(p, in) if res\n"
            "stage c\n")
    new = upgrade(text)
    assert "out = add(p, in) if res else p" in new
    assert parse(new) == parse(text.replace("if res", "if res else p"))


def test_where_they_differ_the_recorded_cost_decides_and_nothing_is_guessed():
    before, since = explicit("r"), explicit("none")
    assert len(readings(OLD.format(c=3))) == 2
    assert nasty.cost(parse(before)).params != nasty.cost(parse(since)).params
    assert upgrade(OLD.format(c=3)) is None                             # no cost: no guess
    assert parse(upgrade(OLD.format(c=3), cost_of(before))) == parse(before)
    assert parse(upgrade(OLD.format(c=3), cost_of(since))) == parse(since)
    wrong = NetCost(1, 2, (3, 16, 16), 10)
    assert upgrade(OLD.format(c=3), wrong) is None
    with pytest.raises(ParseError, match="has 'if' without 'else'"):    # so its use is refused
        parse_stored(OLD.format(c=3), "best.nasty", {"params": 1, "macs": 2, "input": [3, 16, 16], "classes": 10})
    assert parse_stored(OLD.format(c=3), "best.nasty", cost_of(before).__dict__) == parse(before)


def test_a_trial_record_reads_its_stored_texts_explicitly():
    d = {"trial": 3, "status": "ok", "genotype": OLD.format(c=3), "proxy_genotype": OLD.format(c=1),
         "target": cost_of(explicit("r")).__dict__, "proxy": cost_of(explicit("none", c=1), c=1).__dict__}
    d["target"]["input"], d["proxy"]["input"] = [3, 16, 16], [1, 16, 16]
    r = TrialRecord.from_dict(json.loads(json.dumps(d)))
    assert "if kids == 1 else r" in r.genotype and "if kids == 1 else none" in r.proxy_genotype
    # a record whose cost fits no reading keeps its text: every use of it is then refused
    d["target"]["params"] += 1
    r = TrialRecord.from_dict(d)
    assert r.genotype == OLD.format(c=3)
    with pytest.raises(ParseError, match="else none` .left out of the cat"):
        parse(r.genotype)


FIXTURE = Path(__file__).parent / "fixtures" / "run_v0_1"
TINY = str(Path(__file__).parent / "spaces" / "tiny.py")


def old_run(tmp_path) -> Path:
    """The v0.1 run fixture whose winner (trial #3) was stored in the old form and built by the
    rule before the cat rule (its recorded cost says so)."""
    folder = tmp_path / "run"
    shutil.copytree(FIXTURE, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(space=TINY, runs_dir=str(tmp_path), name="run")
    (folder / "config.json").write_text(json.dumps(cfg, indent=1) + "\n")
    lines = (folder / "trials.jsonl").read_text().splitlines()
    for i, line in enumerate(lines):
        d = json.loads(line)
        if d.get("trial") == 3:
            d["genotype"] = OLD.format(c=3)
            d["target"] = dict(cost_of(explicit("r")).__dict__, input=[3, 16, 16])
            lines[i] = json.dumps(d)
    (folder / "trials.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_report_of_an_old_run_writes_the_winner_as_it_was_built(tmp_path, capsys):
    folder = old_run(tmp_path)
    assert main(["report", str(folder)]) == 0, capsys.readouterr().err
    best = (folder / "best.nasty").read_text()
    assert "r1     = cat(r, bottom) if kids == 1\n" not in best and "r1     = cat(r, bottom) if kids == 1 else r\n" in best
    assert nasty.cost(nasty.load(str(folder / "best.nasty"))).params == cost_of(explicit("r")).params
    assert (folder / "trials.jsonl").read_text().count("if kids == 1\\n") == 1     # the record is not rewritten


@pytest.mark.slow
def test_an_old_run_resumes_with_its_records_untouched(tmp_path, monkeypatch):
    import io

    from rich.console import Console

    import nasty.search.runner as runner
    from nasty.search.folder import RunFolder
    from nasty.search.loop import SerialExecutor
    from nasty.search.settings import Settings
    from nasty.search.standalone import evaluate, make_payload
    folder = old_run(tmp_path)
    before = (folder / "trials.jsonl").read_bytes()
    payload, real = {}, runner.load_data

    def load_and_keep(s, data=None):
        data, tr, va = real(s, data)
        payload.update(make_payload(data, tr, va))
        return data, tr, va

    monkeypatch.setattr(runner, "load_data", load_and_keep)
    trials = json.loads((folder / "config.json").read_text())["trials"]
    runner.search(Settings(trials=trials + 1), resume=str(folder), console=Console(file=io.StringIO()),
                  live=False, executor=SerialExecutor(lambda c, rep: evaluate(c, payload, rep)))
    assert (folder / "trials.jsonl").read_bytes().startswith(before)      # the old lines untouched
    recs = RunFolder(folder).records()
    assert [r.genotype for r in recs if r.trial == 3][0] == nasty.format(parse(explicit("r")))
    assert max(r.trial for r in recs if r.trial is not None) == trials


def test_a_checkpoint_saved_before_else_loads_the_network_it_trained(tmp_path):
    from nasty.final import CHECKPOINT_FORMAT, load_final
    g = parse(explicit("none"))
    model = nasty.build(g)
    path = tmp_path / "ck.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "genotype": OLD.format(c=3), "input": [3, 16, 16], "classes": 10,
                "model": model.state_dict(), "identity": {"genotype": OLD.format(c=3)}}, path)
    loaded, ck = load_final(path)
    assert "if kids == 1 else none" in ck["genotype"] and ck["identity"]["genotype"] == ck["genotype"]
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(loaded(x), model.eval()(x))


COMPAT = Path(__file__).parent / "fixtures" / "compat_before_else"


@pytest.mark.parametrize("name", sorted(json.loads((COMPAT / "expected.json").read_text())["files"]))
def test_user_files_written_before_else_build_the_same_or_are_refused_with_the_form_that_does(name):
    want = json.loads((COMPAT / "expected.json").read_text())["files"][name]
    lines = (COMPAT / name).read_text().split("\n")
    for _ in range(len(lines)):
        try:
            g = parse("\n".join(lines), name)
            break
        except ParseError as e:                      # apply the form the message shows, line by line
            msg = str(e)
            assert "\n" not in msg and e.line is not None and msg.split(": ", 2)[2].startswith("write `"), msg
            form = msg.split("`")[1]
            indent = lines[e.line - 1][: len(lines[e.line - 1]) - len(lines[e.line - 1].lstrip())]
            lines[e.line - 1] = indent + form
    c = nasty.cost(g)
    assert (c.params, c.macs) == (want["params"], want["macs"]), name


def test_what_the_zoo_and_the_built_in_spaces_stored_before_else_reads_back_as_built():
    """A run of a built-in space stored its genotypes without else: with the elses taken out, the
    texts of today's zoo and spaces read back, without any recorded cost, as the very genotypes
    (no guarded node of theirs is read directly by a cat, where the past rules differ)."""
    import random
    import re

    from nasty.space import RandomTrial, builtin_names, load_space
    texts = {nasty.format(nasty.zoo.get(n)) for n in nasty.zoo.names()}
    for name in builtin_names():
        space, rng = load_space(name), random.Random(0)
        for _ in range(5):
            t = RandomTrial(rng)
            space.genotype(t)
            texts |= {nasty.format(space.genotype(t.values, proxy=p)) for p in (False, True)}
    old = {t: re.sub(r" else \w+", "", t) for t in texts}
    assert sum(o != t for t, o in old.items()) >= 20                 # guarded texts among them
    for text, stored in old.items():
        if stored != text:
            assert parse(upgrade(stored)) == parse(text)
