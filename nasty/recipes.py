"""The default values of `nasty train`'s final-training recipes, as plain data.

They live apart from the trainer (nasty/train.py, which needs torch) because `nasty train
--help` prints them, and building the command line must not import torch: `nasty --version`
and `nasty --help` answer in a tenth of a second instead of seconds.
"""

# The final-training recipes of `nasty train` (papers: NASNet, Zoph et al. 2018, sec. A.1;
# DARTS, Liu et al. 2019, sec. A.2 / cnn/train.py). Sizes in pixels are given for 32x32 images
# and scaled to the data's side (crop padding 4, cutout 16 on CIFAR).
RECIPES = {
    # For a CPU run of a few epochs: drop-path, cutout and the auxiliary head regularize
    # 600-epoch trainings and only slow a 5-epoch one down, so they are off; a larger
    # rate and batch suit so few steps, and light label smoothing helps short runs.
    "short": {"epochs": 5, "batch_size": 128, "lr": 0.05, "momentum": 0.9, "nesterov": False,
              "weight_decay": 3e-4, "label_smoothing": 0.1, "schedule": "cosine", "crop": 4 / 32, "cutout": 0.0,
              "drop_path": 0.0, "aux_weight": 0.0, "grad_clip": 5.0, "precise_bn": 2048},
    # The papers' CIFAR recipe (DARTS's values; NASNet's differ in detail), for a GPU.
    "paper": {"epochs": 600, "batch_size": 96, "lr": 0.025, "momentum": 0.9, "nesterov": False,
              "weight_decay": 3e-4, "label_smoothing": 0.0, "schedule": "cosine", "crop": 4 / 32, "cutout": 16 / 32,
              "drop_path": 0.2, "aux_weight": 0.4, "grad_clip": 5.0, "precise_bn": 0},
}
# Datasets a horizontal flip does not fit (a mirrored digit is another symbol or none).
NO_FLIP = ("mnist",)
