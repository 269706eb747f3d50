"""The `stat19` command line."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

from stat19.paths import Home, SpecError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DQ_BLOCKED = 0, 1, 2, 3

DESCRIPTION = """\
Stat19 links Norwegian health register deliveries on the person, pseudonymises them and
publishes anonymous, disclosure-controlled statistics. All data in this project is synthetic.

Typical use:
  stat19 synth --persons 20000 --start 2026-01-05 --days 30 --out demo/landing
  stat19 run --landing demo/landing --home demo/home
  stat19 waive --home demo/home --date 2026-02-03 --check linkage_rate_drop --reason "..."
"""


def _invoked_as() -> str:
    """How to call stat19 again, as this process was called (`.venv/bin/stat19` unless on PATH)."""
    me = Path(sys.argv[0])
    if me.name != "stat19" or len(me.parts) == 1:
        return "stat19"
    return str(me) if me.is_absolute() and not me.is_relative_to(Path.cwd()) else str(me.absolute().relative_to(Path.cwd()))


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _positive(text: str) -> int:
    n = int(text)
    if n <= 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stat19", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = sub.add_parser("synth", help="generate synthetic register deliveries into a landing folder",
                           description="Write synthetic deliveries of all nine registers, one per source per day, "
                           "exactly as the interface contract says, with a small share of bad input of every kind.")
    synth.add_argument("--persons", type=_positive, required=True, help="population size (national scale: 5600000)")
    synth.add_argument("--start", type=_date, required=True, help="first delivery date, YYYY-MM-DD")
    synth.add_argument("--days", type=_positive, required=True, help="number of daily deliveries per source")
    synth.add_argument("--out", type=Path, required=True, help="landing folder to write")
    synth.add_argument("--seed", type=int, default=19, help="random seed; the same seed gives the same files (default 19)")
    synth.add_argument("--error-rate", type=float, default=0.002,
                       help="share of rows with each kind of row-level fault (default 0.002)")
    synth.add_argument("--no-delivery-faults", action="store_true",
                       help="do not inject whole-delivery faults (bad checksum, missing column, ...)")

    run = sub.add_parser("run", help="process every complete delivery up to a date",
                         description="Check and load every complete delivery in the landing folder (in date order, "
                         "through Dagster), quarantining bad rows and rejecting broken deliveries, each on its own: "
                         "a bad delivery never stops the others. Late and re-sent deliveries load with the newer ones. "
                         "Deliveries already processed are skipped, so running again is safe, also after a "
                         "kill: the next run cleans up after it. Then, for the reference date, data-quality checks, "
                         "linkage, pseudonymisation and the releases. The reference date is the latest date (up to "
                         "--through) that has a complete delivery (manifest written) and no folder still being "
                         "written; a folder without a manifest never chooses it. Reports go to "
                         "HOME/reports (status.json: how the run ended). Exit codes: 0 done, 1 the run failed (a "
                         "fault of the run itself such as an unwritable vault or a full disk, another run holding "
                         "the home, or an interruption), 2 bad usage, 3 a blocking data-quality check withheld the "
                         "date's results.")
    run.add_argument("--landing", type=Path, required=True, help="landing folder: LANDING/<source>/<YYYY-MM-DD>/")
    run.add_argument("--home", type=Path, required=True, help="Stat19 home: vault/, linked/, published/, reports/")
    run.add_argument("--through", type=_date, default=None,
                     help="last delivery date to load, and latest possible reference date (default: all)")
    run.add_argument("--product", action="append", metavar="NAME", dest="products",
                     help="compute and publish only this product (repeatable; default: every product in "
                     "assets/products/); the others keep their last releases")

    query = sub.add_parser("query", help="query the pseudonymised linked tables (read-only)",
                           description="Run SQL on HOME/linked/current.duckdb, read-only and without access to other "
                           "files: one SELECT-style statement (SELECT, WITH, FROM, VALUES, DESCRIBE, SHOW, SUMMARIZE); "
                           "anything that writes, copies, exports, attaches, loads or sets is refused (exit 2). "
                           "Tables: persons, residences (and residences_as_of(DATE)), vaccinations, cases, "
                           "lab_results, hospital_episodes, primary_care_contacts, births, deaths, dispensings; "
                           "see `stat19 describe`. Output: CSV on standard output, or --out FILE (.csv or .parquet).")
    query.add_argument("--home", type=Path, required=True, help="Stat19 home")
    query.add_argument("sql", help="the query, e.g. \"SELECT vaccine_group, count(*) FROM vaccinations GROUP BY ALL\"")
    query.add_argument("--out", type=Path, default=None, help="write to a .csv or .parquet file instead")

    audit = sub.add_parser("audit", help="re-audit every published release for disclosure (non-zero exit on any finding)",
                           description="Check every release under HOME/published: files complete and consistent, "
                           "flags and metadata right, and no hidden cell recoverable by linear reasoning over the "
                           "release's published cells (LP with HiGHS); then every consecutive pair of releases of a "
                           "product (consecutive dates, and revisions n and n+1 of a date) from their internal copies "
                           "in the vault: no hidden cell recoverable by differencing. Exit code 1 on any finding.")
    audit.add_argument("--home", type=Path, required=True, help="Stat19 home")

    serve = sub.add_parser("serve", help="serve the published statistics: an HTTP API and a browser (read-only)",
                           description="Serve HOME/published read-only: the statistics API under /api/open/v1 "
                           "(tables, metadata, dimensions and codelists, queries with dimension filters answering "
                           "JSON-stat 2.0 or CSV, flags, releases and revisions), its documentation at /docs and "
                           "the statistics browser at /. Stop with Ctrl-C.")
    serve.add_argument("--home", type=Path, required=True, help="Stat19 home")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8019, help="port (default 8019)")
    waive = sub.add_parser("waive", help="release a date withheld by a blocking data-quality check, after review",
                           description="Record in the vault who released which blocking check for which delivery "
                           "date, when and why. The next `stat19 run` for that date publishes; the waiver shows in "
                           "the date's data-quality report and in each release's metadata.json. A waiver applies to "
                           "that date and check only.")
    waive.add_argument("--home", type=Path, required=True, help="Stat19 home")
    waive.add_argument("--date", type=_date, required=True, help="the delivery date withheld, YYYY-MM-DD")
    waive.add_argument("--check", required=True, help="the check's name, as in the report (e.g. linkage_rate_drop)")
    waive.add_argument("--reason", required=True, help="why the day may be published (what the review found)")
    waive.add_argument("--by", default=None, help="who releases it (default: the login name)")

    new_source = sub.add_parser("new-source", help="draft the spec files of a new register from a sample delivery",
                                description="Read a sample delivery (CSV, JSON Lines or Parquet, by its suffix) with "
                                "DuckDB and write drafts of the source spec (DIR/assets/sources/NAME.yaml), its DQ "
                                "suite (DIR/dq_checks/NAME.yaml), its linked table (DIR/sql/linked/<table>.sql.j2) and "
                                "the table's entry in DIR/assets/linked.yaml: column types, identifier columns, "
                                "dates, codes and short value lists as the sample shows them, with a TODO comment "
                                "wherever the author must decide. Existing files are never overwritten (exit 2). "
                                "Then point STAT19_SPEC_PATH at DIR and run `stat19 check-specs`.")
    new_source.add_argument("name", help="the source's name: lower_snake_case, the landing folder's name")
    new_source.add_argument("--sample", type=Path, required=True, help="a delivered file (.csv, .jsonl, .parquet)")
    new_source.add_argument("--into", type=Path, default=Path("."),
                            help="the spec directory to write into (default: the current directory)")

    sub.add_parser("check-specs", help="validate every spec, suite and template the engine would read",
                   description="Load every source spec, product spec, DQ suite and the linked model of the "
                   "repository and of every STAT19_SPEC_PATH directory, parse every SQL template, and check "
                   "that references resolve (product SQL, suite tables and SQL checks, code systems, imported "
                   "templates) and that no name is defined twice. Every problem is one line "
                   "`FILE: field: message`; exit code 1 if there is any, else 0 with a summary.")

    describe = sub.add_parser("describe", help="print the data dictionary of the linked model (Markdown)")
    describe.add_argument("--home", type=Path, default=None, help="Stat19 home: add types and row counts of its snapshot")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "synth":
            return _synth(args)
        if args.command == "run":
            return _run(args)
        if args.command == "audit":
            return _audit(args)
        if args.command == "query":
            return _query(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "waive":
            return _waive(args)
        if args.command == "new-source":
            return _new_source(args)
        if args.command == "check-specs":
            return _check_specs()
        if args.command == "describe":
            from stat19.query import describe

            print(describe(Home(args.home) if args.home else None))
            return EXIT_OK
    except KeyboardInterrupt:
        print("stat19: interrupted; the vault keeps its last completed state", file=sys.stderr)
        return EXIT_FAILED
    except SpecError as exc:  # a spec or STAT19_SPEC_PATH is wrong: say which file and field, no traceback
        print(f"stat19 {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_USAGE


def _synth(args) -> int:
    from stat19.synth import generate

    started = time.perf_counter()
    summary = generate(args.out, persons=args.persons, start=args.start, days=args.days, seed=args.seed,
                       error_rate=args.error_rate, delivery_faults=not args.no_delivery_faults)
    print(f"Wrote {args.days} days of deliveries for {args.persons:,} persons to {args.out} "
          f"in {time.perf_counter() - started:.1f} s")
    if isinstance(summary, dict) and summary.get("rows"):
        for source, rows in summary["rows"].items():
            print(f"  {source:<9}{rows:>12,} rows")
    return EXIT_OK


def _run(args) -> int:
    import signal

    from stat19.linkage import LinkageError
    from stat19.pipeline import DataQualityBlocked, RunFailed, run
    from stat19.zones import ZoneConfigError, apply_zone_modes

    if not args.landing.is_dir():
        print(f"stat19 run: landing folder {args.landing} does not exist", file=sys.stderr)
        return EXIT_USAGE
    from stat19.products import product_specs
    from stat19.specs import source_specs

    source_specs()  # a spec the engine cannot use stops here, named in one line (SpecError, exit 2)
    unknown = sorted(set(args.products or []) - set(product_specs()))
    if unknown:
        print(f"stat19 run: no product named {', '.join(unknown)} in assets/products/", file=sys.stderr)
        return EXIT_USAGE
    home = Home(args.home)
    started = time.perf_counter()
    # SIGTERM (a service manager stopping the run) stops it as Ctrl-C does: cleanly, and the
    # vault keeps its last completed state
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    try:
        summary = run(args.landing, home, args.through, products=args.products or True)
    except (RunFailed, LinkageError, ZoneConfigError) as exc:
        print(f"stat19 run: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except DataQualityBlocked as exc:
        print(f"stat19 run: {exc}", file=sys.stderr)
        print("The deliveries are loaded and kept; what depends on them for this date was withheld and "
              "earlier releases stay as they were. Report: " + str(home.reports / "dq"), file=sys.stderr)
        return EXIT_DQ_BLOCKED
    finally:
        if home.root.is_dir():
            apply_zone_modes(home)  # vault 0700, nothing world-readable (stat19/zones.py)
    rejected = summary.count("rejected")
    print(f"\nDone in {time.perf_counter() - started:.0f} s: {summary.count('loaded')} deliveries loaded, "
          f"{rejected} rejected, {summary.count('ignored')} still without a manifest.")
    print(f"  accounting:  {home.reports / 'deliveries.csv'}  (every row loaded, quarantined or duplicate)")
    print(f"  quarantine:  {home.reports / 'quarantine.csv'}")
    print(f"  vault:       {home.warehouse}  (identifiable zone)")
    if summary.reference_date:
        print(f"  published:   {home.published}  (releases for {summary.reference_date}; catalog.json lists all)")
    print(f"  linked:      {home.linked / 'current.duckdb'}  (pseudonymised; `{_invoked_as()} query --home {home.root} \"SQL\"`)")
    if summary.reference_date:
        print(f"  quality:     {home.reports / 'dq' / f'{summary.reference_date}.html'}")
    if rejected:
        print(f"  {rejected} rejected deliveries: see the message column of deliveries.csv")
    return EXIT_OK


def _audit(args) -> int:
    from stat19.publish import audit_all

    home = Home(args.home)
    if not home.published.is_dir():
        print(f"stat19 audit: {home.published} does not exist: nothing has been published", file=sys.stderr)
        return EXIT_USAGE
    stats: dict = {}
    findings = audit_all(home, stats)
    releases = len(list(home.published.glob("*/*/metadata.json")))
    for finding in findings:
        print(f"FINDING  {finding}")
    # pairs with a release from before the vault kept internal copies cannot be audited: said, not failed
    not_audited = stats.get("series_not_audited", [])
    print(f"{releases} releases and {stats.get('series_pairs', 0)} consecutive pairs audited: {len(findings)} findings"
          + (f"; {len(not_audited)} pairs not audited (no internal copy in the vault), e.g. {not_audited[0]}"
             if not_audited else ""))
    return EXIT_FAILED if findings else EXIT_OK


def _serve(args) -> int:
    from stat19.serve import serve

    home = Home(args.home)
    if not (home.published / "catalog.json").is_file():
        print(f"stat19 serve: nothing published under {home.published} (run `stat19 run` first)", file=sys.stderr)
        return EXIT_USAGE
    print(f"Serving {home.published} on http://{args.host}:{args.port}/  (API: /api/open/v1, docs: /docs; Ctrl-C stops)",
          flush=True)
    serve(home, host=args.host, port=args.port)
    return EXIT_OK


def _waive(args) -> int:
    import getpass

    from stat19.dq import waive

    home = Home(args.home)
    if not home.warehouse.exists():
        print(f"stat19 waive: {home.root} has no vault yet: nothing to waive", file=sys.stderr)
        return EXIT_USAGE
    try:
        w = waive(home, args.date, args.check, args.reason, args.by or getpass.getuser())
    except ValueError as exc:
        print(f"stat19 waive: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"Waived {w['check']} for {w['date']} (by {w['by']} at {w['at']}): {w['reason']}\n"
          f"The next `stat19 run --through {w['date']}` publishes that date.")
    return EXIT_OK


def _new_source(args) -> int:
    from stat19.scaffold import ScaffoldError, write_drafts

    try:
        written = write_drafts(args.name, args.sample, args.into)
    except ScaffoldError as exc:
        print(f"stat19 new-source: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"Drafted the source {args.name} from {args.sample}; review every TODO in:")
    for path in written:
        print(f"  {path}")
    print(f"Then: STAT19_SPEC_PATH={args.into} {_invoked_as()} check-specs")
    return EXIT_OK


def _check_specs() -> int:
    from stat19.speccheck import check_specs

    problems, summary = check_specs()
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problems", file=sys.stderr)
        return EXIT_FAILED
    print(summary)
    return EXIT_OK


def _query(args) -> int:
    import duckdb

    from stat19.linkage import LinkageError
    from stat19.query import NotReadOnly, linked

    try:
        frame = linked(Home(args.home), args.sql)
    except NotReadOnly as exc:
        print(f"stat19 query: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (LinkageError, duckdb.Error) as exc:
        print(f"stat19 query: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.out is None:
        sys.stdout.write(frame.write_csv())
    elif args.out.suffix == ".parquet":
        frame.write_parquet(args.out)
    elif args.out.suffix == ".csv":
        frame.write_csv(args.out)
    else:
        print("stat19 query: --out must end in .csv or .parquet", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
