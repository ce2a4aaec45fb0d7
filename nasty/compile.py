"""The one compiler: Genotype -> a plain torch.fx.GraphModule (an nn.Module).

The elaborated program is turned into standard torch modules and a straight-
line generated `forward` (torch.fx codegen), so the compiled net runs no more
Python per call than a hand-written module, and `torch.compile`,
`torch.export` and ONNX export see ordinary code.
"""
from __future__ import annotations

from torch import fx, nn

from .genotype import Genotype, elaborate
from .genotype.elaborate import INPUT, Step
from .genotype.ops import SPECS
# the modules torch lacks, importable from here as before
from .layers import (AvgPool2dSame, ChannelShuffle, ChannelSlice, Conv2dSame, DropPath,  # noqa: F401
                     GroupSoftmax, LayerNorm2d, LayerScale, MaxPool2dSame, ResizeLike, Scale)


def module_for(st: Step, inplace: bool = False):
    """The torch module computing one step (for a join: a function adding it to an fx graph)."""
    return SPECS[st.kind].torch(st, inplace)


def _attach(root: nn.Module, path: str, module: nn.Module):
    *parents, leaf = path.split(".")
    node = root
    for p in parents:
        if not hasattr(node, p) or p not in node._modules:
            node.add_module(p, nn.Module())
        node = node._modules[p]
    if leaf in node._modules:
        raise ValueError(f"two layers compile to the same module path {path!r}")
    node.add_module(leaf, module)


def _class_name(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_")) or "Net"


def compile_genotype(g: Genotype, input=None, classes=None) -> fx.GraphModule:
    """Compile genotype `g` to a torch module (shapes checked first, at `input`)."""
    prog = elaborate(g, input, classes)
    readers: dict[int, int] = {}
    for st in prog.steps:
        for h in st.inputs:
            readers[h] = readers.get(h, 0) + 1
    readers[prog.output] = readers.get(prog.output, 0) + 1
    root = nn.Module()
    graph = fx.Graph()
    values = {INPUT: graph.placeholder("x")}
    for i, st in enumerate(prog.steps):
        args = [values[h] for h in st.inputs]
        spec = SPECS[st.kind]
        # An activation may overwrite its input, as torchvision's ReLU(inplace=True) does, and a sum
        # its first operand (`out += shortcut`), when that input is read by nothing else and its
        # producer's backward does not need it: saves an allocation.
        first = st.inputs[0]
        overwrite = (first != INPUT and readers.get(first) == 1 and st.inputs.count(first) == 1
                     and SPECS[prog.steps[first].kind].overwritable)
        target = spec.torch(st, overwrite and (spec.inplace or spec.join is not None))
        if isinstance(target, nn.Module):
            _attach(root, st.name, target)
            v = graph.call_module(st.name, tuple(args))
        else:
            v = target(graph, args)
        values[i] = v
    graph.output(values[prog.output])
    gm = fx.GraphModule(root, graph, class_name=_class_name(g.name))
    gm.genotype = g
    gm.input_shape = tuple(prog.input)
    return gm
