"""A self-contained HTML report of a graded class (``genai-hw grade``): what the class got, what it got wrong.

One file, no script and nothing fetched: inline CSS and SVG. It holds the
distribution of total scores and of each question's score (bar charts), the
most frequent failures of each package question grouped by kind of hidden
case (edge cases, random inputs), the submissions that could not be graded,
where grading time went (each phase's median and slowest), and a row per
submission linking its results.json.
"""

from __future__ import annotations

import html
import json
import os
import re
import statistics
from collections import Counter
from pathlib import Path

from ..grading.gradescope import natural_key
from .grade import columns

KIND_TITLES = {"Edge cases": "edge cases", "Random inputs": "random inputs", "Edge cases and random inputs": "mixed",
               "Not run": "not run"}


def failures(results: dict) -> list[tuple[str, str, str, str]]:
    """``(question, kind, case, problem)`` for every failed hidden case in a results.json record, read from
    the package questions' reports (``harness.question_report``)."""
    found = []
    for test in results.get("tests", []):
        name = re.sub(r" \(details\)$", "", str(test.get("name", "")))
        kind = "other"
        for line in str(test.get("output", "")).splitlines():
            heading = re.match(r"^(Edge cases and random inputs|Edge cases|Random inputs|Not run)\b.*: \d+ of \d+ "
                               r"passed$", line)
            if heading:
                kind = KIND_TITLES[heading.group(1)]
            elif line.startswith("  FAILED: "):
                message = line.removeprefix("  FAILED: ")
                if ": on input " in message:
                    case, _, rest = message.partition(": on input ")
                    problem = "on input " + rest
                else:
                    case, _, problem = message.partition(": ")
                found.append((name, kind, case.strip(), problem.strip()))
    return found


def _bars(counts: list[tuple[str, int]], width: int = 360, height: int = 120, title: str = "") -> str:
    """An SVG bar chart of ``(label, count)``."""
    if not counts:
        return ""
    top = max(c for _, c in counts) or 1
    step = width / len(counts)
    bars = []
    for i, (label, count) in enumerate(counts):
        h = (height - 30) * count / top
        x = i * step + 2
        bars.append(f'<rect class="bar" x="{x:.1f}" y="{height - 18 - h:.1f}" width="{max(step - 4, 1):.1f}" '
                    f'height="{h:.1f}"><title>{html.escape(label)}: {count}</title></rect>'
                    f'<text x="{x + step / 2 - 2:.1f}" y="{height - 4}" text-anchor="middle">{html.escape(label)}'
                    f'</text><text x="{x + step / 2 - 2:.1f}" y="{height - 22 - h:.1f}" text-anchor="middle">'
                    f'{count}</text>')
    label = f' aria-label="{html.escape(title)}"' if title else ""
    return (f'<svg class="chart" role="img"{label} width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">{"".join(bars)}</svg>')


def _fmt(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else html.escape(str(value))


ISOLATION_TITLES = {"users": "users of its own (root)", "namespaces": "namespaces of its own",
                    "none": "NOT isolated"}


def _isolation_cell(mode: str) -> str:
    text = html.escape(ISOLATION_TITLES.get(mode, mode or "unknown"))
    return f'<span class="unsafe">{text}</span>' if mode == "none" else text


def _isolation_summary(rows: list[dict]) -> list[str]:
    """How student code was isolated, for the whole class; a warning when some of it was not."""
    counts = Counter(row.get("isolation") or "unknown" for row in rows)
    parts = ['<p class="isolation">Student code ran in ' + ", ".join(
        f"{ISOLATION_TITLES.get(mode, mode)}: {count}" for mode, count in sorted(counts.items())) + ".</p>"]
    if counts.get("none"):
        parts.append(f'<p class="unsafe">{counts["none"]} submission(s) were graded with student code NOT '
                     "isolated (--unsafe-no-isolation): it ran as the grader's user and could read its files.</p>")
    return parts


PHASES = {"package": "package questions (the runner and the reference)",
          "notebook": "the notebook (its kernel, in grading mode)"}
"""The phases whose wall seconds each grading records (results.json's ``extra_data.genai_hw.seconds``)."""


def _timing(rows: list[dict], records: list[tuple[dict, dict]]) -> list[str]:
    """Where grading time went on this class: per phase, and for the whole ``otter run`` (Otter's own start
    and finish included), the median and the slowest submission."""
    measured: dict[str, list[tuple[float, str]]] = {"whole": []}
    for row in rows:
        if isinstance(row.get("seconds"), (int, float)):
            measured["whole"].append((float(row["seconds"]), row["submission"]))
    for row, results in records:
        seconds = ((results.get("extra_data") or {}).get("genai_hw") or {}).get("seconds") or {}
        for phase in PHASES:
            if isinstance(seconds.get(phase), (int, float)):
                measured.setdefault(phase, []).append((float(seconds[phase]), row["submission"]))
    names = {"whole": "the whole grading (otter run)", **PHASES}
    lines = [(names[key], values) for key, values in measured.items() if values]
    if not lines:
        return []
    parts = ['<h2>Grading time</h2><table class="timing"><tr><th>part</th><th>gradings</th><th>median (s)</th>'
             "<th>slowest (s)</th><th>slowest submission</th></tr>"]
    for name, values in lines:
        slowest = max(values)
        parts.append(f"<tr><td>{html.escape(name)}</td><td>{len(values)}</td>"
                     f"<td>{statistics.median(v for v, _ in values):.1f}</td><td>{slowest[0]:.1f}</td>"
                     f"<td>{html.escape(slowest[1])}</td></tr>")
    parts.append("</table>")
    return parts


def write_report(rows: list[dict], path: Path, title: str = "genai-hw grades") -> Path:
    """Write the report for ``rows`` (``grade.grade``'s) at ``path``; return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    questions = [c for c in columns(rows) if re.fullmatch(r"q\d+\w*", c)]
    graded = [r for r in rows if r.get("possible")]
    percents = [float(r["percent"]) for r in graded]
    bins = [(f"{lo}-{lo + 9}" if lo < 90 else "90-100",
             sum(1 for p in percents if lo <= p < lo + 10 or (lo == 90 and p == 100))) for lo in range(0, 100, 10)]
    parts = [f"<h1>{html.escape(title)}</h1>",
             f'<p class="summary">{len(rows)} submissions, {sum(1 for r in rows if r.get("error"))} with an error '
             "(counted with the points they got). "
             + (f"Total: mean {statistics.mean(percents):.1f} %, median {statistics.median(percents):.1f} %."
                if percents else "") + "</p>",
             *_isolation_summary(rows),
             '<h2>Total scores (percent)</h2>', _bars(bins, width=520, height=160, title="total scores"),
             "<h2>Questions</h2>", '<div class="questions">']
    for q in questions:
        values = [float(r[q]) for r in graded if q in r]
        counts = sorted(Counter(values).items())
        mean = statistics.mean(values) if values else 0.0
        possible = max(values, default=0.0)
        parts.append(f'<section class="question" id="{q}"><h3>{q}</h3><p>mean {mean:.2f} (best seen {possible:g})'
                     f'</p>{_bars([(f"{v:g}", c) for v, c in counts], title=f"{q} scores")}</section>')
    parts.append("</div>")

    grouped: dict[tuple[str, str, str], list[str]] = {}
    records: list[tuple[dict, dict]] = []
    for row in rows:
        try:
            results = json.loads(Path(row["results"]).read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError):
            continue
        if isinstance(results, dict):
            records.append((row, results))
        for question, kind, case, problem in set(failures(results)):
            grouped.setdefault((question, kind, case), []).append(problem)
    parts.append("<h2>Most frequent failures</h2>")
    if not grouped:
        parts.append("<p>No hidden case failed.</p>")
    by_question: dict[str, list] = {}
    for (question, kind, case), problems in grouped.items():
        by_question.setdefault(question, []).append((len(problems), kind, case, problems))
    for question in sorted(by_question, key=natural_key):
        parts.append(f'<h3>{html.escape(question)}</h3><table class="failures"><tr><th>submissions</th>'
                     "<th>kind</th><th>hidden case</th><th>example</th></tr>")
        for count, kind, case, problems in sorted(by_question[question], key=lambda item: (-item[0], item[2]))[:8]:
            example = Counter(problems).most_common(1)[0][0]
            parts.append(f"<tr><td>{count}</td><td>{html.escape(kind)}</td><td>{html.escape(case)}</td>"
                         f"<td>{html.escape(example[:300])}</td></tr>")
        parts.append("</table>")
    errors = [r for r in rows if r.get("error")]
    if errors:
        parts.append('<h2>Errors</h2><ul class="errors">' + "".join(
            f"<li>{html.escape(r['submission'])}: {html.escape(r['error'])}</li>" for r in errors) + "</ul>")

    parts += _timing(rows, records)

    head = ["submission", "score", "possible", "percent", *questions, "seconds", "isolation", "error"]
    parts.append('<h2>Submissions</h2><table class="submissions"><tr>'
                 + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>")
    for row in rows:
        link = os.path.relpath(row["results"], path.parent) if row.get("results") else ""
        cells = [f'<a href="{html.escape(link)}">{html.escape(row["submission"])}</a>' if link
                 else html.escape(row["submission"])]
        cells += [_fmt(row.get(h, "")) if h != "isolation" else _isolation_cell(row.get(h, "")) for h in head[1:]]
        parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append("</table>")
    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;"
             "text-align:left;vertical-align:top}.questions{display:flex;flex-wrap:wrap;gap:1em}"
             ".question{border:1px solid #ddd;padding:.5em}.bar{fill:#4a78b5}svg text{font-size:10px}"
             ".unsafe{color:#a00;font-weight:bold}")
    document = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
                f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
    path.write_text(document, encoding="utf-8")
    return path
