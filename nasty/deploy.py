"""A trained network as something to use: the `Classifier` that `nasty.load_model(run)`,
`result.model()`, `nasty.train(...)` and `nasty predict` give, and the exports of `--export`.

The input normalisation lives INSIDE the network. A Classifier, and every graph exported from
one, takes images as float pixels in [0, 1], N x C x H x W (what torchvision's ToTensor gives,
and what any runtime gets by dividing 8-bit pixels by 255), and subtracts the training data's
per-channel mean and divides by its std itself. Why inside, not only in metadata: a consumer
that must read the mean/std from metadata and forgets to gets confident wrong answers and no
error; inside the graph it cannot be forgotten, costs two elementwise ops per pixel, and an
ONNX or torch.export runtime needs no nasty code. The class names, mean/std and input shape are
also written beside the weights: in the checkpoint (`nasty train`), in an ONNX file's
metadata_props (keys `nasty.*`) and in a .pt2's extra file `nasty.json`.

Exports accept any batch size: torch.export with a dynamic batch dimension, ONNX with a
dynamic batch axis ("batch").
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import NastyError

EXPORT_SUFFIXES = (".onnx", ".pt2")
INPUT_RANGE = "float32 pixels in [0, 1], N x C x H x W; the mean/std normalisation is inside the network"
ONNX_EXTRA = "pip install 'nasty-nas[onnx]'"
MAX_BATCH = 1 << 16                  # the dynamic batch dimension's upper bound in exports


class Classifier(nn.Module):
    """A trained image classifier ready for inference: `net` after the training data's
    normalisation, with its class names. Input: float pixels in [0, 1], (N, C, H, W)."""

    def __init__(self, net: nn.Module, mean, std, classes, info: dict | None = None):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor([float(m) for m in mean]).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor([float(s) for s in std]).view(1, -1, 1, 1))
        self.classes = tuple(str(c) for c in classes)
        self.info = dict(info or {})                   # genotype, input, source, test_acc, checkpoint...

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image, as the network was trained."""
        return tuple(self.info["input"])

    def forward(self, x):
        return self.net((x - self.mean) / self.std)

    @torch.no_grad()
    def predict(self, images, top: int = 1) -> list[list[tuple[str, float]]]:
        """The `top` most probable (class name, probability) pairs per image. `images`: (N, C, H, W)
        uint8 0..255, or floats in [0, 1] (a tensor or a numpy array)."""
        if isinstance(images, torch.Tensor) and images.is_meta:
            raise NastyError("predict got a tensor on the meta device: it has a shape but no values; pass the "
                             "images themselves")
        try:
            x = torch.as_tensor(np.asarray(images) if not isinstance(images, torch.Tensor) else images)
        except (TypeError, ValueError, RuntimeError) as e:
            raise NastyError(f"predict cannot read the images as one array ({type(e).__name__}); pass "
                             f"(N, {', '.join(map(str, self.input_shape))}) uint8 or [0, 1] floats") from None
        if x.ndim == 3:
            x = x[None]
        if tuple(x.shape[1:]) != tuple(self.input_shape) or not (x.dtype == torch.uint8 or x.is_floating_point()):
            raise NastyError(f"predict takes (N, {', '.join(map(str, self.input_shape))}) images, uint8 or [0, 1] "
                             f"floats; got {tuple(x.shape)} {x.dtype}")
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
        device = self.mean.device
        probs = torch.softmax(self.eval()(x.to(device)).float(), dim=1).cpu()
        p, i = probs.topk(min(top, len(self.classes)), dim=1)
        return [[(self.classes[k], float(v)) for v, k in zip(pv.tolist(), iv.tolist())] for pv, iv in zip(p, i)]

    def metadata(self) -> dict:
        """What an export records beside the graph (plain JSON values)."""
        return {"format": "nasty-classifier/1", "classes": list(self.classes),
                "mean": [float(v) for v in self.mean.flatten()], "std": [float(v) for v in self.std.flatten()],
                "input": list(self.input_shape), "input_range": INPUT_RANGE,
                **{k: self.info[k] for k in ("name", "genotype", "source", "test_acc") if k in self.info}}


# ------------------------------------------------------------------ loading
def checkpoint_of(source) -> Path:
    """The checkpoint file of a run folder (runs/NAME/final/checkpoint.pt), a SearchResult or a file."""
    path = Path(getattr(source, "run", source))
    if path.is_dir():
        ck = path / "final" / "checkpoint.pt"
        if not ck.is_file():
            hint = "" if (path / "config.json").is_file() else " (is it a run folder?)"
            raise NastyError(f"run {path} has no trained final network (no {ck}){hint}; train it with "
                             f"`nasty train {path}` (or nasty.train(...) from Python)")
        return ck
    if not path.exists():
        raise NastyError(f"{path} is neither a run folder nor a checkpoint file")
    return path


def load_model(source, device: str = "cpu") -> Classifier:
    """The trained final network of `source` (a run folder, a SearchResult, or a checkpoint
    `nasty train` wrote) as a Classifier in eval mode, its normalisation and classes known."""
    from . import parse
    from .compile import compile_genotype
    from .final import load_checkpoint
    path = checkpoint_of(source)
    ck = load_checkpoint(path)
    missing = [k for k in ("mean", "std", "class_names") if not ck.get(k)]
    if missing:
        raise NastyError(f"{path} was written by an older nasty, without the input normalisation and class names; "
                         "run the `nasty train` command that made it again: a finished training is not redone, "
                         "the checkpoint gains them")
    g = parse(ck["genotype"], f"{path}: genotype")
    net = compile_genotype(g, input=tuple(ck["input"]), classes=ck["classes"])
    net.load_state_dict(ck["model"])
    info = {"name": ck.get("name"), "genotype": ck["genotype"], "input": list(ck["input"]),
            "source": ck.get("source"), "test_acc": ck.get("test_acc"), "checkpoint": str(path),
            "epoch": ck.get("epoch"), "epochs": ck.get("epochs")}
    return Classifier(net, ck["mean"], ck["std"], ck["class_names"], info).to(device).eval()


# ------------------------------------------------------------------ images
def read_images(paths, shape) -> np.ndarray:
    """Image files as uint8 (N, C, H, W), read as the training data was (nasty.data.load_image:
    decoded by Pillow, upright, grey when C is 1 and RGB when 3, resized bilinearly to H x W)."""
    from .data import load_image
    out = np.empty((len(paths),) + tuple(shape), dtype=np.uint8)
    for i, p in enumerate(paths):
        out[i] = load_image(p, tuple(shape))
    return out


# ------------------------------------------------------------------ export
def check_export_path(path: str) -> Path:
    """A one-line error now, before any work, unless `path` ends in .onnx or .pt2 and (for ONNX)
    the onnx extra is installed."""
    p = Path(path)
    if p.suffix not in EXPORT_SUFFIXES:
        raise NastyError(f"--export must end in .onnx or .pt2, got {path!r}")
    if p.suffix == ".onnx":
        import importlib.util
        lacking = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
        if lacking:
            raise NastyError(f"ONNX export needs {' and '.join(lacking)}: {ONNX_EXTRA} (or export to a .pt2 file)")
    return p


def export(model: nn.Module, shape, path: str, meta: dict | None = None) -> str:
    """Export `model` (put in eval mode, on the CPU) for inputs (batch, *shape), any batch size,
    to ONNX (.onnx) or torch.export (.pt2), with `meta` (default: a Classifier's metadata())
    recorded beside the graph. Returns what was written, for the user."""
    p = check_export_path(path)
    model = model.cpu().eval()
    if meta is None and isinstance(model, Classifier):
        meta = model.metadata()
    meta = {"input": list(shape), **(meta or {})}
    x = torch.rand((2,) + tuple(shape))                # batch 2: torch.export specializes a batch of 1
    dynamic = ({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)},)
    if p.suffix == ".pt2":
        program = torch.export.export(model, (x,), dynamic_shapes=dynamic)
        torch.export.save(program, str(p), extra_files={"nasty.json": json.dumps(meta)})
        return f"exported to {p} (any batch size; metadata in its extra file nasty.json)"
    import contextlib
    import io
    data = p.with_name(p.name + ".data")
    before = data.stat().st_mtime_ns if data.exists() else None
    try:
        with contextlib.redirect_stdout(io.StringIO()):   # torch.onnx's step-by-step chatter
            program = torch.onnx.export(model, (x,), dynamo=True, dynamic_shapes=dynamic,
                                        input_names=["images"], output_names=["logits"])
    except ImportError as e:
        raise NastyError(f"ONNX export needs the onnx extra ({e}): {ONNX_EXTRA}") from None
    program.model.metadata_props.update({f"nasty.{k}": v if isinstance(v, str) else json.dumps(v)
                                         for k, v in meta.items()})
    program.save(str(p), external_data=True)              # as torch.onnx.export(f=...) does: weights beside
    if data.exists() and data.stat().st_mtime_ns != before:
        return (f"exported to {p} (any batch size), with the weights in {data} beside it (ONNX external data: "
                "keep the two files together)")
    return f"exported to {p} (any batch size; metadata in its metadata_props, keys nasty.*)"


def read_export_metadata(path) -> dict:
    """The metadata `export` recorded in an .onnx or .pt2 file."""
    p = Path(path)
    if p.suffix == ".pt2":
        extra = {"nasty.json": ""}
        torch.export.load(str(p), extra_files=extra)
        return json.loads(extra["nasty.json"])
    import onnx
    props = {q.key[len("nasty."):]: q.value for q in onnx.load(str(p), load_external_data=False).metadata_props
             if q.key.startswith("nasty.")}
    out = {}
    for k, v in props.items():
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out
