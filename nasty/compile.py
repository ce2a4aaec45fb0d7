"""The one compiler: Genotype -> a plain torch.fx.GraphModule (an nn.Module).

The elaborated program is turned into standard torch modules and a straight-
line generated `forward` (torch.fx codegen), so the compiled net runs no more
Python per call than a hand-written module, and `torch.compile`,
`torch.export` and ONNX export see ordinary code.
"""
from __future__ import annotations

import torch
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
        if p not in node._modules:
            _add(node, p, nn.Module(), path)
        node = node._modules[p]
    if leaf in node._modules:
        raise ValueError(f"two layers compile to the same module path {path!r}")
    _add(node, leaf, module, path)


def _add(parent: nn.Module, name: str, module: nn.Module, path: str):
    """add_module, with a name torch itself uses refused in one line (genotype/paths.py gives every
    name nn.Module has when imported a path of its own; torch may add more at run time)."""
    if hasattr(parent, name) and name not in parent._modules:
        from .genotype.errors import GenotypeError
        raise GenotypeError(f"layer {path!r}: {name!r} is an attribute torch's nn.Module has here, so it cannot "
                            f"name a layer; rename that node or cell")
    parent.add_module(name, module)


def _class_name(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_")) or "Net"


def available_bytes() -> int | None:
    """Memory this machine can still give (Linux MemAvailable; None where unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_weights_fit(prog) -> None:
    """A network within every limit can still need terabytes of weights (two 1,000,000-channel
    convs): refuse it in one line before torch's allocator fails (not on the meta device)."""
    if torch.get_default_device().type == "meta":
        return
    from .cost import cost_of_program
    from .display import human
    from .genotype.errors import GenotypeError
    params = cost_of_program(prog).params
    have = available_bytes()
    if have is not None and 4 * params > have:
        raise GenotypeError(f"{prog.genotype.name}: its weights alone need {human(4 * params, 1024)}B "
                            f"({params:,} float32 parameters), more than the {human(have, 1024)}B of memory "
                            "available; use fewer channels (nasty show prices it without building it)")


def compile_genotype(g: Genotype, input=None, classes=None) -> fx.GraphModule:
    """Compile genotype `g` to a torch module (shapes checked first, at `input`, and its
    weights' memory against what this machine has)."""
    prog = elaborate(g, input, classes)
    _check_weights_fit(prog)
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
