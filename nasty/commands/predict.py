"""`nasty predict RUN_OR_CHECKPOINT IMAGE...`: classify image files with a trained final network
(nasty/deploy.py), reading each image as the training data was read."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("predict", help="classify image files with a run's trained final network (or a checkpoint)",
                       description="Classify image files with the final network `nasty train` trained: give the "
                                   "run folder (its final/checkpoint.pt) or a checkpoint file. Each image is read "
                                   "as the training data was: decoded by Pillow, turned upright, grey or RGB as "
                                   "the network takes, resized to its input size; the network applies the "
                                   "training data's normalisation itself. Prints the most probable class and its "
                                   "probability per image (--top K: the K most probable).")
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT", help="runs/NAME (after `nasty train runs/NAME`) or a "
                                                               "checkpoint file written by nasty train")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="PNG, JPEG, BMP, GIF, WebP, TIFF or PPM files")
    p.add_argument("--top", type=int, default=1, metavar="K", help="print the K most probable classes (default 1)")
    p.add_argument("--json", action="store_true", help="one JSON object: the predictions per image")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    import sys

    from ..deploy import load_model, read_images
    from ..errors import NastyError
    from ..train import resolve_device
    if args.top < 1:
        raise NastyError(f"--top must be at least 1, got {args.top}")
    model = load_model(args.source, device=str(resolve_device(args.device)))
    epoch, epochs = model.info.get("epoch"), model.info.get("epochs")
    if epoch is not None and epochs and epoch < epochs:
        print(f"note: {model.info['checkpoint']} holds epoch {epoch} of {epochs} (its training was stopped); "
              "run its `nasty train` command again to finish it", file=sys.stderr)
    results = []
    chunk = 256
    for start in range(0, len(args.images), chunk):
        paths = args.images[start:start + chunk]
        for path, top in zip(paths, model.predict(read_images(paths, model.input_shape), top=args.top)):
            results.append((path, top))
    if args.json:
        print(json.dumps({"model": model.info.get("checkpoint"), "classes": list(model.classes),
                          "predictions": [{"image": path, "top": [{"class": c, "probability": p} for c, p in top]}
                                          for path, top in results]}, indent=1))
        return 0
    width = max(len(path) for path, _ in results)
    for path, top in results:
        print(f"{path:<{width}}  " + ", ".join(f"{c} {p:.3f}" for c, p in top))
    return 0
