"""nasty: a neural-architecture-search toolkit built on one genotype language.

    import nasty
    g = nasty.zoo.get("resnet50")            # a Genotype
    model = nasty.build("resnet50")          # a plain torch.nn.Module
    c = nasty.cost("resnet50")               # params, MACs, FLOPs, memory, per-layer table
    t = nasty.latency("resnet50")            # measured here (nasty.latency(..., predict=True): per op)
    nasty.port_weights(torchvision_model, model)
    result = nasty.search("nasnet", budget="600MFLOPs", trials=10)   # a search, as `nasty search`
    nasty.score("resnet50", (x, y), which="naswot")  # a zero-cost score on one batch (nasty.scores)
    model = nasty.train(result, epochs=1)    # its final network, trained as `nasty train` does
    model = nasty.load_model("runs/NAME")    # or result.model(): ready for inference (docs/deploy.md)

Importing nasty does not import torch (the command line's --help and --version stay fast);
`train` (the trainer module, callable) and `load_model` load it when first used.
"""
from __future__ import annotations


from . import search, zoo
from .errors import NastyError
from .genotype import Genotype, GenotypeError, ParseError, format, parse, validate
# Imported eagerly and renamed: the submodule `nasty.cost` would otherwise shadow
# the function `nasty.cost` the first time it is imported lazily.
from .cost import cost as _cost
from .lookup import load, read_text, resolve
from . import latency  # a callable module, as nasty.search: nasty.latency("resnet18"); imports no torch

__all__ = ["Genotype", "GenotypeError", "NastyError", "ParseError", "build", "cost", "format", "read_text",
           "latency", "load", "load_model", "parse", "port_weights", "resolve", "score", "search", "train", "validate",
           "zoo", "__version__"]


def __getattr__(name):
    """`nasty.train` and `nasty.load_model`, imported when first used (they need torch)."""
    import importlib
    if name == "train":          # the trainer module, callable as nasty.train(result, ...): nasty/train.py
        return importlib.import_module(".train", __name__)
    if name == "load_model":
        return importlib.import_module(".deploy", __name__).load_model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DISTRIBUTION = "nasty-nas"     # the name on the package index ("nasty" there is an unrelated crawler)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, metadata, version
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        pass
    try:                                  # an install made before the rename, when it is this toolkit
        meta = metadata("nasty")
        if (meta["Summary"] or "").startswith("Neural architecture search toolkit"):
            return meta["Version"]
    except PackageNotFoundError:
        pass
    return "0+unknown"                    # a source tree on sys.path without an install


__version__ = _version()


def build(name_or_genotype, num_classes: int | None = None, input=None):
    """Compile a genotype (or zoo name, or file) to a torch.nn.Module."""
    from .compile import compile_genotype
    return compile_genotype(resolve(name_or_genotype), input=input, classes=num_classes)


def cost(name_or_genotype, input=None, batch: int = 1, num_classes: int | None = None):
    """Analytic cost (params, MACs, FLOPs, memory, layers) without building torch modules."""
    return _cost(resolve(name_or_genotype), input=input, batch=batch, classes=num_classes)


def score(genotype, data, which=None, *, images: int = 64, seed: int = 0):
    """Zero-cost score(s) of a genotype (or zoo name, or file) on one batch of `data`, untrained:
    naswot, synflow, snip, grad_norm, jacob_cov, params, macs (see nasty.scores). `which`: one
    name (returns a float, NaN when it came out non-finite), several, or None for all ({name: float})."""
    from .scores import score as _score
    return _score(genotype, data, which, images=images, seed=seed)


def port_weights(src, dst, input_shape=None) -> int:
    """Copy a reference model's weights into a compiled genotype net, matched by structure."""
    from .weights import port_weights as _port
    return _port(src, dst, input_shape)
