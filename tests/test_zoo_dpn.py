"""DPN-92 (dpn.nasty): Dual Path Networks as timm builds them. The zoo entry equals timm's dpn92:
params and MACs at 224x224 (meta device), BN eps 1e-3, and logits (norm statistics randomised)
at 96x96, which keeps 224's stride pattern (stride-2 layers see even sizes; the last stage an
odd one: 24, 12, 6, 3 as 56, 28, 14, 7)."""
import nasty
from zoo_check import check_against_reference, check_logits
from zoo_notes import check_round_trips
from zoo_settings import check_settings


def test_counts_and_settings_equal_timm():
    c, _ = check_against_reference("dpn92", logits=False)
    assert (c.params, c.macs) == (37_668_392, 6_501_684_224)
    assert check_settings("dpn92") == [(1e-3, 0.1)]


def test_logits_equal_timm():
    assert check_logits("dpn92", input=(3, 96, 96)) <= 1e-4


def test_dual_paths_grow_as_the_paper_says():
    """A stage's first block projects its input to 4*base + 2*inc maps (residual | dense); every
    block adds its first 4*base output maps to the residual path and appends inc maps to the
    dense one. So a stage of n blocks ends with 4*base + (n + 2) * inc maps: 256 + 5 * 16,
    512 + 6 * 32, 1024 + 22 * 24, 2048 + 5 * 128 = 2688, the width of DPN-92's head."""
    prog = nasty.genotype.elaborate(nasty.zoo.get("dpn92"))
    last = {}
    for st in prog.steps:
        if st.name.startswith("stage") and st.kind == "cat":
            last[st.name.split(".")[0]] = st.out[0]
    assert last == {"stage1": 256 + 5 * 16, "stage2": 512 + 6 * 32, "stage3": 1024 + 22 * 24, "stage4": 2048 + 5 * 128}
    check_round_trips("dpn92")
