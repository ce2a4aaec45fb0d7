"""The README's examples run as written (a README that lies is a bug)."""
import re
from pathlib import Path

import pytest

import nasty
from nasty.space import FixedTrial, RandomTrial, load_space

README = (Path(__file__).parent.parent / "README.md").read_text()


def _block(after: str, lang: str) -> str:
    start = README.index(after)
    m = re.compile(rf"```{lang}\n(.*?)```", re.S).search(README, start)
    return m.group(1)


def test_readme_genotype_is_the_zoo_resnet50():
    text = _block("## The genotype language", "")
    g = nasty.parse(text)
    assert nasty.cost(g).params == nasty.cost("resnet50").params == 25_557_032


def test_readme_custom_space_runs(tmp_path):
    import random
    f = tmp_path / "myspace.py"
    f.write_text(_block("## Writing a search space", "python"))
    sp = load_space(str(f))
    assert sp.name == "tiny_mbconv" and sp.width_decision == "width"
    rng = random.Random(0)
    for _ in range(5):
        t = RandomTrial(rng)
        values, g = sp.sample(t)
        c = nasty.cost(g)
        assert g.input == (3, 224, 224) and c.macs > 0
        proxy = sp.genotype(FixedTrial(values), proxy=True)
        assert proxy.input == (1, 28, 28)
        m = nasty.build(proxy)
        assert sum(p.numel() for p in m.parameters()) == nasty.cost(proxy).params
        # the conditional decision exists only when the expansion is above 1
        for i in range(3):
            assert (f"se{i}" in values) == (values[f"e{i}"] > 1)


@pytest.mark.slow
def test_readme_search_example_runs(tmp_path, monkeypatch):
    """The "Searching" section's Python example, as written, from an empty folder: it uses only
    what an installed nasty ships (a built-in space), no file of this checkout."""
    code = _block("## Searching: the run, your tools, your budget", "python")
    assert "tests/" not in code
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)          # the README's own code, not user input
    result = scope["result"]
    assert result.run == Path("runs/readme-api") and (tmp_path / "runs" / "readme-api" / "study.db").is_file()
    assert len(scope["study"].trials) == len([r for r in result.records if r.status.counted])
