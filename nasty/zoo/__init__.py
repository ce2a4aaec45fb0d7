"""The zoo: canonical architectures as genotype files, built by the one compiler.

Each family is one `.nasty` genotype plus a `.json` catalog beside it. The
catalog names the members and, per member, what differs from the file: `let`
constants (depths, widths), `scale` (width/depth multipliers), the input
resolution, header defaults; and facts about it: year, the reference
implementation it must equal (`torchvision:resnet50`, `timm:nasnetalarge`),
and figures from the notes or the paper.

    {"file": "resnet_bottleneck.nasty",
     "entries": {"resnet101": {"lets": {"n3": 23}, "ref": "torchvision:resnet101", "year": 2015}}}
"""
from __future__ import annotations

import contextlib
import functools
import json
from dataclasses import dataclass, field

from pathlib import Path

from ..errors import NastyError
from ..genotype import Genotype, parse
from ..genotype.jsonform import json_value, from_json
from ..genotype.ir import sorted_attrs

_HERE = Path(__file__).parent


@dataclass(frozen=True)
class Entry:
    name: str
    file: str
    family: str
    lets: dict = field(default_factory=dict)
    scale: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)
    input: tuple | None = None
    classes: int | None = None
    ref: str | None = None            # "torchvision:resnet50" or "timm:nasnetalarge"
    ref_kwargs: dict = field(default_factory=dict)
    year: int | None = None
    top1: float | None = None         # ImageNet top-1 (%) where the notes give it
    paper: str | None = None
    notes: str | None = None


@functools.cache
def _catalog() -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    for path in sorted(_HERE.glob("*.json")):
        doc = json.loads(path.read_text())
        family = path.stem
        for name, e in doc["entries"].items():
            if name in out:
                raise NastyError(f"zoo: {name} is defined twice ({out[name].family} and {family})")
            known = set(Entry.__dataclass_fields__) - {"name", "family"}   # "file": per-entry override
            bad = set(e) - known
            if bad:
                raise NastyError(f"zoo {path.name}: {name} has unknown key(s) {sorted(bad)}")
            e = dict(e)
            if e.get("input") is not None:
                e["input"] = tuple(e["input"])
            out[name] = Entry(name=name, file=e.pop("file", doc["file"]), family=family, **e)
    return out


def names() -> list[str]:
    """Every zoo name, sorted."""
    return sorted(_catalog())


def entry(name: str) -> Entry:
    cat = _catalog()
    if name not in cat:
        import difflib
        close = difflib.get_close_matches(name, list(cat), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else " See `nasty zoo` for the list."
        raise NastyError(f"unknown zoo network {name!r}.{hint}")
    return cat[name]


@functools.cache
def _base(file: str) -> Genotype:
    text = (_HERE / file).read_text()
    return from_json(text, file) if file.endswith(".json") else parse(text, file)


def get(name: str) -> Genotype:
    """The genotype of zoo network `name`."""
    e = entry(name)
    g = _base(e.file)
    where = f"zoo {name}"
    changes = {"name": name}
    if e.lets:
        changes["lets"] = {k: json_value(v, where) for k, v in e.lets.items()}
    if e.scale:
        changes["scale"] = sorted_attrs({**dict(g.scale),
                                         **{k: json_value(v, where) for k, v in e.scale.items()}}.items())
    if e.defaults:
        changes["defaults"] = sorted_attrs({**dict(g.defaults),
                                            **{k: json_value(v, where) for k, v in e.defaults.items()}}.items())
    if e.input is not None:
        changes["input"] = tuple(e.input)
    if e.classes is not None:
        changes["classes"] = e.classes
    return g.with_header(**changes)


def reference(name: str, meta: bool = False, **kwargs):
    """Build the reference implementation (torchvision or timm) of a zoo entry, untrained.

    With `meta=True` its parameters and buffers live on the meta device: no memory, no init
    arithmetic, enough to count params and MACs of the largest nets in milliseconds. Returns
    None when the entry has no reference. Raises NastyError when the reference library is not
    installed.
    """
    e = entry(name)
    if not e.ref:
        return None
    lib, _, fn = e.ref.partition(":")
    kw = {**e.ref_kwargs, **kwargs}
    try:
        with _weights_on_meta() if meta else contextlib.nullcontext():
            if lib == "torchvision":
                import torchvision
                return getattr(torchvision.models, fn)(weights=None, **kw)
            if lib == "timm":
                import timm
                return timm.create_model(fn, pretrained=False, **kw)
    except ImportError as exc:
        raise NastyError(f"{name}'s reference needs {lib}: pip install {lib}") from exc
    raise NastyError(f"zoo {name}: unknown reference library {lib!r}")


@contextlib.contextmanager
def _weights_on_meta():
    """Every parameter and buffer a module registers goes to the meta device as it is registered.

    Not `with torch.device("meta")`: that makes *every* new tensor meta, and some references
    compute their layout with torch ops (torchvision's RegNet quantizes its widths with
    torch.arange/log/round, then calls .tolist()), which cannot read meta tensors.
    """
    from torch import nn
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def to_meta_parameter(self, pname, param):
        if param is not None and not param.is_meta:
            param = type(param)(param.to("meta"), requires_grad=param.requires_grad)
        register_parameter(self, pname, param)

    def to_meta_buffer(self, bname, tensor, persistent=True):
        register_buffer(self, bname, None if tensor is None else tensor.to("meta"), persistent)

    nn.Module.register_parameter, nn.Module.register_buffer = to_meta_parameter, to_meta_buffer
    try:
        yield
    finally:
        nn.Module.register_parameter, nn.Module.register_buffer = register_parameter, register_buffer


@contextlib.contextmanager
def unfused_attention():
    """Attention computed by its matrix products while the block runs, so that FlopCounterMode
    counts them: torch's fused scaled_dot_product_attention is not counted on the CPU (torch 2.14:
    no FLOP formula for its CPU flash kernel), and nn.MultiheadAttention's CPU fast path counts
    neither its projections nor its products. Inside, F.scaled_dot_product_attention is q k^T
    scaled, masked, softmax, times v (torch's own math path), and MultiheadAttention's fast path is
    off. nasty's compiled attention always runs its products unfused (`matmul`)."""
    import torch
    import torch.nn.functional as F

    fused = F.scaled_dot_product_attention
    fastpath = torch.backends.mha.get_fastpath_enabled()

    def math_attention(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        s = q.shape[-1] ** -0.5 if scale is None else scale
        a = torch.matmul(q * s, k.transpose(-2, -1))
        if is_causal:
            keep = torch.ones(a.shape[-2:], dtype=torch.bool, device=a.device).tril()
            a = a.masked_fill(~keep, float("-inf"))
        if attn_mask is not None:
            a = a.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool else a + attn_mask
        a = F.dropout(torch.softmax(a, dim=-1), dropout_p)
        return torch.matmul(a, v)

    F.scaled_dot_product_attention = math_attention
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        F.scaled_dot_product_attention = fused
        torch.backends.mha.set_fastpath_enabled(fastpath)
