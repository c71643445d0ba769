"""The README "Reliability" table, counted from the hardening tests (and the runtime soak), not typed in.

    OMP_NUM_THREADS=1 python benchmarks/reliability_figures.py [--slow] [--soak-json runs/soak.json]
        [--soak-frames 10000] [--json out.json]

Runs ``tests/test_hardening_*.py`` once with pytest (JUnit XML + hypothesis statistics) and counts:
inputs fuzzed (hypothesis examples actually run), corrupt artefacts refused (n/n refusal cases),
untrusted-text cases, crash-resume cases (``--slow`` adds the pipeline kill), camera-fault cases,
and — from ``benchmarks/soak.py`` (run here with ``--soak-frames``, or read from ``--soak-json``) —
soak frames, faults survived and RSS growth. Prints a markdown table and, with ``--json``, writes
the numbers; ``--doc docs/reliability.md`` and ``--readme README.md`` write the tables between their
``<!-- reliability:begin -->`` / ``<!-- reliability:end -->`` markers, so no figure is typed in.

Exit code 1 when any counted test failed, and when a figure cannot be counted: hypothesis renamed
"examples" to "test cases" in its statistics, and a parser that silently found nothing printed
"Inputs fuzzed: 0" for 740 inputs. A figure that cannot be counted is an error, never a 0.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
FILES = {"fuzz": "tests/test_hardening_fuzz.py", "artefacts": "tests/test_hardening_artefacts.py",
         "untrusted": "tests/test_hardening_untrusted.py", "crash": "tests/test_hardening_crash.py",
         "camera": "tests/test_hardening_camera.py", "imports": "tests/test_hardening_imports.py"}
#: Tests in the artefact file that show an intact artefact loads (controls, not refusals).
CONTROL = re.compile(r"intact|_passes|roundtrip")


def run_pytest(slow: bool, workdir: Path) -> Dict[str, Any]:
    """Run the hardening files once; per-test outcomes from JUnit XML, example counts from hypothesis."""
    xml = workdir / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--hypothesis-show-statistics",
           f"--junitxml={xml}", *FILES.values()]
    if slow:
        cmd += ["-m", "slow or not slow"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    cases: List[Dict[str, str]] = []
    for tc in ET.parse(xml).getroot().iter("testcase"):
        outcome = "passed"
        for child in tc:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "xfailed" if "xfail" in (child.get("type", "") + child.get("message", "")) else "skipped"
        cases.append({"file": tc.get("classname", ""), "name": tc.get("name", ""), "outcome": outcome})
    examples, failing = count_examples(proc.stdout)
    return {"cases": cases, "examples": examples, "failing_examples": failing, "seconds": seconds,
            "returncode": proc.returncode, "tail": proc.stdout[-2000:]}


#: hypothesis's statistics line, "- 40 passing examples, 0 failing examples, 5 invalid examples" — called
#: "test cases" since hypothesis 6.13x ("inputs" accepted too, in case it is renamed again).
_UNIT = r"(?:examples?|test cases?|inputs?)"
PASSING = re.compile(rf"(\d+) passing {_UNIT}")
FAILING = re.compile(rf"(\d+) failing {_UNIT}")


def count_examples(stdout: str):
    """``(passing, failing)`` hypothesis inputs from ``--hypothesis-show-statistics`` output; ``(None, None)``
    when pytest printed no statistics line this parser understands (never a silent 0)."""
    passing = [int(n) for n in PASSING.findall(stdout)]
    if not passing:
        return None, None
    return sum(passing), sum(int(n) for n in FAILING.findall(stdout))


class UncountedFigure(RuntimeError):
    """A figure of the table could not be counted from the run (the script then fails, exit 1)."""


def check_countable(fig: Dict[str, Any]) -> None:
    """Refuse to print a table whose figures were not counted (``None``) or are empty where tests ran."""
    problems = []
    if fig.get("inputs_fuzzed") is None:
        problems.append("inputs fuzzed: pytest printed no hypothesis statistics this script can read (was "
                        "`--hypothesis-show-statistics` ignored, or did hypothesis change its wording?)")
    elif fig["inputs_fuzzed"] == 0 and fig["fuzz_properties"]["total"]:
        problems.append("inputs fuzzed: 0 although the fuzz tests ran")
    for key in ("fuzz_properties", "corrupt_artefacts_refused", "untrusted_text", "crash_resume", "camera_faults"):
        if not fig[key]["total"]:
            problems.append(f"{key}: no test of this kind ran")
    if problems:
        raise UncountedFigure("; ".join(problems))


def _count(cases, key: str, select=lambda c: True) -> Dict[str, int]:
    mine = [c for c in cases if c["file"].endswith(Path(FILES[key]).stem) and select(c)]
    return {"passed": sum(c["outcome"] == "passed" for c in mine),
            "total": sum(c["outcome"] in ("passed", "failed") for c in mine),
            "xfailed": sum(c["outcome"] == "xfailed" for c in mine)}


def soak(frames: Optional[int], soak_json: Optional[str], workdir: Path) -> Optional[Dict[str, Any]]:
    if soak_json:
        return json.loads(Path(soak_json).read_text(encoding="utf-8"))
    if not frames:
        return None
    out = workdir / "soak.json"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "soak.py"), "--frames", str(frames), "--json",
                    str(out), "--work", str(workdir / "soak")], cwd=REPO, check=False)
    return json.loads(out.read_text(encoding="utf-8")) if out.is_file() else None


def figures(res: Dict[str, Any], soak_res: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    cases = res["cases"]
    fig: Dict[str, Any] = {
        "inputs_fuzzed": res["examples"], "fuzz_failing_examples": res["failing_examples"],
        "fuzz_properties": _count(cases, "fuzz"),
        "corrupt_artefacts_refused": _count(cases, "artefacts", lambda c: not CONTROL.search(c["name"])),
        "intact_artefact_controls": _count(cases, "artefacts", lambda c: bool(CONTROL.search(c["name"]))),
        "untrusted_text": _count(cases, "untrusted"),
        "crash_resume": _count(cases, "crash"),
        "camera_faults": _count(cases, "camera"),
        "suite_seconds": round(res["seconds"], 1),
    }
    if soak_res:  # benchmarks/soak.py's JSON
        injected = soak_res.get("faults_injected") or {}
        fig["soak"] = {"frames": soak_res.get("frames_processed"), "frames_requested": soak_res.get("frames_requested"),
                       "crashes": soak_res.get("crashes"), "fault_total": int(sum(injected.values())),
                       "faults_injected": injected, "faults_counted": soak_res.get("faults_counted"),
                       "reconnects": (soak_res.get("events") or {}).get("reconnects"),
                       "rss_mb": soak_res.get("rss_mb"), "rss_growth_mb": soak_res.get("rss_growth_mb"),
                       "fps": soak_res.get("fps")}
    return fig


def markdown(fig: Dict[str, Any]) -> str:
    def nn(d):
        extra = f" (+{d['xfailed']} known gap, xfail)" if d.get("xfailed") else ""
        return f"{d['passed']}/{d['total']}{extra}"

    rows = [("Inputs fuzzed (hypothesis examples: config, 5 dataset loaders, image bytes, footage truth, "
             "manifests, engine sidecars, stage stamps, calibration cache, model contract, JSONL writer, "
             "crop names, camera frames)",
             f"{fig['inputs_fuzzed']} ({nn(fig['fuzz_properties'])} fuzz-file tests pass, "
             f"{fig['fuzz_failing_examples']} failing examples)"),
            ("Corrupt / forged / foreign artefacts refused with an actionable message",
             f"{nn(fig['corrupt_artefacts_refused'])} cases "
             f"(intact controls load: {nn(fig['intact_artefact_controls'])})"),
            ("Untrusted text (YAML tags, escaping dataset paths, output names)", f"{nn(fig['untrusted_text'])} cases"),
            ("Crash-resume (kill -9, rerun, same numbers, nothing half-written)", f"{nn(fig['crash_resume'])} cases"),
            ("Camera faults (size changes, sources that never open)", f"{nn(fig['camera_faults'])} cases")]
    s = fig.get("soak")
    if s:
        rows.append(("Soak (benchmarks/soak.py): frames run / faults injected and survived / crashes",
                     f"{s.get('frames')} of {s.get('frames_requested')} / {s.get('fault_total')} "
                     f"({len(s.get('faults_injected') or {})} kinds, {s.get('reconnects')} reconnects) / "
                     f"{s.get('crashes')}"))
        rss = s.get("rss_mb") or {}
        rows.append(("Soak: RSS growth after a 1,000-frame warm-up",
                     f"{s.get('rss_growth_mb')} MB ({rss.get('warm')} → {rss.get('end')} MB)"))
    lines = ["| What | Measured |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    lines.append(f"\nHardening suite wall time: {fig['suite_seconds']} s.")
    return "\n".join(lines)


BEGIN, END = "<!-- reliability:begin -->", "<!-- reliability:end -->"


def readme_table(fig: Dict[str, Any]) -> str:
    """The README's short table (the same figures as :func:`markdown`)."""
    def nn(d):
        return f"{d['passed']}/{d['total']}"

    rows = [("inputs fuzzed (hypothesis: config, 5 dataset loaders, image bytes, footage truth, manifests, engine "
             "sidecars, stage stamps, calibration cache, model contract, JSONL writer, crop names, camera frames)",
             f"{fig['inputs_fuzzed']} inputs, {fig['fuzz_failing_examples']} failing"),
            ("corrupt / forged / foreign artefacts refused with an actionable message",
             nn(fig["corrupt_artefacts_refused"])),
            ("untrusted text (YAML tags, dataset paths escaping their root, output names)", nn(fig["untrusted_text"])),
            ("crash-resume (`kill -9`, rerun → same numbers, nothing half-written)", nn(fig["crash_resume"])),
            ("camera faults (frames changing size, sources that never open or never send)", nn(fig["camera_faults"]))]
    s = fig.get("soak")
    if s:
        rows.append((f"soak: {s.get('frames')} frames with {s.get('fault_total')} injected faults of "
                     f"{len(s.get('faults_injected') or {})} kinds",
                     f"{s.get('crashes')} crashes, RSS growth {s.get('rss_growth_mb')} MB"))
    return "\n".join(["| what | measured |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows])


def write_between_markers(path: str, table: str) -> None:
    """Replace the text between the reliability markers of ``path`` (which must have them) with ``table``."""
    from fer_edge.runtime.atomic import atomic_write

    text = Path(path).read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise UncountedFigure(f"{path}: no {BEGIN} … {END} markers to write the table between")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    atomic_write(path, f"{head}{BEGIN}\n{table}\n{END}{tail}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slow", action="store_true", help="include the slow pipeline kill -9 case")
    ap.add_argument("--soak-frames", type=int, default=0, help="run benchmarks/soak.py for this many frames")
    ap.add_argument("--soak-json", default=None, help="read an earlier soak.py --json result instead")
    ap.add_argument("--json", default=None, help="write the figures here")
    ap.add_argument("--doc", default=None, help="write the full table into this file between the markers "
                                                "(docs/reliability.md)")
    ap.add_argument("--readme", default=None, help="write the short table into this file between the markers "
                                                   "(README.md)")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="fer-edge-reliability-") as tmp:
        res = run_pytest(args.slow, Path(tmp))
        fig = figures(res, soak(args.soak_frames, args.soak_json, Path(tmp)))
    try:
        check_countable(fig)
    except UncountedFigure as exc:
        print(f"reliability_figures: cannot count the table: {exc}", file=sys.stderr)
        return 1
    print(markdown(fig))
    sys.path.insert(0, str(REPO))
    from fer_edge.runtime.atomic import atomic_write

    if args.json:
        atomic_write(args.json, json.dumps(fig, indent=2) + "\n")
    failed = [c for c in res["cases"] if c["outcome"] == "failed"]
    if not failed and res["returncode"] == 0:
        if args.doc:
            write_between_markers(args.doc, markdown(fig))
        if args.readme:
            write_between_markers(args.readme, readme_table(fig))
    for c in failed:
        print(f"FAILED {c['file']}::{c['name']}", file=sys.stderr)
    return 1 if failed or res["returncode"] not in (0,) else 0


if __name__ == "__main__":
    raise SystemExit(main())
