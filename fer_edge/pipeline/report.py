"""Render the pipeline report as Markdown and as one self-contained HTML file (images embedded).

A report is a list of :class:`Section` (a heading, paragraphs, tables, figures). Building the content
is the job of :mod:`fer_edge.pipeline.content`; this module only renders, so the same sections give
``report.md`` (figures as relative links) and ``report.html`` (figures as base64 data URIs, so the file
can be mailed or attached to a CI run and still show everything).
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence

from fer_edge.runtime.atomic import atomic_write

Cell = object


@dataclass
class Table:
    header: Sequence[str]
    rows: List[Sequence[Cell]]
    caption: str = ""


@dataclass
class Figure:
    path: Path
    caption: str


@dataclass
class Section:
    title: str
    paragraphs: List[str] = field(default_factory=list)
    tables: List[Table] = field(default_factory=list)
    figures: List[Figure] = field(default_factory=list)


def fmt(v: Cell) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return str(v)


def to_markdown(title: str, sections: Sequence[Section], base: Path) -> str:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        for p in s.paragraphs:
            out += [p, ""]
        for t in s.tables:
            if t.caption:
                out += [f"*{t.caption}*", ""]
            out.append("| " + " | ".join(t.header) + " |")
            out.append("|" + "---|" * len(t.header))
            out += ["| " + " | ".join(fmt(c) for c in r) + " |" for r in t.rows]
            out.append("")
        for f in s.figures:
            if Path(f.path).is_file():
                rel = Path(f.path).resolve().relative_to(base.resolve()) if _inside(f.path, base) else f.path
                out += [f"![{f.caption}]({rel})", f"*{f.caption}*", ""]
    return "\n".join(out)


def _inside(p: Path, base: Path) -> bool:
    try:
        Path(p).resolve().relative_to(base.resolve())
        return True
    except ValueError:
        return False


def _img(path: Path) -> Optional[str]:
    p = Path(path)
    if not p.is_file():
        return None
    mime = "image/png" if p.suffix.lower() == ".png" else "image/jpeg"
    return f"data:{mime};base64," + base64.b64encode(p.read_bytes()).decode()


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;color:#222;
line-height:1.45;padding:0 1em}h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.8em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}figure{display:inline-block;margin:.5em;
vertical-align:top;max-width:100%}figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.9em;color:#555}
caption{caption-side:top;text-align:left;font-style:italic;color:#555}
"""


def to_html(title: str, sections: Sequence[Section]) -> str:
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>"]
    toc = "".join(f"<li><a href='#s{i}'>{esc(s.title)}</a></li>" for i, s in enumerate(sections))
    parts.append(f"<ul>{toc}</ul>")
    for i, s in enumerate(sections):
        parts.append(f"<h2 id='s{i}'>{esc(s.title)}</h2>")
        parts += [f"<p>{esc(p)}</p>" for p in s.paragraphs]
        for t in s.tables:
            parts.append("<table>" + (f"<caption>{esc(t.caption)}</caption>" if t.caption else ""))
            parts.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in t.header) + "</tr>")
            for r in t.rows:
                parts.append("<tr>" + "".join(f"<td>{esc(fmt(c))}</td>" for c in r) + "</tr>")
            parts.append("</table>")
        for f in s.figures:
            uri = _img(f.path)
            if uri:
                parts.append(f"<figure><img src='{uri}' alt='{esc(f.caption)}'>"
                             f"<figcaption>{esc(f.caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(out_dir: Path, title: str, sections: Sequence[Section]) -> List[Path]:
    md = atomic_write(out_dir / "report.md", to_markdown(title, sections, out_dir))
    ht = atomic_write(out_dir / "report.html", to_html(title, sections))
    return [md, ht]
