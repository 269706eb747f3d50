"""Benchmark (issue 13, item 3): the one-day run of the whole pipeline, phase by phase, next to
plain polars and pandas scripts that compute vaccine_coverage's counts alone from the same landing.

    python benchmarks/bench_daily.py --persons 3000 --days 14 --workdir bench/daily
    python benchmarks/bench_daily.py --sizes 3000 20000 --days 14 --workdir bench/daily

For each size: `stat19 synth` writes a landing of D days (kept and reused when it exists with
the same arguments); `stat19 run --through <day D-1>` builds the history in a fresh home (not
timed); then the one-day run, `stat19 run` for day D, is timed as a whole process: wall time,
user+sys CPU and peak RSS (os.wait4). Its phases come from the lines it prints, each stamped on
arrival, the time since the previous line going to the phase of the line that ends it:

    startup            process start to its first line (imports, Dagster instance, finding deliveries)
    loading            the delivery lines, and the end of the loading run
    dq                 the "data quality <day> <suite>" lines (source and linked suites)
    linkage            the "linkage:" lines
    products-sql       from the previous line to a product's first "suppression of" line: the
                       product's Dagster step start, its SQL, grid and totals checks, the relations
    suppression+audit  the product's later "suppression of"/"audit of" lines (the LPs)
    publish            from the product's last such line to its "published" line: the audit's
                       cheap part (primary rule, flags), derived measures, writing the files
    other              the closing lines (the data-quality reports of the day and of any other day
                       loaded) and process exit

A product that prints no suppression or audit line cannot be split: all its time is counted as
products-sql and it is marked so in the per-product lines. The publication audit's LP prints
"audit of" lines only when it runs; when the suppressor has already proven the release in the
same process it is skipped, and the audit's remaining cheap part is inside "publish". A measure
whose table is the same as one already suppressed in the process (vaccinated_season equal to
vaccinated_ever early in a season) reuses its mask and prints no line.

The plain scripts (benchmarks/plain/) run as whole processes too, best of --plain-runs. The
polars script's national cells are compared with the published release's unsuppressed national
cells (published/vaccine_coverage/<R>/data.parquet); the script is simpler than the engine (no
identity chains, no quarantine of bad rows, no checksums: it reads a delivery the engine
rejects), so small differences are expected; they are printed, and the exit status is 1 when a
national total differs by more than --tolerance.

Larger sizes take the same command, one size at a time, on a machine to yourself (the phases are
wall time: anything else running inflates them), with a few GB free under --workdir:

    nice -n 10 python benchmarks/bench_daily.py --persons 250000 --days 14 --workdir /big/disk/daily
    nice -n 10 python benchmarks/bench_daily.py --persons 1000000 --days 14 --workdir /big/disk/daily

For orientation (benchmarks/results/): at 20 k persons the untimed history took 3.3 minutes and
the one-day run 2.4; bench_dq_alarms.py loaded and checked 15 days without products in about 8
minutes at 250 k and 16 at 1 M. What is not known at those sizes is the suppression of
vaccine_coverage (11 s at 3 k, 72 s at 20 k), so allow an hour or more per size. The landing is
kept under --workdir and reused by the next run with the same arguments; the home is rebuilt.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLAIN = ROOT / "benchmarks" / "plain"
PHASES = ["startup", "loading", "dq", "linkage", "products-sql", "suppression+audit", "publish", "other"]
SOURCES = {p.stem for p in (ROOT / "assets" / "sources").glob("*.yaml")}
PRODUCTS = {p.stem for p in (ROOT / "assets" / "products").glob("*.yaml")}
DAY = re.compile(r"\d{4}-\d\d-\d\d")
SECONDS = re.compile(r"\((\d+(?:\.\d+)?) s\)$")
BUDGET = 2.0  # issue 13: the whole one-day run in at most twice the polars script's time


@dataclass
class Process:
    wall: float
    cpu: float
    rss_mb: float
    returncode: int
    lines: list[tuple[float, str]] = field(default_factory=list)  # (seconds since start, line)


def timed(cmd: list[str], env: dict[str, str]) -> Process:
    """Run cmd to its end, stamping each line of its output as it arrives."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    with proc.stdout:
        lines = [(time.perf_counter() - started, line.rstrip("\n")) for line in proc.stdout]
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own CPU and peak RSS
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Process(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode, lines)


def stat19(*args: str) -> list[str]:
    return [sys.executable, "-m", "stat19.cli", *args]


def phases(lines: list[tuple[float, str]], wall: float) -> tuple[dict[str, float], dict[str, tuple], float]:
    """Seconds per phase, per product (sql, suppression+audit, publish, separated?) and the
    seconds the dq lines report themselves."""
    total = dict.fromkeys(PHASES, 0.0)
    products: dict[str, tuple] = {}
    sql = supp = dq_own = previous = 0.0
    in_product = False
    for i, (t, line) in enumerate(lines):
        text, spent, previous = line.strip(), t - previous, t
        words = text.split()
        dated = len(words) >= 2 and DAY.fullmatch(words[0]) is not None
        if i == 0:
            phase = "startup"
        elif (dated and words[1] in SOURCES) or text.startswith("Checking data quality"):
            phase = "loading"
        elif text.startswith("data quality "):
            phase = "dq"
            if m := SECONDS.search(text):
                dq_own += float(m.group(1))
        elif text.startswith("linkage"):
            phase = "linkage"
        elif text.startswith(("suppression of ", "audit of ")):
            phase = "suppression+audit" if in_product else "products-sql"
            if in_product:
                supp += spent
            else:
                sql, in_product = spent, True
        elif dated and words[1] in PRODUCTS:
            if in_product:
                phase, products[words[1]] = "publish", (sql, supp, spent, True)
            else:
                phase, products[words[1]] = "products-sql", (spent, 0.0, 0.0, False)
            sql = supp = 0.0
            in_product = False
        else:
            phase = "other"
        total[phase] += spent
    total["other"] += wall - previous
    return total, products, dq_own


def make_landing(landing: Path, persons: int, start: date, days: int, seed: int, env: dict[str, str]) -> None:
    truth = landing / "_synth_truth.json"
    if truth.exists():
        given = json.loads(truth.read_text())["arguments"]
        if (given["persons"], given["start"], given["days"], given["seed"]) == (persons, start.isoformat(), days, seed):
            return
        shutil.rmtree(landing)
    subprocess.run(stat19("synth", "--persons", str(persons), "--start", start.isoformat(), "--days", str(days),
                          "--seed", str(seed), "--out", str(landing)),
                   env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def best_of(runs: int, cmd: list[str], env: dict[str, str]) -> Process:
    results = [timed(cmd, env) for _ in range(runs)]
    for r in results:
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n" + "\n".join(line for _, line in r.lines))
    return min(results, key=lambda r: r.wall)


def compare(published: Path, plain: Path, tolerance: float) -> tuple[list[str], bool]:
    """The polars script's national cells against the release's unsuppressed national cells."""
    import polars as pl

    keys = ["vaccine_group", "age_group", "sex"]
    pub = pl.read_parquet(published).filter(pl.col("geo_level") == "national").select(*keys, "population", "vaccinated_ever")
    ours = pl.read_parquet(plain).filter(pl.col("geo_level") == "national")
    totals = ours.group_by("vaccine_group").agg(pl.col("population", "vaccinated_ever").sum()).with_columns(
        age_group=pl.lit("total"), sex=pl.lit("total"))
    ours = pl.concat([ours.select(*keys, "population", "vaccinated_ever"), totals.select(*keys, "population", "vaccinated_ever")],
                     how="vertical_relaxed")
    both = pub.join(ours, on=keys, how="left", suffix="_plain")
    out, ok = ["  national totals (age total, sex total)   published    polars     diff"], True
    for row in both.filter(pl.col("age_group") == "total", pl.col("sex") == "total").sort("vaccine_group").iter_rows(named=True):
        for measure in ("population", "vaccinated_ever"):
            if measure == "population" and row["vaccine_group"] != "covid19":
                continue  # the population is repeated over the vaccine groups
            a, b = row[measure], row[f"{measure}_plain"]
            label = "population" if measure == "population" else f"vaccinated_ever {row['vaccine_group']}"
            if a is None:
                out.append(f"    {label:<38}{'hidden':>9}{b:>10,}")
                continue
            rel = (b - a) / a if a else 0.0
            ok &= abs(rel) <= tolerance
            out.append(f"    {label:<38}{a:>9,}{b:>10,}{b - a:>+9,} ({rel:+.2%})")
    cells = both.filter(pl.col("age_group") != "total", pl.col("sex") != "total")
    for measure in ("population", "vaccinated_ever"):
        shown = cells.filter(pl.col(measure).is_not_null())
        diff = (shown[f"{measure}_plain"].fill_null(0).cast(pl.Int64) - shown[measure]).abs()
        out.append(f"    {measure} by age group x sex: {shown.height} of {cells.height} national cells unsuppressed, "
                   f"{int((diff > 0).sum())} differ, largest difference {int(diff.max() or 0)}")
    out.append(f"  {'agree' if ok else 'DISAGREE'}: every unsuppressed national total within {tolerance:.0%}")
    return out, ok


def bench(persons: int, args: argparse.Namespace, env: dict[str, str]) -> dict:
    base = args.workdir / f"p{persons}-d{args.days}-s{args.seed}"
    landing, home = base / "landing", base / "home"
    last = args.start + timedelta(days=args.days - 1)
    print(f"\n== {persons:,} persons, {args.days} days ({args.start} to {last}), seed {args.seed}: {base}", flush=True)
    make_landing(landing, persons, args.start, args.days, args.seed, env)
    if home.exists():
        shutil.rmtree(home)
    history = subprocess.run(stat19("run", "--landing", str(landing), "--home", str(home),
                                    "--through", (last - timedelta(days=1)).isoformat()),
                             env=env, cwd=ROOT, capture_output=True, text=True)
    (base / "history.log").write_text(history.stdout + history.stderr)
    if history.returncode != 0:
        raise SystemExit(f"the history run failed (exit {history.returncode}); see {base / 'history.log'}")
    run = timed(stat19("run", "--landing", str(landing), "--home", str(home)), env)
    (base / "oneday.log").write_text("".join(f"{t:8.2f}  {line}\n" for t, line in run.lines))
    if run.returncode != 0:
        raise SystemExit(f"the one-day run failed (exit {run.returncode}); see {base / 'oneday.log'}")
    status = json.loads((home / "reports" / "status.json").read_text())
    if (status["status"], status["reference_date"]) != ("ok", last.isoformat()):
        print(f"  note: reports/status.json says {status}")
    split, products, dq_own = phases(run.lines, run.wall)
    plain = {}
    for tool in ("polars", "pandas"):
        out = base / f"plain-{tool}.parquet"
        if tool == "pandas" and not pandas_available():
            plain[tool] = None
            continue
        plain[tool] = best_of(args.plain_runs, [sys.executable, str(PLAIN / f"vaccine_coverage_{tool}.py"), "--landing",
                                                str(landing), "--date", last.isoformat(), "--out", str(out)], env)
    release = home / "published" / "vaccine_coverage" / last.isoformat() / "data.parquet"
    comparison, agree = compare(release, base / "plain-polars.parquet", args.tolerance)
    return {"persons": persons, "run": run, "phases": split, "products": products, "dq_own": dq_own,
            "plain": plain, "comparison": comparison, "agree": agree, "log": base / "oneday.log"}


def pandas_available() -> bool:
    return importlib.util.find_spec("pandas") is not None


def report(results: list[dict], args: argparse.Namespace) -> None:
    head = ["startup", "loading", "dq", "linkage", "products-sql", "suppression+audit", "publish", "other"]
    print("\nOne-day run (whole process) and its phases, seconds; plain scripts: best of "
          f"{args.plain_runs} runs, wall seconds")
    print(f"{'persons':>9}  {'wall':>7} {'cpu':>7} {'peak RSS':>9} | " + "  ".join(head) + f" | {'polars':>6} {'pandas':>6} | run / polars")
    for r in results:
        run, p, pol, pan = r["run"], r["phases"], r["plain"]["polars"], r["plain"]["pandas"]
        cols = "  ".join(f"{p[h]:>{len(h)}.1f}" for h in head)
        pandas_s = f"{pan.wall:6.2f}" if pan else "  n/a "
        print(f"{r['persons']:>9,}  {run.wall:7.1f} {run.cpu:7.1f} {run.rss_mb:6,.0f} MB | {cols} | {pol.wall:6.2f} {pandas_s} | "
              f"{run.wall / pol.wall:8.0f}x")
    for r in results:
        pol, pan = r["plain"]["polars"], r["plain"]["pandas"]
        print(f"\n{r['persons']:,} persons — per product (products-sql / suppression+audit / publish, s):")
        for name, (sql, supp, pub, separated) in r["products"].items():
            note = "" if separated else "   (printed no suppression line: not separated)"
            print(f"  {name:<22}{sql:7.1f} {supp:7.1f} {pub:7.1f}{note}")
        dq = r["phases"]["dq"]
        print(f"  dq: {dq:.1f} s, of which the checks' own lines report {r['dq_own']:.1f} s "
              f"(the rest is Dagster step overhead between them)")
        print(f"  polars script: {pol.wall:.2f} s wall, {pol.cpu:.2f} s CPU, {pol.rss_mb:,.0f} MB peak RSS")
        if pan:
            print(f"  pandas script: {pan.wall:.2f} s wall, {pan.cpu:.2f} s CPU, {pan.rss_mb:,.0f} MB peak RSS")
        else:
            print("  pandas script: skipped: pandas is not installed in this environment")
        print(f"  one-day run log with arrival times: {r['log']}")
        print("\n".join(r["comparison"]))
    print()
    for r in results:
        pol = r["plain"]["polars"]
        verdict = "pass" if r["run"].wall <= BUDGET * pol.wall else "miss"
        print(f"Goal: the whole one-day run in at most twice the polars script's time: {verdict} at {r['persons']:,} persons "
              f"(run {r['run'].wall:.1f} s, budget {BUDGET * pol.wall:.1f} s = 2 x {pol.wall:.2f} s; "
              f"{r['run'].wall / pol.wall:.0f}x the polars script)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=3000)
    parser.add_argument("--sizes", type=int, nargs="+", help="several sizes in one go (instead of --persons)")
    parser.add_argument("--days", type=int, default=14, help="days of deliveries; the last one is the timed run")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 5), help="first delivery date")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "daily")
    parser.add_argument("--plain-runs", type=int, default=3, help="runs of each plain script (the best counts)")
    parser.add_argument("--tolerance", type=float, default=0.02, help="relative difference allowed on national totals")
    args = parser.parse_args()
    if args.days < 2:
        parser.error("--days must be at least 2: a history, then the one day")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
           "PYTHONUNBUFFERED": "1"}  # lines reach us when printed, not when a buffer fills
    env.setdefault("STAT19_PSEUDONYM_KEY", "bench-daily-pseudonym-key-not-a-secret-0123456789")
    args.workdir = args.workdir.resolve()
    results = [bench(n, args, env) for n in (args.sizes or [args.persons])]
    report(results, args)
    sys.exit(0 if all(r["agree"] for r in results) else 1)


if __name__ == "__main__":
    main()
