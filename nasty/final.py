"""The final network of a search: what `nasty train runs/NAME` trains.

    run = open_run("runs/NAME")                        # the winner's decisions and its space
    values = apply_overrides(run, ["N=6,F=32"])        # --set: any decision, checked
    g, values = final_genotype(run, values, (1, 28, 28), 10, budget=Budget.parse("50MFLOPs"))

Sizing: a search ranks cells on a small PROXY and prices them on a TARGET; the final network
is the winner's decisions rebuilt through the space at the DATA's input and classes (the
space picks its skeleton by input size, NetSpec.large), at the winner's own size, at sizes
set with --set, or with the width decision fitted to a --budget at that input (`fit_width`).

Training-time additions of the NASNet/DARTS recipe, none of which changes the weights a
checkpoint holds: drop-path on every non-identity branch of a cell's sums
(`with_cell_drop_path`, a genotype transform: the `droppath` ops it inserts get their own
module paths, so the state dict is the plain genotype's), and an auxiliary head on the
state at 2/3 of the depth (`with_aux_head`, a wrapper around the compiled fx module: the
genotype language has one output, so the head taps the fx node of that state).

Checkpoints (`save_checkpoint` / `load_checkpoint` / `load_final`) are one file holding the
weights, the genotype text, the recipe, the data, and the trainer's state after the last
finished epoch, all plain values and tensors so `torch.load(weights_only=True)` reads them.
"""
from __future__ import annotations

import dataclasses
import json
import operator
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import NastyError, RunError, brief


class FinalError(NastyError):
    """A final network that cannot be sized, built or resumed as asked."""


# ------------------------------------------------------------------ the run's winner
@dataclass
class RunWinner:
    """A run's winner (or one of its trials): its space, decisions and proxy genotype."""
    folder: Path
    space: object            # nasty.space.Space
    values: dict             # the decisions, as the run recorded them
    trial: int
    config: dict             # the run's config.json
    proxy: object = None     # the proxy Genotype the search trained, when recorded

    @property
    def label(self) -> str:
        return f"trial #{self.trial} of {self.folder}"


def open_run(path, trial: int | None = None) -> RunWinner:
    """The winner (or trial `trial`) of the run folder `path`, with the space it searched."""
    from . import parse
    from .genotype.legacy import parse_stored
    from .search.folder import RunFolder
    from .search.opening import open_space
    from .search.settings import Settings
    folder = RunFolder(path)
    cfg = folder.config(Settings)
    known = {f.name for f in dataclasses.fields(Settings)}
    settings = Settings(**{k: v for k, v in cfg.items() if k in known})
    try:
        space, _ = open_space(settings)
    except NastyError as e:
        raise RunError(f"cannot rebuild the space of {folder.path}: {e}") from None
    if trial is None:
        best = folder.read_json("best.json")
        if not isinstance(best, dict) or not isinstance(best.get("decisions"), dict):
            raise RunError(f"run {folder.path} has no winner yet (no decisions in best.json); "
                           f"`nasty report {folder.path}` shows its trials")
        values, number = best["decisions"], best.get("trial", -1)
        proxy_file = folder.path / "best_proxy.nasty"
        proxy = parse_stored(proxy_file.read_text(), str(proxy_file), best.get("proxy")) \
            if proxy_file.is_file() else None
    else:
        recs = [r for r in folder.records() if r.trial == trial and r.decisions]
        if not recs:
            raise RunError(f"run {folder.path} has no trial #{trial}")
        values, number = recs[-1].decisions, trial
        proxy = parse(recs[-1].proxy_genotype, f"{folder.path} trial #{trial}") if recs[-1].proxy_genotype else None
    return RunWinner(folder.path, space, _decode(space, values, folder.path), number, cfg, proxy)


def _decode(space, stored: dict, where) -> dict:
    """Recorded decisions (JSON: lists for tuples, {"index": i} for other objects) as the space's
    own values, by replaying them through the space."""
    from .controllers.values import ReplayTrial
    t = ReplayTrial(stored)
    try:
        space.genotype(t)
    except NastyError as e:
        raise RunError(f"the recorded decisions of {where} do not build in space {space.name!r}: {e}") from None
    return dict(t.values)


def _fmt(v) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def _decisions(space, values: dict) -> dict:
    """name -> Decision of every decision the space asks when built with `values`."""
    return {d.name: d for d in space.decisions(values)}


def parse_value(d, text: str):
    """`text` as a value of decision `d` (its own type), or a one-line FinalError listing the options."""
    text = text.strip()
    if d.kind == "float":
        try:
            v = float(text)
        except ValueError:
            v = None
        if v is None or not d.low <= v <= d.high:
            raise FinalError(f"--set {d.name}={text}: decision {d.name!r} takes a number from {d.low:g} to {d.high:g}")
        return v
    if d.kind == "int":
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or not d.contains(v):
            step = f" in steps of {d.step}" if d.step != 1 else ""
            raise FinalError(f"--set {d.name}={text}: decision {d.name!r} takes an integer from "
                             f"{int(d.low)} to {int(d.high)}{step}")
        return v
    for o in d.choices:
        if _fmt(o) == text or _fmt(o).replace(" ", "") == text.replace(" ", ""):
            return o
        if isinstance(o, (int, float)) and not isinstance(o, bool):
            try:
                if float(text) == o:
                    return o
            except ValueError:
                pass
    raise FinalError(f"--set {d.name}={text}: not an option of decision {d.name!r}; options: "
                     + ", ".join(_fmt(o) for o in d.choices))


def split_sets(texts) -> list[tuple[str, str]]:
    """["N=6,F=32", ...] -> [("N", "6"), ("F", "32")]. A comma-separated piece without '=' belongs
    to the value before it (a choice such as DARTS's inputs 'prev,in')."""
    pairs: list[list[str]] = []
    if isinstance(texts, str):                        # one text (from Python), not a list of them
        texts = [texts]
    for text in texts or ():
        for piece in str(text).split(","):
            if "=" in piece:
                name, value = piece.split("=", 1)
                if not name.strip():
                    raise FinalError(f"--set {text!r}: each setting is NAME=VALUE, e.g. --set N=6,F=32")
                pairs.append([name.strip(), value])
            elif pairs and piece.strip():
                pairs[-1][1] += "," + piece
            elif piece.strip() or not pairs:
                raise FinalError(f"--set {text!r}: each setting is NAME=VALUE, e.g. --set N=6,F=32")
    seen: dict[str, str] = {}
    for name, value in pairs:
        if name in seen:
            raise FinalError(f"--set {name} is given twice ({name}={seen[name].strip()} and {name}={value.strip()}); "
                             "give each decision once")
        seen[name] = value
    return [(n, v) for n, v in pairs]


def apply_overrides(run: RunWinner, texts) -> dict:
    """The run's decisions with every --set NAME=VALUE applied (names and values checked)."""
    values = dict(run.values)
    asked = _decisions(run.space, values)
    for name, text in split_sets(texts):
        if name not in asked:
            raise FinalError(f"--set {name}={text}: space {run.space.name!r} has no decision {name!r}; "
                             f"its decisions: {', '.join(asked)}")
        values[name] = parse_value(asked[name], text)
    return values


def final_genotype(run: RunWinner, values: dict, shape, classes: int, budget=None, fixed=()):
    """(genotype, decisions) of the final network at the data's `shape` and `classes`.

    `budget` (a nasty.search.budget.Budget): the space's width decision is fitted to it at
    that input, unless it is in `fixed` (set by hand)."""
    from .search.budget import fit_width
    from .search.settings import with_target
    from .search.settings import Settings
    from .space import SpaceError

    class _Data:                                  # what with_target reads of a dataset
        pass
    data = _Data()
    data.shape, data.num_classes = tuple(shape), int(classes)
    space = with_target(run.space, Settings(target_kind="data"), data)
    try:
        if budget:
            width = space.width_decision
            if width is None:
                raise FinalError(f"--budget fits the width decision, and space {space.name!r} declares none; "
                                 "size the network with --set instead")
            if width in fixed:
                raise FinalError(f"--budget fits decision {width!r}, which --set also sets; drop one of them")
            fitted = fit_width(space, values, budget)
            if fitted is None:
                d = _decisions(space, values)[width]
                low = d.low if d.kind == "float" else min(d.options())
                from .cost import cost
                c = cost(space.genotype({**values, width: low}))
                raise FinalError(f"no width fits {budget.describe()} at {'x'.join(map(str, shape))}: even "
                                 f"{width}={_fmt(low)} costs {c.macs:,} MACs and {c.params:,} params; raise the "
                                 "budget or make the network smaller with --set")
            return fitted.genotype, fitted.values
        return space.genotype(values), dict(values)
    except SpaceError as e:
        missing = str(e).startswith("no value for decision")
        raise FinalError(f"cannot build the final network of {run.label}: {e}"
                         + ("; the decisions given ask for it: set it with --set NAME=VALUE" if missing else "")) from None


# ------------------------------------------------------------------ drop-path on cell branches
def with_cell_drop_path(g, p: float):
    """(genotype, branches): `g` with `droppath p=p` after every non-identity operand of the
    sums in its two-input cells: where NASNet's ScheduledDropPath and DARTS's drop_path act
    (an operand that is a bare state, the identity op, is never dropped). The inserted ops
    wrap the operand (`droppath <- OP <- x`), so every other module keeps its path."""
    from .genotype import Apply, Combine, Op
    if not p:
        return g, 0
    op = Op("droppath", (("p", float(p)),))
    count = 0

    def drop(e):
        nonlocal count
        if isinstance(e, Combine) and e.kind == "add":
            args = []
            for a in e.args:
                if isinstance(a, Apply):
                    a, count = Apply((op,), a), count + 1
                args.append(a)
            return Combine("add", tuple(args))
        return e

    cells = tuple(dataclasses.replace(c, nodes=tuple(dataclasses.replace(n, expr=drop(n.expr)) for n in c.nodes))
                  if c.inputs == 2 else c for c in g.cells)
    return dataclasses.replace(g, cells=cells), count


# ------------------------------------------------------------------ the auxiliary head
def _aux_head_module(channels: int, classes: int):
    from torch import nn

    class AuxHead(nn.Module):
        """DARTS's AuxiliaryHeadCIFAR (after NASNet's auxiliary tower): relu, pool to 2x2,
        1x1 conv to 128, 2x2 conv to 768, a linear classifier. DARTS pools 8x8 maps with a 5x5/3
        window; an adaptive pool gives the same 2x2 at any map size."""

        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.ReLU(), nn.AdaptiveAvgPool2d(2),        # not in place: the net reads the state too
                nn.Conv2d(channels, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
                nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True))
            self.classifier = nn.Linear(768, classes)

        def forward(self, x):
            return self.classifier(self.features(x).flatten(1))

    return AuxHead()


def aux_tap(g, shape, classes):
    """(elaborated program, step handle) of the state the auxiliary head reads: the output of
    the stage line in which 2/3 of the stage repeats are reached (DARTS: cell 2L/3, the second
    reduction cell of NASNet/DARTS skeletons)."""
    from .genotype import elaborate
    prog = elaborate(g, shape, classes)
    reps = []                                       # repeats of each stage line, from the step names
    for n, layer in enumerate((x for x in g.layers if x.section == "stage"), 1):
        seen = {st.name.split(".")[1] for st in prog.steps if st.name.startswith(f"stage{n}.")}
        digits = {s for s in seen if s.isdigit()}
        reps.append(len(digits) if digits and digits == seen else 1)
    if not reps:
        raise FinalError(f"{g.name} has no stage lines for an auxiliary head to read; train without --aux")
    target, seen_reps, line = 2 * sum(reps) // 3, 0, 0
    for line, r in enumerate(reps):
        if seen_reps + r > target:
            break
        seen_reps += r
    stage_index = [i for i, x in enumerate(g.layers) if x.section == "stage"][line]
    cut = dataclasses.replace(g, layers=g.layers[:stage_index + 1])
    handle = elaborate(cut, shape, classes).output
    if len(prog.shape(handle)) != 3:
        raise FinalError(f"the state at 2/3 of {g.name} is not an image map; train without --aux")
    return prog, handle


def _fx_node(gm, prog, handle):
    """The node of `gm`'s graph that computes step `handle` of `prog`: modules by their path,
    sums, products and concatenations by their operands."""
    import torch

    from .genotype.elaborate import INPUT
    nodes = list(gm.graph.nodes)
    by_target = {n.target: n for n in nodes if n.op == "call_module"}
    of = {INPUT: next(n for n in nodes if n.op == "placeholder")}
    funcs = {"add": (operator.add, operator.iadd), "mul": (operator.mul,), "cat": (torch.cat,)}
    for i, st in enumerate(prog.steps[:handle + 1]):
        if st.kind not in funcs:
            of[i] = by_target.get(st.name)
        else:
            args = [of.get(j) for j in st.inputs]
            v = args[0]
            if st.kind == "cat":
                v = next((u for u in v.users if u.op == "call_function" and u.target is torch.cat
                          and list(u.args[0]) == args), None) if v is not None else None
            else:
                for other in args[1:]:
                    v = next((u for u in v.users if u.op == "call_function" and u.target in funcs[st.kind]
                              and list(u.args) == [v, other]), None) if v is not None else None
            of[i] = v
        if of[i] is None:
            raise FinalError(f"cannot find step {st.name!r} of {prog.genotype.name} in its compiled module; "
                             "train without --aux")
    return of[handle]


def with_aux_head(gm, shape, classes: int):
    """A training wrapper of the compiled module `gm`: in training it returns (logits, aux
    logits), the auxiliary head reading the state `aux_tap` names; in eval, the logits. It
    shares every module (and so every weight) with `gm`; its `aux_head` is the only addition."""
    from torch import fx, nn
    prog, handle = aux_tap(gm.genotype, shape, classes)
    tap = _fx_node(gm, prog, handle)
    head = _aux_head_module(prog.shape(handle)[0], classes)
    graph, env = fx.Graph(), {}
    out = graph.graph_copy(gm.graph, env)
    with graph.inserting_after(env[tap]):           # before anything can change the state in place
        aux = graph.call_module("aux_head", (env[tap],))
    graph.output((out, aux))
    modules = {n.target: gm.get_submodule(n.target) for n in gm.graph.nodes if n.op == "call_module"}
    tapped = fx.GraphModule({**modules, "aux_head": head}, graph, class_name=type(gm).__name__ + "WithAux")

    class WithAux(nn.Module):
        def __init__(self):
            super().__init__()
            self.tapped = tapped

        @property
        def aux_head(self):
            return self.tapped.aux_head

        def forward(self, x):
            logits, aux = self.tapped(x)
            return (logits, aux) if self.training else logits

    return WithAux()


# ------------------------------------------------------------------ checkpoints
CHECKPOINT_FORMAT = "nasty-final-checkpoint/1"


def save_checkpoint(path, checkpoint: dict) -> None:
    """Write `checkpoint` to `path` atomically: a kill leaves the previous file or the new one."""
    import torch
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise FinalError(f"cannot save the checkpoint to {path}: {e.strerror or e}") from None


def load_checkpoint(path) -> dict:
    """A checkpoint written by `nasty train` (read with weights_only=True), or a one-line error."""
    import pickle

    import torch
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FinalError(f"no checkpoint {path}") from None
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError) as e:
        raise FinalError(f"cannot read checkpoint {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                         ) from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise FinalError(f"{path} is not a checkpoint of `nasty train` (format {CHECKPOINT_FORMAT})")
    problem = checkpoint_problem(ck)
    if problem:
        raise _damaged(path, problem)
    return _explicit_genotype(ck, path)


def _damaged(path, problem: str) -> FinalError:
    return FinalError(f"checkpoint {path} is damaged: {problem}; it is left as it is: train again with "
                      "`nasty train ... --restart` (it replaces the file), or restore it")


def checkpoint_problem(ck: dict) -> str | None:
    """What makes a checkpoint unusable, or None: each value that building, predicting or resuming
    reads, of its type and range (an epoch 99 of 4, NaN weights), so that a damaged file is one
    line before anything uses it, never a KeyError or a network that answers NaN."""
    import math

    import torch

    from .genotype.limits import classes_problem, input_problem
    if not isinstance(ck.get("genotype"), str):
        return "it holds no genotype text"
    shape = ck.get("input")
    problem = input_problem(tuple(shape) if isinstance(shape, (list, tuple)) else shape)
    if problem:
        return f"its input: {problem}"
    if ck.get("classes") is None or classes_problem(ck["classes"]):
        return f"its class count {brief(ck.get('classes'))} is not a positive whole number"
    model = ck.get("model")
    if not isinstance(model, dict) or not model or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in model.items()):
        return "it holds no weights (no state dict of tensors under 'model')"
    if ck.get("aux") is not None and not (isinstance(ck["aux"], dict) and all(
            isinstance(v, torch.Tensor) for v in ck["aux"].values())):
        return "its auxiliary head's weights are not a state dict"
    for k, v in {**model, **{f"aux.{k}": v for k, v in (ck.get("aux") or {}).items()}}.items():
        if v.is_floating_point() and v.numel() and not bool(torch.isfinite(v).all()):
            return f"weight {k} holds NaN or infinite values (the training diverged, or the file is corrupt)"
    epochs, epoch = ck.get("epochs"), ck.get("epoch")
    if epochs is not None or epoch is not None:
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (epochs, epoch)) or epochs < 1:
            return f"its epochs are {brief(epoch)} of {brief(epochs)}, not whole numbers"
        if not 1 <= epoch <= epochs:
            return f"it says it holds epoch {epoch} of {epochs}"
    for key, n in (("mean", shape[0]), ("std", shape[0])):
        v = ck.get(key)
        if v is not None and not (isinstance(v, (list, tuple)) and len(v) == n and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)
                and (key == "mean" or all(x > 0 for x in v))):
            return f"its normalisation {key} {brief(v)} is not {n} finite{' positive' if key == 'std' else ''} numbers"
    names = ck.get("class_names")
    if names is not None and not (isinstance(names, (list, tuple)) and len(names) == ck["classes"]
                                  and all(isinstance(x, str) for x in names)):
        return f"its class names {brief(names)} are not {ck['classes']} names"
    return None


def training_state_problem(ck: dict) -> str | None:
    """What keeps a checkpoint's training from being continued (beyond checkpoint_problem), or None."""
    epoch, train = ck.get("epoch"), ck.get("train")
    if epoch is None or ck.get("epochs") is None:
        return "it does not say how many epochs it holds"
    if not isinstance(train, dict):
        return "its training state ('train') is missing"
    history = train.get("history")
    if train.get("epoch") != epoch or not isinstance(history, list) or len(history) != epoch or not all(
            isinstance(m, dict) and isinstance(m.get("val_acc"), (int, float)) for m in history):
        return f"its training state does not hold the {epoch} epoch(s) it says it has finished"
    return None


def _explicit_genotype(ck: dict, path) -> dict:
    """A checkpoint saved before `if` needed `else` holds its genotype in the old form: made
    explicit by the rule that built it (genotype/legacy.py); where the two past rules differ,
    by the one reading whose network takes the checkpoint's weights. Left as it is where that
    cannot be known, so that its use is refused with the explicit form, never built otherwise."""
    from .genotype.legacy import needs_else, readings
    text = ck.get("genotype")
    if not isinstance(text, str) or not needs_else(text):
        return ck
    try:
        options = readings(text, f"{path}: genotype")
    except NastyError:
        return ck
    if len(options) > 1:
        from .compile import compile_genotype
        fits = []
        for g in options:
            try:
                compile_genotype(g, input=tuple(ck["input"]), classes=ck["classes"]).load_state_dict(ck["model"])
                fits.append(g)
            except Exception:  # noqa: BLE001 - a reading whose network does not take the weights
                pass
        options = fits
    if len(options) != 1:
        return ck
    from . import format
    new = format(options[0])
    ck = dict(ck, genotype=new)
    if isinstance(ck.get("identity"), dict) and ck["identity"].get("genotype") == text:
        ck["identity"] = dict(ck["identity"], genotype=new)
    return ck


def load_final(path):
    """(module in eval mode, checkpoint) of a checkpoint `nasty train` saved: the network it
    trained, with the weights of its last finished epoch."""
    from . import parse
    from .compile import compile_genotype
    ck = load_checkpoint(path)
    g = parse(ck["genotype"], f"{path}: genotype")
    model = compile_genotype(g, input=tuple(ck["input"]), classes=ck["classes"])
    model.load_state_dict(ck["model"])
    return model.eval(), ck


def identity(genotype_text: str, recipe: dict, shape, classes: int, data: dict, split: dict) -> dict:
    """What makes two trainings the same one: a checkpoint is continued only by its own."""
    return {"genotype": genotype_text, "recipe": dict(recipe), "input": list(shape), "classes": int(classes),
            "data": {k: data.get(k) for k in ("kind", "source", "n_train", "n_test")}, "split": dict(split)}


def open_checkpoint(path, want: dict, resume: bool = False, restart: bool = False) -> dict | None:
    """The checkpoint at `path` to continue (None: start afresh). A checkpoint of another training
    is a one-line error unless `restart`; `resume` demands one to continue."""
    path = Path(path) if path is not None else None
    if path is None or not path.exists() or restart:
        if resume:
            raise FinalError(f"--resume: there is no checkpoint {path}" if path else
                             "--resume needs a checkpoint: give --save FILE")
        return None
    ck = load_checkpoint(path)
    problem = training_state_problem(ck)
    if problem:
        raise _damaged(path, problem)
    diff = differences(ck.get("identity") or {}, want)
    if diff:
        raise FinalError(f"{path} holds another training (its {', '.join(diff)} differ{'s' if len(diff) == 1 else ''}); "
                         "pass --restart to replace it, or --save FILE to train elsewhere")
    return ck


def differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """The keys (dotted, one level into dicts) whose values differ between two checkpoint
    identities, for a one-line refusal."""
    out = []
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict) and not prefix:
            out += differences(x, y, f"{k}.")
        elif json.dumps(x, sort_keys=True, default=str) != json.dumps(y, sort_keys=True, default=str):
            out.append(prefix + k)
    return out
