"""``benchmarks/reliability_figures.py`` counts the README's reliability table, or fails: never a silent 0."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rf():
    spec = importlib.util.spec_from_file_location("reliability_figures", REPO / "benchmarks" / "reliability_figures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


OLD = "  - during generate phase (0.23 seconds):\n    - 40 passing examples, 0 failing examples, 5 invalid examples\n"
NEW = ("  - during generate phase (0.23 seconds):\n"
       "    - 40 passing test cases, 1 failing test case, 5 invalid test cases\n"
       "  - during generate phase (0.1 seconds):\n    - 20 passing test cases, 0 failing test cases, 0 invalid\n")


def test_both_wordings_of_hypothesis_statistics_are_counted(rf):
    assert rf.count_examples(OLD) == (40, 0)
    assert rf.count_examples(NEW) == (60, 1)  # hypothesis >= 6.13x says "test cases"
    assert rf.count_examples("3 passed in 1.2s") == (None, None)  # no statistics: unknown, not 0


def _fig(rf, stdout):
    cases = [{"file": f"tests.{Path(f).stem}", "name": "test_x", "outcome": "passed"} for f in rf.FILES.values()]
    res = {"cases": cases, "seconds": 1.0}
    res["examples"], res["failing_examples"] = rf.count_examples(stdout)
    fig = rf.figures(res, None)
    assert fig["fuzz_properties"]["total"] == 1
    return fig


def test_a_figure_that_cannot_be_counted_fails_the_script(rf):
    rf.check_countable(_fig(rf, NEW))  # counted: fine
    with pytest.raises(rf.UncountedFigure, match="inputs fuzzed"):
        rf.check_countable(_fig(rf, "19 passed in 4.0s"))


def test_the_readme_table_is_written_between_its_markers(rf, tmp_path):
    fig = _fig(rf, NEW)
    doc = tmp_path / "README.md"
    doc.write_text(f"# x\n\nintro\n{rf.BEGIN}\nold table\n{rf.END}\nafter\n")
    rf.write_between_markers(str(doc), rf.readme_table(fig))
    text = doc.read_text()
    assert "old table" not in text and "| 60 inputs, 1 failing |" in text and text.endswith("after\n")
    assert rf.BEGIN in (REPO / "README.md").read_text() and rf.END in (REPO / "docs" / "reliability.md").read_text()
