"""The audit of what is published, from the files alone: files complete and consistent with each
other, flag rules, metadata counts, and the LP disclosure audit of every hidden count (for which any
integer table matching the published cells stands in for the hidden values: found by a MILP)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from stat19 import disclosure, jsonstat
from stat19.geography import geo_parents
from stat19.paths import Home
from stat19.products import CountSpec, ExcessSpec, ProductSpec, RateSpec, hidden_col
from stat19.publish.catalog import CATALOG, DATA_FILES, catalog, read_json, releases
from stat19.disclosure.series import NEW
from stat19.publish.series import published_revisions, read_vault_copy, release_label


@dataclass(frozen=True)
class AuditFinding:
    release: str  # <product>/<R>[/revisions/<n>]
    problem: str

    def __str__(self) -> str:
        return f"{self.release}: {self.problem}"



def check_derived(spec: ProductSpec, df: pl.DataFrame) -> list[str]:
    """The hiding rules of rates, expected and excess values (products.md), on the internal
    release: a rate is hidden exactly when its numerator (or a listed count, or a hidden count
    denominator) is; excess when deaths or expected is."""
    out = []
    for m in spec.measures:
        if isinstance(m, RateSpec):
            want = np.zeros(df.height, dtype=bool)
            for h in {*(m.hidden_with or []), *([m.numerator] if isinstance(spec.measure(m.numerator), CountSpec) else [])}:
                want |= df[hidden_col(h)].to_numpy()
            if spec.measure(m.denominator).rule != "public":
                want |= df[hidden_col(m.denominator)].to_numpy()
        elif isinstance(m, ExcessSpec):
            want = df[hidden_col(m.observed)].to_numpy() | df[hidden_col(m.expected)].to_numpy()
        else:
            continue
        got = df[hidden_col(m.name)].to_numpy()
        bad = np.flatnonzero(got != want)
        if bad.size:
            out.append(f"{m.name} hidden={bool(got[bad[0]])} at row {int(bad[0])}, the rule says {bool(want[bad[0]])}")
    return out


def check_public_table(table: pl.DataFrame, measures: Sequence[Mapping[str, Any]]) -> list[str]:
    """Flags are '' or ':'; a hidden value is null; a count is never null unless hidden; a rate
    is hidden when the counts it depends on are (read from the flags alone)."""
    out = []
    by = {m["name"]: m for m in measures}
    for m in measures:
        name, flag = m["name"], f"{m['name']}_flag"
        if name not in table.columns or flag not in table.columns:
            out.append(f"column {name} or {flag} missing")
            continue
        flags = table[flag]
        if not flags.is_in(["", jsonstat.HIDDEN]).all():
            out.append(f"{flag} holds values other than '' and ':'")
        hidden = flags == jsonstat.HIDDEN
        if (hidden & table[name].is_not_null()).any():
            out.append(f"{name}: a hidden cell has a value")
        if m["kind"] == "count" and (~hidden & table[name].is_null()).any():
            out.append(f"{name}: a published count is null")
        if m["kind"] == "count" and m.get("rule") == "public" and hidden.any():
            out.append(f"{name}: a public count is hidden")
        deps: list[str] = []
        if m["kind"] == "rate":
            deps = [d for d in [m["numerator"], *m.get("hidden_with", [])] if d in by]
            if by.get(m["denominator"], {}).get("rule") not in (None, "public"):
                deps.append(m["denominator"])
        elif m["kind"] == "excess":
            deps = [m["observed"], m["expected"]]
        if deps:
            want = np.zeros(table.height, dtype=bool)
            for d in deps:
                want |= (table[f"{d}_flag"] == jsonstat.HIDDEN).to_numpy()
            if (want != hidden.to_numpy()).any():
                out.append(f"{name}: hidden where it should not be or published where {' or '.join(deps)} is hidden")
    return out


# --------------------------------------------------------------------------------------------
# Auditing what is published


def audit_all(home: Home | Path | str, stats: dict[str, Any] | None = None) -> list[AuditFinding]:
    """Re-audit every published release (every revision) from its files alone: files complete
    and consistent with each other (Parquet, CSV, JSON-stat), flag rules, metadata counts, and
    the LP disclosure audit of every hidden count; then every consecutive pair of releases for
    differencing (``audit_series``, from the vault copies). Empty list: everything published is
    safe. ``stats``, when given, receives the pair counts of ``audit_series``."""
    home = home if isinstance(home, Home) else Home(Path(home))
    findings: list[AuditFinding] = []
    for product, rel in releases(home):
        label = f"{product}/{rel.name}"
        findings += audit_files(rel, label=label)
        rev_dir = rel / "revisions"
        if rev_dir.is_dir():
            for r in sorted(rev_dir.iterdir(), key=lambda p: p.name):
                findings += audit_files(r, label=f"{label}/revisions/{r.name}")
    if home.published.is_dir() and (home.published / CATALOG).exists():
        if read_json(home.published / CATALOG) != catalog(home):
            findings.append(AuditFinding(CATALOG, "does not list the published releases as they are"))
    findings += audit_series(home, stats)
    return findings


def audit_series(home: Home, stats: dict[str, Any] | None = None) -> list[AuditFinding]:
    """The series audit (``disclosure.series_audit``) of every consecutive pair of each product:
    the current revisions of consecutive published dates, and each revision of a date against every
    earlier one of that date (as publication protects it), on their internal copies in the vault (the hidden true values are needed to know the direction
    of each change). Each copy must also match its published revision (flags and published counts).

    A pair one of whose releases has no vault copy (published before the vault kept them) is not a
    finding: it is counted in ``stats["series_not_audited"]`` (pair labels), so that an old home
    does not fail; ``stats["series_pairs"]`` counts the pairs audited."""
    findings: list[AuditFinding] = []
    audited, not_audited = 0, []
    product_names = sorted({product for product, _ in releases(home)})
    for product in product_names:
        history = published_revisions(home, product)
        days = list(history)
        # each revision against every earlier one of its date (all stay published), as it was protected
        pairs = [((d, a), (d, b)) for d in days for i, b in enumerate(history[d]) for a in history[d][:i]]
        pairs += [((d, history[d][-1]), (e, history[e][-1])) for d, e in zip(days, days[1:])]
        copies: dict[tuple[str, int], pl.DataFrame | None] = {}
        wrong: set[tuple[str, int]] = set()  # copies that are not their published revision
        for old, new in pairs:
            for key in (old, new):
                if key not in copies:
                    copies[key] = read_vault_copy(home, product, *key)
                    if copies[key] is not None:
                        problems = _copy_matches(copies[key], _published_folder(home, product, *key))
                        findings += [AuditFinding(f"{product}/{release_label(*key)}", p) for p in problems]
                        wrong |= {key} if problems else set()
            pair = f"{product} {release_label(*old)} -> {release_label(*new)}"
            if copies[old] is None or copies[new] is None:
                not_audited.append(pair)
                continue
            if old in wrong or new in wrong:
                continue  # auditing another table than the published one would say nothing: found above
            meta = read_json(_published_folder(home, product, *new) / "metadata.json") or {}
            counts = [m for m in meta.get("measures", []) if m["kind"] == "count" and m.get("rule") != "public"]
            if not counts:
                continue
            audited += 1
            measures = [disclosure.CountMeasure(m["name"], m["rule"], m.get("denominator")) for m in counts]
            try:
                found = disclosure.series_audit(
                    copies[new], {release_label(*old): copies[old]}, _file_dimensions(copies[new], meta), measures,
                    width=int(meta["disclosure"].get("width", disclosure.WIDTH)),
                    min_denominator=int(meta["disclosure"].get("min_denominator", disclosure.MIN_DENOMINATOR)))
            except disclosure.RelationError as exc:
                findings.append(AuditFinding(pair, f"series disclosure: the releases do not add up: {exc}"))
                continue
            # the finding without the cell's true value: this is printed, the value is confidential
            findings += [AuditFinding(pair, f"series disclosure: {f.measure} [{_cell_text(f.cell, new)}]: {f.reason}; "
                                            f"derivable interval [{f.low + 0.0:g}, {f.high + 0.0:g}], needs width {f.required:g}")
                         for f in found]
    if stats is not None:
        stats.update(series_pairs=audited, series_not_audited=not_audited)
    return findings


def _published_folder(home: Home, product: str, day: str, revision: int) -> Path:
    folder = home.published / product / day
    meta = read_json(folder / "metadata.json")
    return folder if meta is not None and int(meta["revision"]) == revision else folder / "revisions" / str(revision)


def _cell_text(cell: Mapping[str, Any], new: tuple[str, int]) -> str:
    """The cell's codes, the release audited named by its label rather than "new"."""
    label = release_label(*new)
    named = {k: label if k == "release" and v == NEW
             else f"{v.removesuffix(NEW)}{label}" if k == "difference" and v.endswith(f"-> {NEW}") else v
             for k, v in cell.items()}
    return ", ".join(f"{k}={v}" for k, v in named.items())


def _copy_matches(internal: pl.DataFrame, folder: Path) -> list[str]:
    """The vault copy is the internal release of that published revision: same cells, the same
    cells hidden, the same published counts."""
    try:
        meta = read_json(folder / "metadata.json")
        table = pl.read_parquet(folder / "data.parquet")
    except Exception:  # missing or unreadable files are audit_files' findings
        return []
    if meta is None:
        return []
    keys = ["geo_code", *[d["name"] for d in meta["dimensions"][1:]]]
    names = [m["name"] for m in meta["measures"] if hidden_col(m["name"]) in internal.columns]
    counts = [m["name"] for m in meta["measures"] if m["kind"] == "count" and m["name"] in names]
    try:
        both = table.select(*keys, *names, *[f"{n}_flag" for n in names]).join(
            internal.select(*keys, *[pl.col(n).alias(f"{n}__vault") for n in counts],
                            *[hidden_col(n) for n in names]), on=keys, how="full", coalesce=True)
    except pl.exceptions.PolarsError as exc:
        return [f"the vault copy does not have the published release's columns: {exc}"]
    if both.height != table.height or both.height != internal.height:
        return ["the vault copy and the published release list different cells"]
    bad = [n for n in names if (both[hidden_col(n)] != (both[f"{n}_flag"] == jsonstat.HIDDEN)).any()]
    bad += [n for n in counts if (both[n].is_not_null() & (both[n].cast(pl.Int64) != both[f"{n}__vault"])).any()]
    return [f"the vault copy does not match the published release in {', '.join(bad)}"] if bad else []


def audit_files(folder: Path, *, label: str | None = None, lp: bool = True, formats: bool = True) -> list[AuditFinding]:
    """Audit one release folder from its files. ``formats=False`` skips comparing CSV and
    JSON-stat with Parquet cell by cell, ``lp=False`` the LP disclosure audit."""
    label = label or str(folder)
    missing = [f for f in DATA_FILES if not (folder / f).is_file()]
    if missing:
        return [AuditFinding(label, f"files missing: {missing}")]
    try:
        meta = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
        table = pl.read_parquet(folder / "data.parquet")
    except Exception as exc:  # unreadable files are a finding, not a crash of the audit
        return [AuditFinding(label, f"unreadable: {exc}")]
    problems = check_public_table(table, meta["measures"])
    hidden = {m["name"]: int((table[f"{m['name']}_flag"] == jsonstat.HIDDEN).sum()) for m in meta["measures"]}
    if hidden != meta["disclosure"]["hidden_cells"]:
        problems.append(f"metadata counts {meta['disclosure']['hidden_cells']} hidden cells, the data {hidden}")
    if formats:
        problems += _compare_formats(folder, table, meta)
    if lp and not problems:
        problems += _lp_audit(table, meta)
    return [AuditFinding(label, p) for p in problems]


def _compare_formats(folder: Path, table: pl.DataFrame, meta: Mapping[str, Any]) -> list[str]:
    """data.csv and data.json hold exactly the cells, values and flags of data.parquet."""
    out = []
    measures = [m["name"] for m in meta["measures"]]
    keys = ["geo_code", *[d["name"] for d in meta["dimensions"][1:]]]
    try:
        csv = pl.read_csv(folder / "data.csv", infer_schema=False)
    except Exception as exc:
        return [f"data.csv unreadable: {exc}"]
    if csv.height != table.height or csv.columns != table.columns:
        out.append("data.csv and data.parquet differ in shape or columns")
    else:
        for m in measures:
            a, b = table[m].cast(pl.Float64), csv[m].cast(pl.Float64, strict=False)
            same = (a.is_null() & b.is_null()) | ((a - b).abs() < 1e-9)
            if not same.all() or (csv[f"{m}_flag"].fill_null("") != table[f"{m}_flag"]).any():
                out.append(f"data.csv and data.parquet differ in {m}")
    try:
        long = jsonstat.to_long(json.loads((folder / "data.json").read_text(encoding="utf-8")))
    except Exception as exc:
        return out + [f"data.json is not a readable JSON-stat dataset: {exc}"]
    values = table.unpivot(on=measures, index=keys, variable_name="measure", value_name="v")
    flags = table.unpivot(on=[f"{m}_flag" for m in measures], index=keys, variable_name="measure", value_name="f")
    flags = flags.with_columns(pl.col("measure").str.strip_suffix("_flag"))
    both = (values.join(flags, on=[*keys, "measure"])
            .join(long.rename({"geo": "geo_code"}), on=[*keys, "measure"], how="full", coalesce=True))
    v = both["v"].cast(pl.Float64)
    same = ((v.is_null() & both["value"].is_null()) | ((v - both["value"]).abs() < 1e-9)) \
        & (both["f"].fill_null("?") == both["status"].fill_null("?"))
    if both.height != values.height or not same.all():
        out.append("data.json (JSON-stat) and data.parquet differ")
    return out


def _file_dimensions(table: pl.DataFrame, meta: Mapping[str, Any]) -> list[disclosure.Dimension]:
    dims = [disclosure.Dimension("geo_code", geo_parents(table["geo_code"].unique().to_list()))]
    for d in meta["dimensions"][1:]:
        parent = {c["code"]: "total" for c in d["categories"] if c["code"] != "total"} if d.get("total") else None
        dims.append(disclosure.Dimension(d["name"], parent))
    return dims


def _lp_audit(table: pl.DataFrame, meta: Mapping[str, Any]) -> list[str]:
    """The disclosure audit of a published table: what an attacker can derive about each hidden
    count from the published cells. The intervals do not depend on the hidden true values, so
    any integer table matching the published cells stands in for them (found by a MILP)."""
    counts = [m for m in meta["measures"] if m["kind"] == "count" and m.get("rule") != "public"]
    if not counts:
        return []
    dims = _file_dimensions(table, meta)
    measures = [disclosure.CountMeasure(m["name"], m["rule"], m.get("denominator")) for m in counts]
    df = table.select(["geo_code", *[d.name for d in dims[1:]]])
    masks = {m["name"]: (table[f"{m['name']}_flag"] == jsonstat.HIDDEN).to_numpy() for m in counts}
    values = {m["name"]: table[m["name"]].fill_null(0).cast(pl.Int64).to_numpy().astype(float) for m in counts}
    for m in meta["measures"]:  # public denominators
        if m["kind"] == "count" and m.get("rule") == "public":
            values.setdefault(m["name"], table[m["name"]].cast(pl.Int64).to_numpy().astype(float))
    try:
        filled = _feasible_fill(df, dims, counts, values, masks)
    except disclosure.RelationError as exc:  # a tampered file: duplicate rows, unknown codes
        return [f"the published cells do not add up: {exc}"]
    except RuntimeError as exc:
        return [str(exc)]
    public = [m["name"] for m in meta["measures"] if m["kind"] == "count" and m.get("rule") == "public"]
    df = df.with_columns(
        *[table[name].cast(pl.Int64) for name in public],
        *[pl.Series(name, v.round().astype(np.int64)) for name, v in filled.items()],
        *[pl.Series(hidden_col(name), mask) for name, mask in masks.items()],
    )
    try:
        findings = disclosure.audit(df, dims, measures, width=int(meta["disclosure"].get("width", disclosure.WIDTH)),
                                    min_denominator=int(meta["disclosure"].get("min_denominator", disclosure.MIN_DENOMINATOR)))
    except disclosure.RelationError as exc:
        return [f"the published cells do not add up: {exc}"]
    out = []
    for f in findings:
        if f.reason == "primary cell published":
            m = next(c for c in counts if c["name"] == f.measure)
            den = m.get("denominator")
            if den and den in masks:
                # the primary share rule needs the true denominator, hidden here: the audit at
                # publication checked it; from the files only the published ones can be checked
                row = df.filter(*[pl.col(k) == v for k, v in f.cell.items()])
                if row.height and bool(row[hidden_col(den)][0]):
                    continue
        out.append(f"disclosure: {f}")
    return out



def _feasible_fill(df: pl.DataFrame, dims: Sequence[disclosure.Dimension], counts: Sequence[Mapping[str, Any]],
                   values: Mapping[str, np.ndarray], masks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Integer values for the hidden counts satisfying every additive relation with the
    published cells and 0 <= share <= its denominator (a MILP; any solution will do)."""
    matrix = disclosure.build_relations(df, dims).matrix
    hidden = {m["name"]: np.flatnonzero(masks[m["name"]]) for m in counts}
    var: dict[str, np.ndarray] = {}  # cell row -> variable number (-1: published)
    start = 0
    for m in counts:
        v = np.full(df.height, -1, dtype=np.int64)
        v[hidden[m["name"]]] = np.arange(start, start + hidden[m["name"]].size)
        var[m["name"]] = v
        start += hidden[m["name"]].size
    nvar = start
    out = {m["name"]: values[m["name"]].copy() for m in counts}
    if nvar == 0:
        return out
    blocks: list[sp.csr_array] = []
    lo_b: list[np.ndarray] = []
    hi_b: list[np.ndarray] = []
    upper = np.full(nvar, np.inf)
    for m in counts:
        name, h = m["name"], hidden[m["name"]]
        a_h = matrix[:, h].tocsr()
        keep = np.diff(a_h.indptr) > 0
        rhs = -(matrix @ np.where(masks[name], 0.0, values[name]))[keep]
        coo = a_h[keep].tocoo()
        blocks.append(sp.csr_array((coo.data, (coo.row, var[name][h][coo.col])), shape=(int(keep.sum()), nvar)))
        lo_b.append(rhs)
        hi_b.append(rhs)
        den = m.get("denominator")
        if not den:
            continue
        if den not in masks:  # a public denominator bounds the share
            upper[var[name][h]] = values[den][h]
            continue
        dmask = masks[den]
        upper[var[name][h[~dmask[h]]]] = values[den][h[~dmask[h]]]
        rows = np.flatnonzero(masks[name] & dmask)  # both hidden: n - d <= 0
        if rows.size:
            k = np.arange(rows.size)
            blocks.append(sp.csr_array((np.r_[np.ones(rows.size), -np.ones(rows.size)],
                                        (np.r_[k, k], np.r_[var[name][rows], var[den][rows]])), shape=(rows.size, nvar)))
            lo_b.append(np.full(rows.size, -np.inf))
            hi_b.append(np.zeros(rows.size))
        rows = np.flatnonzero(~masks[name] & dmask)  # hidden d >= published n
        if rows.size:
            blocks.append(sp.csr_array((np.ones(rows.size), (np.arange(rows.size), var[den][rows])), shape=(rows.size, nvar)))
            lo_b.append(values[name][rows])
            hi_b.append(np.full(rows.size, np.inf))
    a = sp.vstack(blocks, format="csr")
    res = milp(np.zeros(nvar), constraints=[LinearConstraint(a, np.concatenate(lo_b), np.concatenate(hi_b))],
               integrality=np.ones(nvar), bounds=Bounds(np.zeros(nvar), upper), options={"time_limit": 600})
    if res.x is None:
        raise RuntimeError(f"no integer table matches the published cells ({res.message}): the release is inconsistent")
    for m in counts:
        h = hidden[m["name"]]
        out[m["name"]][h] = np.round(res.x[var[m["name"]][h]])
    return out
