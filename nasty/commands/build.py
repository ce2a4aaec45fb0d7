"""`nasty build NAME_OR_FILE`: compile a genotype, optionally port weights and export it
(nasty/deploy.py: any batch size, metadata beside the graph)."""
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


def _check_outputs(args):
    """Refuse, before any work, what the run could only fail at after compiling or porting."""
    from ..errors import NastyError
    if args.export:
        from ..deploy import check_export_path
        check_export_path(args.export)          # the suffix, and the onnx extra for .onnx
    for flag, value in (("--save", args.save), ("--export", args.export)):
        if value:
            folder = Path(value).parent
            if not folder.is_dir():
                raise NastyError(f"{flag} {value}: folder {str(folder)!r} does not exist; create it first "
                                 f"(mkdir -p {folder})")
    if args.ref_weights and not Path(args.ref_weights).is_file():
        raise NastyError(f"--ref-weights {args.ref_weights}: no such file")


def _load_state_dict(path):
    """A state dict from disk, loaded with weights_only=True (tensors only, never code)."""
    import torch

    from ..errors import NastyError
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:   # weights_only refuses anything but tensors and plain containers
        raise NastyError(f"cannot load {path!r} as a state dict: {e}".splitlines()[0]) from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        what = type(state).__name__ if not isinstance(state, dict) else "a dict that is not name -> tensor"
        raise NastyError(f"{path!r} holds {what}, not a state dict; save one with "
                         f"torch.save(model.state_dict(), path)")
    return state


def run(args) -> int:
    import torch

    from .. import build, port_weights, resolve, zoo
    from ..errors import NastyError
    from .show import parse_shape
    _check_outputs(args)
    g = resolve(args.target)
    from ..genotype.check import warn_headless
    warn_headless(g)
    shape = parse_shape(args.input) if args.input else tuple(g.input)
    if args.ref_weights and (args.target not in zoo.names() or not zoo.entry(args.target).ref):
        raise NastyError("--ref-weights needs a zoo name with a reference implementation (see `nasty zoo`)")
    model = build(g, num_classes=args.classes, input=shape).eval()
    n = sum(p.numel() for p in model.parameters())
    print(f"built {g.name}: {n:,} parameters, input {'x'.join(map(str, shape))}")
    if args.ref_weights:
        state = _load_state_dict(args.ref_weights)
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
        from .. import format as format_genotype
        from ..deploy import export
        print(export(model, shape, args.export,
                     {"name": g.name, "genotype": format_genotype(g),
                      "input_range": "what the genotype's first layer takes: no normalisation is inside"}))
    return 0
