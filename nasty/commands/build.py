"""`nasty build NAME_OR_FILE`: compile a genotype, optionally port weights and export it."""
from __future__ import annotations

from pathlib import Path


def add_parser(sub):
    p = sub.add_parser("build", help="compile a genotype to torch; export to ONNX or torch.export (.pt2)",
                       description="Compile a zoo network or genotype file to a torch module and save or "
                                   "export it. With --ref-weights, a torchvision/timm state dict on disk "
                                   "(loaded with weights_only=True) is ported into the genotype network.")
    p.add_argument("target", metavar="NAME_OR_FILE")
    p.add_argument("--export", metavar="FILE", help="model.onnx (ONNX) or model.pt2 (torch.export)")
    p.add_argument("--save", metavar="FILE", help="save the state dict (.pt) of the compiled network")
    p.add_argument("--ref-weights", metavar="FILE",
                   help="a state dict of the zoo entry's reference model (e.g. torchvision's resnet50 weights)")
    p.add_argument("--classes", type=int, help="number of classes (default: the genotype's own)")
    p.add_argument("--input", metavar="CxHxW", help="input shape (default: the genotype's own)")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from .. import build, port_weights, resolve, zoo
    from ..errors import NastyError
    from .show import parse_shape
    g = resolve(args.target)
    shape = parse_shape(args.input) if args.input else tuple(g.input)
    model = build(g, num_classes=args.classes, input=shape).eval()
    n = sum(p.numel() for p in model.parameters())
    print(f"built {g.name}: {n:,} parameters, input {'x'.join(map(str, shape))}")
    if args.ref_weights:
        if args.target not in zoo.names() or not zoo.entry(args.target).ref:
            raise NastyError("--ref-weights needs a zoo name with a reference implementation (see `nasty zoo`)")
        try:
            state = torch.load(args.ref_weights, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, Exception) as e:   # weights_only refuses anything but tensors
            raise NastyError(f"cannot load {args.ref_weights!r} as a state dict: {e}".splitlines()[0]) from None
        ref = zoo.reference(args.target).eval()
        try:
            ref.load_state_dict(state)
        except RuntimeError as e:
            raise NastyError(f"{args.ref_weights!r} is not a state dict of {zoo.entry(args.target).ref}: "
                             f"{str(e).splitlines()[0]}") from None
        copied = port_weights(ref, model, shape)
        print(f"ported {copied} tensors from {zoo.entry(args.target).ref} weights {args.ref_weights}")
    if args.save:
        torch.save(model.state_dict(), args.save)
        print(f"saved state dict to {args.save}")
    if args.export:
        export(model, shape, args.export)
        print(f"exported to {args.export}")
    return 0


EXPORT_SUFFIXES = (".onnx", ".pt2")


def check_export_path(path: str) -> Path:
    """A one-line error unless `path` ends in .onnx or .pt2 (checked before any work)."""
    from ..errors import NastyError
    p = Path(path)
    if p.suffix not in EXPORT_SUFFIXES:
        raise NastyError(f"--export must end in .onnx or .pt2, got {path!r}")
    return p


def export(model, shape, path: str) -> None:
    """Export `model` (in eval mode, on the CPU) at input `shape` to ONNX (.onnx) or torch.export (.pt2)."""
    import torch

    from ..errors import NastyError
    p = check_export_path(path)
    x = torch.randn((1,) + tuple(shape))
    if p.suffix == ".onnx":
        try:
            torch.onnx.export(model, (x,), str(p), dynamo=True)
        except ImportError as e:
            raise NastyError(f"ONNX export needs the onnx and onnxscript packages: {e}") from None
    else:
        torch.export.save(torch.export.export(model, (x,)), str(p))
