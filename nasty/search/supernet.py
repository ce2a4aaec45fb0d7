"""Weight sharing for any define-by-run space: one pool of parameters that every child network
of a search reads and trains (the one-shot evaluator, `--evaluator supernet`).

A child is a proxy genotype compiled by the one compiler (nasty/compile.py). Each of its
layers with parameters gets a *structural key* (`layer_keys`), and the pool (`WeightPool`)
binds the layer's parameters to the pool's tensors of that key: the child's modules then
hold the pool's `nn.Parameter` objects themselves (nothing is copied), so a step of one
child moves the tensors every other child with that layer reads. A key is made of

    place   the layer's path in the genotype, with the operand index of an add/cat/mul left
            out (`stage1.out.0.conv` and `stage1.out.conv` are the same place: the conv of a
            term of node `out`, whatever the other terms are);
    source  the genotype node the op reads (`stage1.n1`, `stem`, the network input), so two
            terms of one node that read different states never share;
    op      the whole op of that term: the kind and the module (kernel, stride, dilation,
            groups, ...) of every step of it, so that different ops at the same place never
            share, even where one of their layers looks the same (dil_conv_5x5's pointwise
            conv and sep_conv_5x5's);
    layer   the layer's name inside the op and its parameters' shapes.

Two layers of one child with the same key (the same op twice on the same state) are told
apart by their order. Steps that compute the identity (`identity`, `scale v=1`) are not part
of an op: DARTS's relaxation marks its mixed edges with them (controllers/darts.py).

BatchNorm: affine parameters are shared; running statistics are not (they describe one
child's activations). A child is scored with `bn="batch"` (default): its BN layers normalise
the validation images with their own batch statistics (train-mode BN, as ENAS's and SPOS's
shared-weight evaluations do), which costs nothing extra. `bn="recompute"` instead
recomputes each child's running statistics on a few training batches, then scores in eval
mode (SPOS's recalibration; benchmarks/nasbench/README.md compares the two).
"""
from __future__ import annotations

import hashlib
import io
import re
import time
from collections import OrderedDict

MERGES = ("add", "cat", "mul")
INPUT_SOURCE = "<input>"


# ------------------------------------------------------------------ structural keys
def _identity_step(st) -> bool:
    """A step that returns its input unchanged (not part of an op's identity)."""
    return st.kind == "identity" or (st.kind == "scale" and float(st.attrs.get("v", 0)) == 1.0)


def _operand_scope(parts: list[str], merges: set[str]) -> int:
    """How many leading components of a step's name make its scope: up to and including the
    innermost operand index of an add/cat/mul; without one, all but the last component."""
    for i in range(len(parts) - 1, 0, -1):
        if parts[i].isdigit() and ".".join(parts[:i]) in merges:
            return i + 1
    return len(parts) - 1


def _canonical(parts: list[str], merges: set[str]) -> str:
    """A path with the operand indices of merges left out."""
    return ".".join(p for i, p in enumerate(parts) if not (p.isdigit() and ".".join(parts[:i]) in merges))


def _module_signature(module) -> str:
    """What a module computes: its class and settings (not whether it may overwrite its input,
    which the compiler decides from the rest of the network)."""
    if module is None:
        return ""
    settings = re.sub(r",?\s*inplace=(True|False)", "", module.extra_repr()).strip(", ")
    return f"{type(module).__name__}({settings})"


def layer_keys(program, model) -> dict[str, str]:
    """{module path: structural key} for every layer of `model` (compiled from `program`) that
    has parameters. See the module docstring for what a key holds."""
    steps = program.steps
    merges = {st.name.rpartition(".")[0] for st in steps if st.kind in MERGES}
    modules = dict(model.named_modules())
    scope_of, parts_of = [], []
    for st in steps:
        parts = st.name.split(".")
        parts_of.append(parts)
        scope_of.append(".".join(parts[:_operand_scope(parts, merges)]))
    members: dict[str, list[int]] = {}
    for i, sc in enumerate(scope_of):
        members.setdefault(sc, []).append(i)

    def node_of(h: int) -> str:
        """The genotype node a handle belongs to: its step's path less the last component."""
        if h < 0:
            return INPUT_SOURCE
        return _canonical(parts_of[h][:-1], merges) or parts_of[h][0]

    op_key: dict[str, str] = {}
    for sc, idx in members.items():
        inside = set(idx)
        sources = sorted({node_of(h) for i in idx for h in steps[i].inputs if h not in inside})
        n = len(sc.split("."))
        local = {i: ".".join(parts_of[i][n:]) for i in idx}
        sig = []
        for i in idx:
            st = steps[i]
            if _identity_step(st):
                continue
            wiring = ",".join(local[h] if h in inside else "^" for h in st.inputs)
            sig.append(f"{local[i]}={st.kind}[{_module_signature(modules.get(st.name))}]({wiring})")
        digest = hashlib.sha1("|".join(sig).encode()).hexdigest()[:16]
        op_key[sc] = f"{_canonical(sc.split('.'), merges)}<{'+'.join(sources)}>{digest}"
    out, seen = {}, {}
    for i, st in enumerate(steps):
        m = modules.get(st.name)
        if m is None or not any(True for _ in m.parameters(recurse=False)):
            continue
        shapes = ";".join(f"{k}{tuple(p.shape)}" for k, p in m.named_parameters(recurse=False))
        n = len(scope_of[i].split("."))
        key = f"{op_key[scope_of[i]]}/{'.'.join(parts_of[i][n:])}:{shapes}"
        seen[key] = seen.get(key, -1) + 1
        out[st.name] = key if not seen[key] else f"{key}#{seen[key]}"
    return out


# ------------------------------------------------------------------ the pool
class WeightPool:
    """Parameters by structural key; children are bound to them (see the module docstring)."""

    def __init__(self):
        self.params: "OrderedDict[str, object]" = OrderedDict()     # "key/name" -> nn.Parameter

    def __len__(self):
        return len(self.params)

    def numel(self) -> int:
        return sum(p.numel() for p in self.params.values())

    def bind(self, model, program) -> list:
        """Make `model`'s layers hold the pool's parameters; the layers the pool has not seen
        yet give it their own (freshly initialised) ones. Returns the parameters new to the pool."""
        keys = layer_keys(program, model)
        new = []
        for path, key in keys.items():
            module = model.get_submodule(path)
            for name, p in list(module.named_parameters(recurse=False)):
                k = f"{key}/{name}"
                have = self.params.get(k)
                if have is None:
                    self.params[k] = p
                    new.append(p)
                elif have is not p:
                    setattr(module, name, have)      # the pool's Parameter object itself: shared
        return new

    def state_dict(self) -> dict:
        return {k: p.detach() for k, p in self.params.items()}

    def load_state_dict(self, state: dict):
        """Restore tensors by key: existing ones in place (bound children stay bound), new ones added."""
        import torch
        for k, v in state.items():
            have = self.params.get(k)
            if have is None:
                self.params[k] = torch.nn.Parameter(v.clone())
            else:
                with torch.no_grad():
                    have.copy_(v)


# ------------------------------------------------------------------ the shared-weight evaluator
class Supernet:
    """The pool, its optimizer, the data it trains and scores children on, and a cache of
    compiled, bound children (a controller proposes the same child many times).

    `data` is the executor's payload (standalone.make_payload) and `rows` the search's rows of it;
    training batches cycle through the training rows in a seeded order; a child's score is its
    accuracy on the first `score_images` validation rows (the same images for every child)."""

    def __init__(self, data: dict, rows: dict | None, *, batch_size: int = 64, lr: float = 0.05,
                 weight_decay: float = 3e-4, score_images: int = 256, bn: str = "batch", bn_batches: int = 4,
                 seed: int = 0, device: str = "auto", cache: int = 256):
        import torch

        from ..data import to_device_tensors
        from ..train import resolve_device
        if bn not in ("batch", "recompute"):
            raise ValueError(f"bn must be 'batch' or 'recompute', got {bn!r}")
        self.torch = torch
        self.device = resolve_device(device)
        rows = rows or data["rows"]["search"]
        (a, b), (c, d) = rows["train"], rows["val"]
        x, y, mean, std = data["x"], data["y"], data["mean"], data["std"]
        self.shape, self.classes = tuple(x.shape[1:]), len(data["classes"])
        self.x, self.y = to_device_tensors(x[a:b], y[a:b], self.device, mean, std)
        self.vx, self.vy = to_device_tensors(x[c:d], y[c:d], self.device, mean, std)
        self.batch_size, self.lr, self.wd = min(batch_size, len(self.x)), lr, weight_decay
        self.score_images = min(score_images, len(self.vx))
        self.bn, self.bn_batches = bn, bn_batches
        self.pool = WeightPool()
        self.opt = self._optimizer([])
        self.loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
        self.gen = torch.Generator().manual_seed(seed)
        self.order = torch.randperm(len(self.x), generator=self.gen)
        self.cursor = 0
        self.val_gen = torch.Generator().manual_seed(seed + 1)
        self.val_order = torch.randperm(len(self.vx), generator=self.val_gen)
        self.val_cursor = 0
        self.steps = 0                        # training steps taken on the pool
        self.train_seconds = 0.0
        self.images_trained = 0
        self.mac_images = 0.0                 # proxy MACs x images trained, for time estimates
        self.cache: "OrderedDict[str, object]" = OrderedDict()
        self.cache_size = cache
        self.compiled = 0

    # ------------------------------------------------------------ children
    def _optimizer(self, params):
        torch = self.torch
        return torch.optim.SGD([{"params": [p for p in params if p.ndim > 1], "weight_decay": self.wd},
                                {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}],
                               lr=self.lr, momentum=0.9, nesterov=True)

    def adopt(self, params):
        """Give the optimizer the parameters that are new to the pool."""
        for p in params:
            self.opt.param_groups[0 if p.ndim > 1 else 1]["params"].append(p)

    def child(self, proxy: str):
        """The child network of a proxy genotype (text), compiled and bound to the pool."""
        model = self.cache.get(proxy)
        if model is not None:
            self.cache.move_to_end(proxy)
            return model
        from .. import parse
        g = parse(proxy)
        model = self.build(g)
        self.cache[proxy] = model
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return model

    def build(self, g, prepare=None):
        """Compile genotype `g` at the data's shape and bind it to the pool. `prepare(model)` may
        change the compiled module before binding (DARTS puts its architecture weights in)."""
        from ..compile import compile_genotype
        from ..genotype import elaborate
        model = compile_genotype(g, input=self.shape, classes=self.classes)
        if prepare is not None:
            prepare(model)
        model.to(device=self.device, memory_format=self.torch.channels_last)
        self.adopt(self.pool.bind(model, elaborate(g, self.shape, self.classes)))
        self.compiled += 1
        return model

    # ------------------------------------------------------------ batches
    def next_batch(self):
        """The next training batch (a seeded permutation per pass, the ragged end dropped)."""
        if self.cursor + self.batch_size > len(self.order):
            self.order = self.torch.randperm(len(self.x), generator=self.gen)
            self.cursor = 0
        idx = self.order[self.cursor:self.cursor + self.batch_size].to(self.device)
        self.cursor += self.batch_size
        return self.x[idx], self.y[idx]

    def next_val_batch(self):
        """The next validation batch (DARTS's architecture steps), cycling like next_batch."""
        n = min(self.batch_size, len(self.vx))
        if self.val_cursor + n > len(self.val_order):
            self.val_order = self.torch.randperm(len(self.vx), generator=self.val_gen)
            self.val_cursor = 0
        idx = self.val_order[self.val_cursor:self.val_cursor + n].to(self.device)
        self.val_cursor += n
        return self.vx[idx], self.vy[idx]

    # ------------------------------------------------------------ training and scoring
    def train_step(self, model, macs: float | None = None) -> float:
        """One SGD step of `model` on the next training batch; the pool's tensors move."""
        torch = self.torch
        t0 = time.perf_counter()
        model.train()
        x, y = self.next_batch()
        loss = self.loss_fn(model(x), y)
        if not torch.isfinite(loss):
            from ..errors import TrainingError
            raise TrainingError(f"the supernet's loss became {loss.item()} at step {self.steps + 1}; "
                                "lower the learning rate (--lr)")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.steps += 1
        self.train_seconds += time.perf_counter() - t0
        self.images_trained += len(x)
        if macs:
            self.mac_images += macs * len(x)
        return loss.item()

    def seconds_per_mac_image(self) -> float | None:
        """Measured training seconds per (proxy MAC x image), for estimates of standalone training."""
        return self.train_seconds / self.mac_images if self.mac_images else None

    def score(self, model) -> float:
        """Validation accuracy of `model` with the shared weights (see the module docstring for BN)."""
        torch = self.torch
        bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        with torch.no_grad():
            if self.bn == "recompute":               # the same training images for every child
                from ..train import recalibrate_bn
                recalibrate_bn(model, self.x, self.batch_size, images=self.bn_batches * self.batch_size, seed=12345)
                model.eval()
            else:
                model.eval()
                for m in bns:                       # batch statistics; dropout and drop-path stay off
                    m.train()
            correct = 0
            for i in range(0, self.score_images, 512):
                x = self.vx[i:min(self.score_images, i + 512)]
                correct += (model(x).argmax(1) == self.vy[i:i + len(x)]).sum().item()
        model.train()
        return correct / self.score_images

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        return {"pool": self.pool.state_dict(), "keys": list(self.pool.params),
                "opt": self.opt.state_dict(), "gen": self.gen.get_state(), "order": self.order,
                "cursor": self.cursor, "val_gen": self.val_gen.get_state(), "val_order": self.val_order,
                "val_cursor": self.val_cursor, "steps": self.steps, "train_seconds": self.train_seconds,
                "images_trained": self.images_trained, "mac_images": self.mac_images}

    def load_state_dict(self, st: dict):
        self.pool.load_state_dict(st["pool"])
        # the optimizer's state is kept by position: rebuild it over the pool in the saved order
        params = [self.pool.params[k] for k in st["keys"]]
        self.opt = self._optimizer(params)
        self.opt.load_state_dict(st["opt"])
        self.adopt([p for k, p in self.pool.params.items() if k not in set(st["keys"])])
        self.gen.set_state(st["gen"])
        self.order, self.cursor = st["order"], int(st["cursor"])
        self.val_gen.set_state(st["val_gen"])
        self.val_order, self.val_cursor = st["val_order"], int(st["val_cursor"])
        self.steps, self.train_seconds = int(st["steps"]), float(st["train_seconds"])
        self.images_trained, self.mac_images = int(st["images_trained"]), float(st["mac_images"])


def to_bytes(state: dict) -> bytes:
    import torch
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def from_bytes(blob: bytes) -> dict:
    import torch
    return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
