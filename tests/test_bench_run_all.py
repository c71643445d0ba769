"""``benchmarks/run_all.py`` on a fake checkout: dry run, --only, assembly with commands, failures reported."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from fer_edge.evaluation.bench_report import DOC_BEGIN, DOC_END, update_doc

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "run_all.py"


@pytest.fixture()
def run_all():
    spec = importlib.util.spec_from_file_location("run_all", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["run_all"] = mod          # dataclasses look their module up while the class is built
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("run_all", None)


@pytest.fixture()
def checkout(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "docs" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "domain_gap.py").write_text(
        "from pathlib import Path\n"
        "Path('docs/results/synthetic-domain-gap.md')"
        ".write_text('# Domain gap\\n\\nsource-only drop: 21.0 points\\n')\n")
    (tmp_path / "benchmarks" / "broken.py").write_text("raise SystemExit(3)\n")
    (tmp_path / "docs" / "results" / "backend-speed.md").write_text(
        "# Speed\n\nINT8 is 4.0x eager (`fer-edge bench ...`); see [the data](synthetic-domain-gap.md), "
        "[eval](../eval.md#fer-edge-bench) and [the web](https://example.org/x.md) ![faces](../img/faces.png)\n")
    return tmp_path


def test_dry_run_writes_nothing(run_all, checkout, capsys):
    assert run_all.main(["--root", str(checkout), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "domain_gap" in out and "broken" in out and "no model at runs/default/export/model.onnx" in out
    assert not (checkout / "BENCHMARKS.md").exists()
    assert not (checkout / "docs" / "results" / "synthetic-domain-gap.md").exists()


def test_only_runs_the_named_step_and_assembles_everything(run_all, checkout):
    assert run_all.main(["--root", str(checkout), "--only", "domain_gap"]) == 0
    text = (checkout / "BENCHMARKS.md").read_text()
    assert "source-only drop: 21.0 points" in text and "INT8 is 4.0x eager" in text
    assert "`python benchmarks/domain_gap.py`" in text   # every section names its command
    assert "`fer-edge bench --model runs/default/export/model.onnx" in text
    assert text.index("source-only drop") < text.index("INT8 is 4.0x")   # preferred order: data before eval
    assert "not run (kept the existing write-up)" in text
    # links in a page are relative to docs/results/; in BENCHMARKS.md (at the root) they point into docs/
    assert "[the data](docs/results/synthetic-domain-gap.md)" in text and "[eval](docs/eval.md#fer-edge-bench)" in text
    assert "[the web](https://example.org/x.md)" in text and "![faces](docs/img/faces.png)" in text


def test_a_failing_step_is_reported_and_sets_the_exit_code(run_all, checkout):
    assert run_all.main(["--root", str(checkout), "--only", "broken,domain_gap"]) == 1
    text = (checkout / "BENCHMARKS.md").read_text()
    assert "failed (exit 3" in text and (checkout / "runs" / "benchmarks" / "broken.log").is_file()
    assert run_all.main(["--root", str(checkout), "--only", "nope"]) == 2


def test_update_doc_keeps_the_prose_around_the_table(tmp_path):
    doc = tmp_path / "backend-speed.md"
    doc.write_text("# Speed\n\nWhy INT8 misses the peak goal: depthwise convs.\n")
    update_doc(doc, "| table v1 |")
    update_doc(doc, "| table v2 |")
    text = doc.read_text()
    assert "depthwise convs" in text and "| table v2 |" in text and "v1" not in text
    assert text.count(DOC_BEGIN) == 1 and text.count(DOC_END) == 1
