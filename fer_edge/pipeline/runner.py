"""Run the pipeline's stages in order, skipping those whose inputs and outputs are unchanged.

The runner knows nothing about what a stage does: each stage is a :class:`Stage` with a function
that computes its input fingerprint and one that does the work and returns its outputs. This keeps
``fer-edge pipeline`` resumable like make: a stage whose inputs are unchanged is skipped, and a
killed run continues at the stage that was interrupted.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from fer_edge.runtime.errors import ConfigError

from .stamps import Stamp, hash_inputs, stamp_is_fresh, write_stamp

log = logging.getLogger("fer_edge.pipeline")


@dataclass
class StageOutput:
    outputs: List[Path] = field(default_factory=list)
    result: Dict[str, Any] = field(default_factory=dict)
    status: str = "done"


@dataclass
class Context:
    """What every stage sees: the config, the run folder, and the stamps of the stages done so far."""

    cfg: Any
    out: Path
    stamps: Dict[str, Stamp] = field(default_factory=dict)
    cache: Dict[str, Any] = field(default_factory=dict)

    def stage_dir(self, name: str) -> Path:
        d = self.out / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    def result(self, stage: str) -> Dict[str, Any]:
        st = self.stamps.get(stage)
        return st.result if st else {}


@dataclass
class Stage:
    name: str
    title: str
    fingerprint: Callable[[Context], Any]
    run: Callable[[Context, Path], StageOutput]
    needs: Sequence[str] = ()


def run_stages(stages: Sequence[Stage], ctx: Context, force: Sequence[str] = (), until: Optional[str] = None,
               progress: bool = True) -> Dict[str, Stamp]:
    names = [s.name for s in stages]
    for f in list(force) + ([until] if until else []):
        if f not in names and f != "all":
            raise ConfigError(f"stage {f!r} is not one of {names}")
    if until:
        stages = stages[: names.index(until) + 1]
    bar = None
    if progress:
        try:
            from tqdm import tqdm

            bar = tqdm(total=len(stages), desc="pipeline", unit="stage", position=0)
        except ImportError:  # pragma: no cover
            bar = None
    forced_from: Optional[int] = None
    for i, stage in enumerate(stages):
        if stage.name in force or "all" in force:
            forced_from = i if forced_from is None else forced_from
        if bar is not None:
            bar.set_postfix_str(stage.name)
        fp = {"stage": stage.name, "inputs": stage.fingerprint(ctx),
              "upstream": {n: ctx.stamps[n].inputs_hash + ":" + hash_inputs(ctx.stamps[n].outputs)
                           for n in stage.needs if n in ctx.stamps}}
        digest = hash_inputs(fp)
        stage_dir = ctx.stage_dir(stage.name)
        fresh = None if forced_from is not None else stamp_is_fresh(stage_dir, digest)
        if fresh is not None:
            log.info("%-9s up to date — skipped (%s)", stage.name, stage.title)
            ctx.stamps[stage.name] = fresh
        else:
            log.info("%-9s started: %s", stage.name, stage.title)
            t0 = time.perf_counter()
            out = stage.run(ctx, stage_dir)
            dt = time.perf_counter() - t0
            ctx.stamps[stage.name] = write_stamp(stage_dir, stage.name, digest, out.outputs, out.result, dt,
                                                 out.status)
            log.info("%-9s %s in %.1f s", stage.name, out.status, dt)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return ctx.stamps


def summary_table(stamps: Dict[str, Stamp]) -> str:
    rows = [("stage", "status", "seconds", "headline")]
    for name, st in stamps.items():
        rows.append((name, st.status, f"{st.seconds:.1f}", str(st.result.get("headline", ""))[:70]))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
