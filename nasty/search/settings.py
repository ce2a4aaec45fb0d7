"""Everything a search needs, in one dataclass: `Settings`. Each field carries its help
text and, where it depends on the hardware, its CPU and GPU defaults; the flags of
`nasty search` are derived from the fields (`add_arguments`), so a new setting is one
line here. The resolved settings are stored in runs/<name>/config.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field

from ..errors import RunError, brief


def setting(default=None, help: str = "", *, cpu=None, gpu=None, metavar: str | None = None,
            choices: tuple | None = None, resumable: bool = False, flag: str | None = None):
    """A Settings field. `cpu`/`gpu`: the default where it depends on a GPU being used (the field's
    own default is then None, meaning "resolve"); `resumable`: may change on `--resume`; `flag`:
    the option's name when it is not the field's (`--target` for target_kind)."""
    return field(default=default, metadata=dict(help=help, cpu=cpu, gpu=gpu, metavar=metavar, choices=choices,
                                                resumable=resumable, flag=flag))


def flag_of(name: str) -> str:
    """The `nasty search` option of a Settings field."""
    f = next(f for f in dataclasses.fields(Settings) if f.name == name)
    return f.metadata.get("flag") or f"--{name.replace('_', '-')}"


@dataclass
class Settings:
    """A search, as `nasty search` flags or `nasty.search(...)` keywords give it."""
    space: str | None = setting(
        None, "built-in space (nasnet, mbconv, resnet, darts, nb201mini, nb201) or a .py file with one @space")
    budget: str | None = setting(
        None, "multiply-adds at the target (one multiply-add = one FLOP), e.g. 600MFLOPs, 600M, 1.2GMACs, "
              "600MMAdds; a time unit makes it a latency budget, predicted per op on this machine's CPU at batch 1 "
              "and measured for the finalists: 15ms, or both: 600MFLOPs,15ms", metavar="FLOPS")
    params: str | None = setting(None, "parameters at the target, e.g. 5M", metavar="N")
    latency_clock: str = setting(
        "wall", "with a latency budget: the clock it is predicted and measured on: wall (elapsed time) or cpu (the "
                "measuring thread's CPU time, steadier on a machine other processes load)", choices=("wall", "cpu"))
    fit: bool | None = setting(None, "set each sample's width decision (F, width multiplier) by the budget: the "
                                     "largest value within it (default: on when the space's proxy does not see "
                                     "the width, as for nasnet's F and darts's C; --no-fit turns it off)")
    controller: str = setting("random", "search controller: random, reinforce, tpe, nsga2, evolution, compound, "
                                        "darts (one-shot)")
    controller_options: str | None = setting(
        None, "the controller's own options as key=value pairs, e.g. population=6,sample=3 (evolution), "
              "n_startup_trials=5 (tpe); an unknown key's error lists the controller's options", metavar="K=V,...")
    objective: str | None = setting(
        None, "what the controller optimises: accuracy (default), pareto (accuracy vs target MACs, or vs latency "
              "under a latency budget; tpe, nsga2) or soft (MnasNet's ACC*(MACs/T)^w, ACC*(LAT/T)^w under a latency "
              "budget; reinforce)")
    baseline: str | None = setting(
        None, "with --controller compound: the network whose depth/width/resolution scaling is searched "
              "(e.g. efficientnet_b0), instead of --space", metavar="NAME")
    trials: int | None = setting(None, "trials to train (--time-budget may end the search first)",
                                 cpu=48, gpu=200, resumable=True)
    epochs: int | None = setting(None, "proxy training epochs per trial", cpu=2, gpu=5)
    subset: int | None = setting(None, "training images per trial", cpu=6000, gpu=20000)
    val_subset: int | None = setting(None, "validation images per trial", cpu=2000, gpu=5000)
    val_fraction: float = setting(0.1, "share of the training set held out for validation")
    batch_size: int | None = setting(None, "proxy batch size", cpu=64, gpu=256)
    min_steps: int | None = setting(
        None, "unless --epochs is given, a trial takes at least N SGD steps: on a small data set of one's own (a "
              "few steps an epoch, too few to learn anything) the batch size shrinks, to 16 at the least (unless "
              "--batch-size is given), then the epochs grow; 0: off", cpu=50, gpu=100, metavar="N")
    lr: float | None = setting(None, "peak learning rate (one-cycle SGD)", cpu=0.05, gpu=0.1)
    precise_bn: int = setting(
        1024, "before every validation, recompute the proxies' BatchNorm statistics on N training images "
              "(0: off): after a few steps the running averages are far from the weights' own, and a proxy "
              "scored with them can sit at chance", metavar="N")
    evaluator: str | None = setting(
        None, "how a sample is scored: standalone (its proxy trained on its own; the default) or supernet "
              "(one-shot: children share one pool of weights and train a few steps each, thousands per search; "
              "with reinforce it is ENAS, with random random search with weight sharing, with evolution SPOS; "
              "--controller darts implies it). The winner is still confirmed by standalone training",
        choices=("standalone", "supernet"))
    child_steps: float | None = setting(
        None, "with --evaluator supernet: training steps on the shared weights per scored child (fractions: "
              "one step every few children) (default 0.25 with reinforce, ENAS's ratio of shared-weight steps to "
              "controller samples; 1 with random; 0 with evolution: SPOS scores a frozen supernet)",
        metavar="STEPS")
    supernet_warmup: float | None = setting(
        None, "with --evaluator supernet: share of the search time that trains the supernet on uniformly random "
              "children within budget before the controller proposes (default 0.5: the supernet training of "
              "SPOS and of random search with weight sharing; 0 with reinforce: ENAS trains on the controller's "
              "children from the start)", metavar="FRACTION")
    score_images: int | None = setting(None, "with --evaluator supernet: validation images a child is scored on",
                                       cpu=256, gpu=1024)
    supernet_bn: str = setting(
        "batch", "with --evaluator supernet: the BatchNorm statistics a child is scored with: batch (those of "
                 "the scored images, train-mode BN as ENAS and SPOS evaluate) or recompute (running statistics "
                 "recomputed on a few training batches)", choices=("batch", "recompute"))
    confirm: int = setting(5, "before naming the winner, train the top K trials again at a higher fidelity "
                              "(--confirm-subset images, the whole validation split, --confirm-seeds seeds); the "
                              "winner is the best confirmed one. 0 skips this", metavar="K")
    confirm_seeds: int = setting(2, "seeds per confirmed trial")
    confirm_epochs: int | None = setting(None, "epochs of a confirmation (default: --epochs)")
    confirm_subset: int | None = setting(None, "training images of a confirmation (default: twice --subset, "
                                               "12000 on a CPU)")
    screen: int | None = setting(
        None, "before each training round, score K in-budget candidates for almost nothing and train only the "
              "best (the rest are recorded as screened); at most a fifth of --time-budget goes to it. 0 turns the "
              "screen off", cpu=500, gpu=1000, metavar="K", resumable=True)
    screen_score: str | None = setting(
        None, "what the screen ranks by: a score, or several (comma-separated) ranked by the average of their "
              "ranks: naswot, synflow, snip, grad_norm, jacob_cov (zero-cost, on one batch of the training "
              "images), params, macs (of the proxy network) (default macs,params: no zero-cost score beat "
              "#params on our benchmarks; docs/screening.md)", metavar="NAMES")
    audit: int | None = setting(
        None, "with the confirmation stage, also train R random in-budget members of the space with the same "
              "recipe and seeds; the summary then says by how much the winner beats them. 0 skips this",
        cpu=2, gpu=3, metavar="R")
    time_budget: float | None = setting(
        None, "seconds of searching: no trial starts that would end after it, and one still running at it is "
              "stopped and recorded as timeout (so that a default search ends within 10 minutes)", cpu=450.0, gpu=450.0, metavar="SECONDS", resumable=True)
    dataset: str = setting("fashion-mnist", "fashion-mnist, mnist, cifar10, cifar100, or imagefolder (your own "
                                            "images: --data-dir with one folder per class)")
    data_dir: str | None = setting(None, "directory with the dataset's files (default /usr/share/datasets/NAME)")
    image_size: int | None = setting(None, "with --dataset imagefolder: resize every image to N x N (default: the "
                                           "files' own size when they all agree)", metavar="N")
    target_kind: str | None = setting(None, "where budgets apply: 'space' (the space's declared target, e.g. "
                                            "the ImageNet mobile network at 3x224x224 for nasnet) or 'data' (the "
                                            "dataset's own input and classes: the network you would deploy on "
                                            "these images)", choices=("space", "data"), flag="--target")
    target_input: str | None = setting(None, "budgets apply at this input instead, e.g. 3x64x64", metavar="CxHxW")
    target_classes: int | None = setting(None, "budgets apply with this many classes instead", metavar="N")
    cpus_per_trial: float | None = setting(None, "CPUs per trial; concurrency follows from the resources",
                                           cpu=1.0, gpu=2.0, resumable=True)
    gpus_per_trial: float | None = setting(None, "GPUs per trial; fractional packs trials (0.25: four per GPU)",
                                           cpu=0.0, gpu=0.25, resumable=True)
    address: str | None = setting(None, "join an existing Ray cluster (e.g. 10.0.0.1:6379) instead of a local "
                                        "one", resumable=True)
    scheduler: str = setting("fifo", "multi-fidelity: asha stops weak trials at epoch milestones (Ray Tune's ASHA, "
                                     "successive halving); hyperband runs several ASHA brackets of different "
                                     "aggressiveness (asynchronous Hyperband); with --controller tpe the stopped "
                                     "trials' curves reach TPE (BOHB-style)", choices=("fifo", "asha", "hyperband"))
    seed: int = setting(0, "random seed of the controller, the data split and the trials")
    name: str | None = setting(None, "run folder name under --runs-dir (default SPACE-DATE-TIME)")
    runs_dir: str = setting("runs", "where run folders go")

    def __post_init__(self):
        if isinstance(self.controller_options, dict):    # from Python or a YAML mapping: stored as K=V text
            from ..controllers import format_options
            self.controller_options = format_options(self.controller_options)

    # ------------------------------------------------------------ defaults
    @classmethod
    def hardware_defaults(cls, gpu: bool) -> dict:
        """{field: default} of the fields whose default depends on a GPU being used."""
        key = "gpu" if gpu else "cpu"
        return {f.name: f.metadata[key] for f in dataclasses.fields(cls) if f.metadata.get(key) is not None}

    def resolved(self, gpu: bool) -> "Settings":
        """A copy with every hardware-dependent default filled in."""
        out = dataclasses.replace(self)
        for k, v in self.hardware_defaults(gpu).items():
            if getattr(out, k) is None:
                setattr(out, k, v)
        if out.confirm_epochs is None:                 # confirmations: the search's recipe, more images
            out.confirm_epochs = out.epochs
        if out.confirm_subset is None and out.subset is not None:
            out.confirm_subset = 2 * out.subset
        return out

    @classmethod
    def resumable(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls) if f.metadata.get("resumable")}

    def controller_kwargs(self) -> dict:
        """--controller-options as keywords of the controller (checked by controllers.make_controller)."""
        from ..controllers import parse_options
        return parse_options(self.controller_options, f"--controller-options {self.controller_options!r}")

    # ------------------------------------------------------------ validation
    def check(self):
        """One-line errors for values no search can use (called before anything is created)."""
        if self.controller_options is not None:
            from ..controllers import check_options
            check_options(self.controller, self.controller_kwargs())
        if self.latency_clock not in ("wall", "cpu"):
            raise RunError(f"--latency-clock must be wall or cpu, got {self.latency_clock!r}")
        if self.scheduler not in ("fifo", "asha", "hyperband"):
            raise RunError(f"unknown --scheduler {self.scheduler!r}; use fifo, asha or hyperband")
        if isinstance(self.confirm, bool) or not isinstance(self.confirm, int) or not 0 <= self.confirm <= 100:
            raise RunError(f"--confirm must be a whole number from 0 to 100, got {self.confirm!r}")
        for k in ("screen", "audit"):
            v = getattr(self, k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 1_000_000):
                raise RunError(f"--{_flag(k)} must be a whole number from 0 to 1000000, got {v!r}")
        if self.screen_score is not None:
            from ..scores import ScoreNameError, names
            try:
                names(self.screen_score)
            except ScoreNameError as e:
                raise RunError(f"--screen-score: {e}") from None
        for k in ("trials", "epochs", "batch_size", "subset", "val_subset", "confirm_seeds", "confirm_epochs",
                  "confirm_subset"):
            v = getattr(self, k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
                raise RunError(f"--{_flag(k)} must be a whole number, got {v!r}")
            if v is not None and v < 1:
                raise RunError(f"--{_flag(k)} must be at least 1, got {v}")
        if self.confirm and self.confirm_subset is not None and self.subset is not None \
                and self.confirm_subset < self.subset:
            raise RunError(f"--confirm-subset {self.confirm_subset} is below --subset {self.subset}: a confirmation "
                           "trains on the search's images and more; give at least --subset (default: twice it)")
        if isinstance(self.precise_bn, bool) or not isinstance(self.precise_bn, int) or self.precise_bn < 0:
            raise RunError(f"--precise-bn must be a whole number of images, 0 or more, got {self.precise_bn!r}")
        for k in ("cpus_per_trial", "gpus_per_trial", "time_budget", "lr"):
            v = getattr(self, k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                raise RunError(f"--{_flag(k)} must be a finite number, got {v!r}")
        if self.cpus_per_trial is not None and self.cpus_per_trial <= 0:
            raise RunError(f"--cpus-per-trial must be positive, got {self.cpus_per_trial}")
        if self.gpus_per_trial is not None and self.gpus_per_trial < 0:
            raise RunError(f"--gpus-per-trial must be 0 or more, got {self.gpus_per_trial}")
        if self.gpus_per_trial and self.gpus_per_trial > 1 and self.gpus_per_trial != int(self.gpus_per_trial):
            raise RunError(f"--gpus-per-trial above 1 must be a whole number, got {self.gpus_per_trial}")
        if self.time_budget is not None and self.time_budget <= 0:
            raise RunError(f"--time-budget must be positive, got {self.time_budget}")
        if self.lr is not None and not self.lr > 0:
            raise RunError(f"--lr must be positive, got {self.lr}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**31:
            raise RunError(f"--seed must be a whole number from 0 to 2^31-1, got {self.seed!r}")
        if not (isinstance(self.val_fraction, (int, float)) and 0 < self.val_fraction < 1):
            raise RunError(f"--val-fraction must be between 0 and 1, got {self.val_fraction}")
        for k in ("image_size", "target_classes"):
            v = getattr(self, k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 100_000):
                raise RunError(f"--{_flag(k)} must be a whole number from 1 to 100000, got {v!r}")
        if self.target_kind not in (None, "space", "data"):
            raise RunError(f"--target must be 'space' or 'data', got {self.target_kind!r}")
        if self.target_kind == "data" and (self.target_input or self.target_classes):
            raise RunError("--target data takes the dataset's input and classes; leave out --target-input "
                           "and --target-classes (or give them without --target data)")
        if self.target_input is not None:
            parse_input(self.target_input)
        if self.evaluator not in (None, "standalone", "supernet"):
            raise RunError(f"--evaluator must be standalone or supernet, got {self.evaluator!r}")
        if self.supernet_bn not in ("batch", "recompute"):
            raise RunError(f"--supernet-bn must be batch or recompute, got {self.supernet_bn!r}")
        if self.child_steps is not None and (isinstance(self.child_steps, bool) or not isinstance(
                self.child_steps, (int, float)) or not 0 <= self.child_steps <= 1000):
            raise RunError(f"--child-steps must be a number from 0 to 1000, got {self.child_steps!r}")
        if self.supernet_warmup is not None and (isinstance(self.supernet_warmup, bool) or not isinstance(
                self.supernet_warmup, (int, float)) or not 0 <= self.supernet_warmup < 1):
            raise RunError(f"--supernet-warmup must be a share of the search time, from 0 to below 1, got "
                           f"{self.supernet_warmup!r}")
        if self.score_images is not None and (isinstance(self.score_images, bool) or not isinstance(
                self.score_images, int) or self.score_images < 1):
            raise RunError(f"--score-images must be a whole number of at least 1, got {self.score_images!r}")


def parse_input(text: str) -> tuple[int, int, int]:
    """'3x64x64' -> (3, 64, 64), or a one-line error."""
    parts = str(text).lower().replace(" ", "").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or not all(1 <= v <= 8192 for v in shape):
        raise RunError(f"--target-input {text!r} must be CxHxW with sizes from 1 to 8192, e.g. 3x64x64")
    return shape


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _arg_type(f: dataclasses.Field):
    t = str(f.type)
    return int if t.startswith("int") else float if t.startswith("float") else str


def add_arguments(parser: argparse.ArgumentParser):
    """One `--flag` per Settings field, with the field's help, type and defaults. Defaults stay
    None on the parser (argparse.SUPPRESS), so the caller sees only what the user gave."""
    for f in dataclasses.fields(Settings):
        m = f.metadata
        help_text = m["help"]
        if m.get("cpu") is not None:
            cpu, gpu = m["cpu"], m["gpu"]
            help_text += (f" (default {cpu:g})" if cpu == gpu else f" (default {cpu:g} on CPU, {gpu:g} with a GPU)")
        elif f.default not in (None, False):
            help_text += f" (default {f.default})"
        kw = dict(help=help_text, default=argparse.SUPPRESS, dest=f.name)
        if str(f.type) == "bool":
            parser.add_argument(flag_of(f.name), action="store_true", **kw)
            continue
        if str(f.type) == "bool | None":          # --fit / --no-fit, unset meaning "the space decides"
            parser.add_argument(flag_of(f.name), action=argparse.BooleanOptionalAction, **kw)
            continue
        if m.get("metavar"):
            kw["metavar"] = m["metavar"]
        if m.get("choices"):
            kw["choices"] = list(m["choices"])
        parser.add_argument(flag_of(f.name), type=_arg_type(f), **kw)


# Keys of a run's config.json that are not settings but facts the run derived (ignored by --config)
DERIVED = {"space_name", "budget_macs", "budget_params", "target", "proxy", "data", "flop_convention", "created",
           "unseen_decisions", "images", "budget_latency_ms", "latency"}


def read_config(path) -> dict:
    """The settings of a `--config` file: YAML or JSON with the keys of config.json. A run's own
    config.json re-runs its search as a new run (its `name` is dropped; its derived facts ignored)."""
    from pathlib import Path
    from ..limits import MAX_CONFIG_BYTES, over
    p = Path(path)
    if p.exists() and not p.is_file():
        raise RunError(f"--config {path} is not a regular file (a folder, FIFO or device); give a YAML or JSON file")
    try:
        with p.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
        if len(raw) > MAX_CONFIG_BYTES:
            raise RunError(f"--config {path}: " + over("its size in bytes", p.stat().st_size, MAX_CONFIG_BYTES))
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RunError(f"cannot read --config {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        if p.suffix.lower() == ".json":
            import json
            doc = json.loads(text, object_pairs_hook=_unique_keys)
        else:
            doc = _load_yaml(text)
    except RunError as e:
        raise RunError(f"--config {path}: {e}") from None
    except Exception as e:  # noqa: BLE001 - a malformed file, whatever the parser raises
        raise RunError(f"--config {path} is not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'}: "
                       f"{' '.join(str(e).split())[:200]}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise RunError(f"--config {path} must hold a mapping of settings (e.g. `budget: 600MFLOPs`), "
                       f"not a {type(doc).__name__}")
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    out = {}
    for k, v in doc.items():
        key = str(k).replace("-", "_")
        if key == "target" and not isinstance(v, dict):
            key = "target_kind"                      # `target: data`, as the flag; config.json's target is a dict
        if key in DERIVED:
            continue
        if key not in fields:
            import difflib
            hint = difflib.get_close_matches(key, fields, 1)
            raise RunError(f"--config {path}: unknown setting {brief(k)}"
                           + (f"; did you mean {hint[0]!r}?" if hint else "; see `nasty search --help`"))
        if str(fields[key].type) == "str | None" and isinstance(v, (int, float)) and not isinstance(v, bool):
            v = str(v)                               # `budget: 600M` in YAML is a string already; 6e8 is not
        out[key] = v
    if "created" in doc:                             # a run's own config.json: a new run, a new name
        out.pop("name", None)
    return out


def _unique_keys(pairs):
    """A JSON object's pairs as a dict; a key given twice is an error (json keeps the last silently)."""
    out = {}
    for k, v in pairs:
        if k in out:
            raise RunError(f"setting {brief(k)} is given twice; give each setting once")
        out[k] = v
    return out


def _load_yaml(text: str):
    """yaml.safe_load, refusing a mapping key given twice (PyYAML keeps the last silently)."""
    import yaml                                       # PyYAML: JSON is YAML too

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            try:
                if key in seen:
                    raise RunError(f"setting {brief(key)} is given twice (line {key_node.start_mark.line + 1}); "
                                   "give each setting once")
                seen.add(key)
            except TypeError:                         # an unhashable key: the constructor says so below
                pass
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass: plain YAML types only


def from_arguments(args: argparse.Namespace) -> Settings:
    """Settings from parsed flags over a --config file's: the fields given, defaults for the rest."""
    names = {f.name for f in dataclasses.fields(Settings)}
    given = read_config(args.config) if getattr(args, "config", None) else {}
    flags = {k: v for k, v in vars(args).items() if k in names}
    for k, v in flags.items():
        if isinstance(v, list):                       # argparse's reading of `--budget=--`
            raise RunError(f"{flag_of(k)} needs a value, got '--'; write it after the flag, e.g. {flag_of(k)} VALUE")
    given.update(flags)
    s = Settings(**given)
    check_types(s, source="flag" if not getattr(args, "config", None) else None)
    return s


_TYPE_WORDS = {"str": "text", "int": "a whole number", "float": "a number", "bool": "true or false"}


def check_types(s: Settings, source: str | None = None):
    """A setting of the wrong type (from a config file, or from Python) is a one-line error naming
    it: `--budget` for a flag (`source="flag"`), `budget=` from Python (`"python"`), else both."""
    for f in dataclasses.fields(Settings):
        v = getattr(s, f.name)
        t = str(f.type)
        ok = (v is None and "None" in t) or (
            isinstance(v, bool) if t in ("bool", "bool | None") else
            isinstance(v, str) if t.startswith("str") else
            isinstance(v, int) and not isinstance(v, bool) if t.startswith("int") else
            isinstance(v, (int, float)) and not isinstance(v, bool) if t.startswith("float") else True)
        if not ok:
            want = " or ".join(_TYPE_WORDS.get(x.strip(), "None") for x in t.split("|") if x.strip() != "None")
            name = (flag_of(f.name) if source == "flag" else f"{f.name}=" if source == "python"
                    else f"setting {f.name} ({flag_of(f.name)})")
            raise RunError(f"{name} must be {want}" + (" (or left out)" if "None" in t else "")
                           + f", got {type(v).__name__} {brief(v)}")


def with_target(space, s, data):
    """The space with the target budgets apply to: its own (default), the data's (--target data),
    or --target-input / --target-classes."""
    from ..space import NetSpec
    if s.target_kind == "data":
        spec = NetSpec(False, tuple(data.shape), data.num_classes)
    elif s.target_input or s.target_classes:
        spec = NetSpec(False, parse_input(s.target_input) if s.target_input else space.target.input,
                       s.target_classes or space.target.classes)
    else:
        return space
    return dataclasses.replace(space, target=spec)
