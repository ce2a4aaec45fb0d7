"""Budgets: parsing under the FLOP convention, the analytic check, --fit, impossible budgets."""
from pathlib import Path

import pytest

import nasty
from nasty.search.budget import Budget, fit_width, parse_quantity, preflight, target_cost
from nasty.errors import BudgetError
from nasty.space import load_space, space

TINY = str(Path(__file__).parent / "spaces" / "tiny.py")


@pytest.mark.parametrize("text, value", [
    ("600MFLOPs", 600_000_000), ("600M", 600_000_000), ("600MMACs", 600_000_000),
    ("600MMAdds", 600_000_000), ("1.2GMACs", 1_200_000_000), ("564.5MFLOPs", 564_500_000),
    ("250KFLOPs", 250_000), ("250kMACs", 250_000), ("2G", 2_000_000_000), ("600 MFLOPs", 600_000_000),
    ("600mflops", 600_000_000), ("1e9", 1_000_000_000), ("12345", 12345), ("600MACs", 600),
    ("1.5gmadds", 1_500_000_000),
])
def test_budget_units_follow_the_flop_convention(text, value):
    # one multiply-add = one FLOP: FLOPs, MACs and MAdds are the same unit
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text, value", [("5M", 5_000_000), ("3.5Mparams", 3_500_000), ("800K", 800_000)])
def test_params_budget(text, value):
    assert parse_quantity(text, "params") == value


@pytest.mark.parametrize("text", ["600MFLOP", "-1M", "lots", "0", "0.1", "", "600MB", "M", "600MFLOPsx",
                                  "1.2.3G", "inf", "nan"])
def test_malformed_budgets_are_one_line_errors(text):
    with pytest.raises(BudgetError) as e:
        parse_quantity(text)
    msg = str(e.value)
    assert "\n" not in msg and "--budget" in msg
    assert "600MFLOPs" in msg                 # says what to write instead


def test_singular_flop_gets_a_hint():
    with pytest.raises(BudgetError, match="did you mean 600MFLOPs"):
        parse_quantity("600MFLOP")


def test_params_units_are_not_macs():
    with pytest.raises(BudgetError, match="--params"):
        parse_quantity("5MFLOPs", "params")


def test_check_against_the_analytic_cost():
    c = nasty.cost("resnet50")                # 4.09 GMACs, 25.6 M params
    assert Budget.parse("4.1G").check(c) is None
    assert "MACs" in Budget.parse("4G").check(c)
    assert "params" in Budget.parse(None, "25M").check(c)
    both = Budget.parse("4G", "25M").check(c)
    assert "MACs" in both and "params" in both
    assert Budget.parse("4.1G", "26M").check(c) is None
    assert Budget.parse("8.178G").excess(c) == pytest.approx(c.macs / 8.178e9)
    assert not Budget() and Budget.parse("1G")


def test_fit_scales_the_width_to_the_largest_option_within_budget():
    s = load_space("resnet")
    values = dict(s.canonical["resnet50"], width=128)          # ~16 GMACs: far over 6 G
    budget = Budget.parse("6GFLOPs")
    over = target_cost(s, values)
    assert budget.check(over) is not None
    fitted = fit_width(s, values, budget, over)
    assert fitted is not None and budget.check(fitted) is None
    w = fitted.values["width"]
    assert w < 128 and fitted.macs == nasty.cost(s.genotype(fitted.values)).macs
    # the next wider option is over budget: the largest that fits was chosen
    options = sorted(next(d for d in s.decisions(values) if d.name == "width").options())
    wider = options[options.index(w) + 1]
    assert budget.check(target_cost(s, {**values, "width": wider})) is not None
    # the other decisions are untouched
    assert {k: v for k, v in fitted.values.items() if k != "width"} == \
        {k: v for k, v in values.items() if k != "width"}


def test_fit_with_a_float_width_multiplier():
    @space(target=dict(input=(3, 32, 32), classes=10), proxy=dict(input=(1, 28, 28), classes=10),
           width_decision="mult")
    def wide(t, net):
        m = t.float("mult", 0.25, 4.0)
        c = max(1, int(64 * m))
        return nasty.parse(f"net w input {'x'.join(map(str, net.input))} classes {net.classes}\n"
                           f"stem conv3x3 c={c}\nhead gap flatten fc c=classes\n")

    budget = Budget.parse("1M")          # conv3x3 3->c at 32x32 costs 27648 * c MACs, fc 10 * c
    fitted = fit_width(wide, {"mult": 4.0}, budget)
    c = max(1, int(64 * fitted.values["mult"]))
    assert fitted.macs <= 1_000_000 < (c + 1) * (27648 + 10)
    assert fit_width(wide, {"mult": 1.0}, Budget.parse("100")) is None     # even the narrowest is over


def test_fit_returns_none_when_the_narrowest_is_over_budget():
    s = load_space("resnet")
    assert fit_width(s, s.canonical["resnet50"], Budget.parse("100MFLOPs")) is None


def test_impossible_budget_reports_the_smallest_cost_seen():
    s = load_space(TINY)
    with pytest.raises(BudgetError) as e:
        preflight(s, Budget.parse("1K"), fit=False, tries=40)
    msg = str(e.value)
    assert "\n" not in msg and "smallest seen" in msg and "1K" in msg
    # the smallest of the space: width 8, depth 1, kernel 3 at the target 3x64x64
    smallest = target_cost(s, {"width": 8, "depth": 1, "kernel": 3, "blowup": False})
    assert f"{smallest.macs:,}" in msg


def test_preflight_returns_a_sample_within_budget():
    s = load_space(TINY)
    c = preflight(s, Budget.parse("3M"), fit=False)
    assert c.macs <= 3_000_000
    c = preflight(s, Budget.parse("3M"), fit=True)
    assert c.macs <= 3_000_000
