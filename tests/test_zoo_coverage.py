"""Every classification model of torchvision 0.29 is in the zoo with a torchvision reference.

torchvision.models.list_models(module=torchvision.models): the 68 CNNs and the 12 transformers
(vit_*, swin_*, maxvit_t, written with `attention`: docs/attention.md). Each zoo entry with a
`torchvision:NAME` reference is proven equal to it (params, MACs, logits) by its family's
test_zoo_*.py. `nasty zoo` lists the new families' entries as matching their references.
"""
import json

import torchvision

import nasty
from nasty.cli import main

TRANSFORMERS = ("vit_", "swin_", "maxvit_t")
# torchvision models not in the zoo yet (none: the transformers landed); test_pending_is_still_missing keeps it honest
PENDING = frozenset()


def torchvision_models():
    return sorted(torchvision.models.list_models(module=torchvision.models))


def zoo_torchvision_refs():
    refs = (nasty.zoo.entry(n).ref or "" for n in nasty.zoo.names())
    return {r.partition(":")[2] for r in refs if r.startswith("torchvision:")}


def test_every_torchvision_classification_model_is_in_the_zoo():
    models = torchvision_models()
    assert len(models) == 80               # 68 CNNs, 5 ViTs, 6 Swins, MaxViT-T
    assert sum(n.startswith(TRANSFORMERS) for n in models) == 5 + 6 + 1
    missing = [n for n in models if n not in zoo_torchvision_refs() and n not in PENDING]
    assert not missing, f"torchvision classification models with no zoo entry: {missing}"


def test_pending_is_still_missing():
    """A pending name that the zoo has gained must leave PENDING (so the list cannot go stale)."""
    assert PENDING <= set(torchvision_models())
    landed = sorted(PENDING & zoo_torchvision_refs())
    assert not landed, f"{landed} are in the zoo now: remove them from PENDING in {__file__}"


def test_zoo_command_lists_the_new_families_as_matching(capsys):
    names = ["regnet_x_400mf", "regnet_y_128gf", "efficientnet_v2_l", "dpn92", "wide_resnet101_2", "resnext101_64x4d",
             "vit_b_32", "swin_v2_t", "maxvit_t"]
    assert main(["zoo", "--json", *names]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert sorted(rows) == sorted(names)
    for name, r in rows.items():
        assert r["matches_reference"] == f"yes ({nasty.zoo.entry(name).ref})", (name, r["matches_reference"])
    assert rows["regnet_y_128gf"]["params"] == 644_812_894


def test_readme_counts_are_the_zoo():
    """The README's zoo section states the zoo's size; it must stay true."""
    from pathlib import Path
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    names = nasty.zoo.names()
    families = {nasty.zoo.entry(n).family for n in names}
    libs = [(nasty.zoo.entry(n).ref or "-").partition(":")[0] for n in names]
    assert f"`nasty zoo` lists {len(names)} networks in {len(families)} families" in readme
    assert f"{libs.count('timm')} entries equal timm models" in readme
    assert f"{libs.count('-')} come from papers with no library reference" in readme
    assert f"| {len(names)} networks in " in readme
