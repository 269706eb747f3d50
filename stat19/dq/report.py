"""The day's report, shaped like the OHDSI DataQualityDashboard: `<home>/reports/dq/<day>.json`,
its HTML page (with small charts of daily volumes) and the index of every reported date."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from stat19.dq.results import MAX_DETAILS, STATUS_ORDER, CheckResult, DQResult
from stat19.paths import PACKAGE_DIR, Home, write_atomically


def dqd_document(day: date | str, checks: list[CheckResult], started: str, finished: str,
                 volumes: dict | None, waivers: list[dict] | None = None) -> dict[str, Any]:
    """The day's report, shaped like the OHDSI DataQualityDashboard's results JSON."""
    status = Counter(c.status for c in checks)
    by_category: dict[str, dict[str, int]] = {}
    for c in checks:
        by_category.setdefault(c.category, Counter())[c.status] += 1
    ordered = sorted(checks, key=lambda c: (c.status == "pass", c.priority, STATUS_ORDER[c.status],
                                            c.severity != "blocking", -c.share, c.suite, c.check))
    return {
        "startTimestamp": started,
        "endTimestamp": finished,
        "Metadata": {
            "deliveryDate": str(day),
            "generator": "stat19.dq",
            "suites": sorted({c.suite for c in checks}),
            "notes": "pctViolatedRows is a fraction, thresholdValue a percentage (as in the DQD); "
                     "counts and rules only, no identifiers.",
        },
        "Overview": {
            "countTotal": len(checks), "countPassed": status["pass"], "countFailed": status["fail"],
            "countWarned": status["warn"], "countErrored": status["error"], "countWaived": status["waived"],
            "countBlocking": sum(c.blocks for c in checks),
            "byCategory": {k: dict(v) for k, v in sorted(by_category.items())},
        },
        "CheckResults": [c.dqd() for c in ordered],
        "Waivers": waivers or [],
        "Volumes": {s: [list(p) for p in series] for s, series in (volumes or {}).items()},
    }


def write_dq_report(home: Home, result: DQResult) -> tuple[Path, Path]:
    """Write the day's JSON and HTML reports; results of suites not in `result` are kept from the
    previous report of the same day (each Dagster check writes its own suite's part)."""
    folder = home.reports / "dq"
    json_path, html_path = folder / f"{result.day}.json", folder / f"{result.day}.html"
    previous = json.loads(json_path.read_text(encoding="utf-8")) if json_path.exists() else {}
    kept = [CheckResult.from_dqd(d) for d in previous.get("CheckResults", []) if d["suite"] not in result.suites]
    volumes = result.volumes if result.volumes is not None else {
        s: [tuple(p) for p in series] for s, series in previous.get("Volumes", {}).items()}
    waivers = result.waivers if result.waivers is not None else previous.get("Waivers", [])
    doc = dqd_document(result.day, kept + result.checks, previous.get("startTimestamp", result.started.isoformat()),
                       result.finished.isoformat(), volumes, waivers)
    write_atomically(json_path, json.dumps(doc, indent=1, ensure_ascii=False))
    write_atomically(html_path, render_html(doc))
    write_index(home)
    return json_path, html_path


def day_status(doc: dict[str, Any]) -> str:
    """blocked | waived | warnings | passed, from a day's report."""
    o = doc["Overview"]
    if o["countBlocking"]:
        return "blocked"
    return "waived" if o.get("countWaived") else "warnings" if o["countWarned"] + o["countFailed"] + o["countErrored"] else "passed"


def write_index(home: Home) -> Path:
    """reports/dq/index.html: every reported date, newest first, with its status and links."""
    folder = home.reports / "dq"
    days = []
    for path in sorted(folder.glob("????-??-??.json"), reverse=True):
        doc = json.loads(path.read_text(encoding="utf-8"))
        failing = [c["checkName"] for c in doc["CheckResults"] if c["status"] != "pass"]
        days.append({"day": path.stem, "status": day_status(doc), "overview": doc["Overview"],
                     "failing": failing[:MAX_DETAILS], "more": max(0, len(failing) - MAX_DETAILS),
                     "waivers": doc.get("Waivers", [])})
    index = folder / "index.html"
    write_atomically(index, _html_env().get_template("dq_index.html.j2").render(days=days))
    return index


def _chart(series: list[list], day: str, width: int = 220, height: int = 48) -> dict[str, Any]:
    """Geometry of a small line chart of daily volumes; the report's day is marked. The scale
    stops at 10x the median, so one huge delivery (a first full load) does not flatten the rest."""
    values = sorted(n for _, n in series)
    median = values[len(values) // 2]
    top = max(min(values[-1], 10 * median) if median else values[-1], 1)
    step = width / max(len(series) - 1, 1)
    points = [(round(i * step, 1), round(height - min(n, top) * height / top, 1)) for i, (_, n) in enumerate(series)]
    marked = next((p for p, (d, _) in zip(points, series) if d == day), None)
    return {"points": " ".join(f"{x},{y}" for x, y in points), "marked": marked, "top": top, "cut": values[-1] > top,
            "first": series[0][0], "last": series[-1][0], "today": dict(map(tuple, series)).get(day),
            "width": width, "height": height}


@cache
def _html_env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(PACKAGE_DIR / "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda x: f"{x:.2%}"
    return env


def render_html(doc: dict[str, Any]) -> str:
    day = doc["Metadata"]["deliveryDate"]
    charts = {s: _chart(series, day) for s, series in sorted(doc["Volumes"].items()) if series}
    return _html_env().get_template("dq_report.html.j2").render(doc=doc, day=day, charts=charts)
