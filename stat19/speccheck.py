"""`stat19 check-specs`: validate everything the engine would read, and report every problem.

The repository and every STAT19_SPEC_PATH directory: each source spec, product spec and DQ suite
through the engine's own loaders, the linked model, every SQL template (it parses, and what it
imports exists), and the references between them (a product's SQL, a suite's table and SQL
checks, code systems). A name defined twice across the roots is a problem too. Each problem is one
line `FILE: field.path: message`, the field path from pydantic's `loc` with list items named by
their `name` where they have one (`tables[icu_stays].columns[fnr].type`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import jinja2
import jinja2.meta
import yaml
from pydantic import ValidationError

from stat19.paths import PROJECT_DIR, SPEC_PATH_VARIABLE, SpecError, SpecPathError

# Vault tables the engine makes itself (not a source's table) that a suite may check.
ENGINE_VAULT_TABLES = {"linkage_report"}
# Spec files that a root may add but not define again, by their directory (names compared).
NAMED_SPEC_DIRS = [("assets", "sources"), ("assets", "products"), ("assets", "codelists"), ("dq_checks",)]


@dataclass(frozen=True)
class Problem:
    file: Path | str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.field}: {self.message}"


def _roots(problems: list[Problem]) -> list[Path]:
    """The spec roots, as paths.spec_roots resolves them, without stopping at a missing one."""
    extra = [Path(p).expanduser().resolve() for p in os.environ.get(SPEC_PATH_VARIABLE, "").split(os.pathsep) if p]
    for p in extra:
        if not p.is_dir():
            problems.append(Problem(SPEC_PATH_VARIABLE, str(p), "directory does not exist"))
    return list(dict.fromkeys([PROJECT_DIR, *[p for p in extra if p.is_dir()]]))


def _duplicates(roots: list[Path], problems: list[Problem]) -> None:
    """A name defined in two roots: named spec files by name, anything under sql/ by its path."""
    for parts in NAMED_SPEC_DIRS:
        seen: dict[str, Path] = {}
        for root in roots:
            for path in sorted(root.joinpath(*parts).glob("*.yaml")):
                if path.name in seen:
                    problems.append(Problem(path, "name", f"{'/'.join(parts)}/{path.name} is defined already in {seen[path.name]}"))
                seen.setdefault(path.name, path)
    seen = {}
    for root in roots:
        for path in sorted(p for p in (root / "sql").rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            rel = path.relative_to(root).as_posix()
            if rel in seen:
                problems.append(Problem(path, "name", f"{rel} is defined already in {seen[rel]}"))
            seen.setdefault(rel, path)


def _field(loc: tuple, doc: object) -> str:
    """pydantic's loc as a path, a list item named by its `name` where it has one."""
    parts: list[str] = []
    node = doc
    for item in loc:
        if isinstance(item, int):
            name = node[item].get("name") if isinstance(node, list) and item < len(node) and isinstance(node[item], dict) else None
            parts[-1:] = [f"{parts[-1] if parts else ''}[{name if name is not None else item}]"]
            node = node[item] if isinstance(node, list) and item < len(node) else None
        else:
            parts.append(str(item))
            node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts) or "(spec)"


# A model-wide message of the source spec that names its table and column.
_WHERE = re.compile(r"^(?:Value error, )?source \w+, table (\w+), column (\w+): (.*)$", re.S)


def _load_errors(path: Path, doc: object, exc: Exception) -> list[Problem]:
    """One problem per error of a loader's exception (pydantic's, or the loader's own)."""
    cause = exc.__cause__
    if isinstance(cause, ValidationError):
        out = []
        for e in cause.errors():
            message = e["msg"]
            field = _field(tuple(e["loc"]), doc)
            if m := _WHERE.match(message):
                field, message = f"tables[{m[1]}].columns[{m[2]}]", m[3]
            elif e["type"] != "missing" and not isinstance(e.get("input"), (dict, list, type(None))):
                message += f" (got {e['input']!r})"
            out.append(Problem(path, field, message.removeprefix("Value error, ")))
        return out
    message = str(exc).removeprefix(f"invalid source spec {path}: ").removeprefix(f"invalid product spec {path}: ")
    message = message.removeprefix(f"invalid DQ suite {path}: ")
    field = "name" if "must equal the file name" in message else "sql" if "its SQL" in message else "(spec)"
    return [Problem(path, field, message)]


def _unknown_code_systems(path: Path, doc: object, systems: set[str]) -> list[Problem]:
    """Columns naming a code system no assets/code_systems.yaml defines (pydantic reaches this
    check only when every field is valid, so it is made here too)."""
    out = []
    for t in (doc or {}).get("tables") or [] if isinstance(doc, dict) else []:
        for c in (t or {}).get("columns") or [] if isinstance(t, dict) else []:
            if isinstance(c, dict) and c.get("code_system") and c["code_system"] not in systems:
                out.append(Problem(path, f"tables[{t.get('name')}].columns[{c.get('name')}].code_system",
                                   f"unknown code system {c['code_system']!r} (known: {', '.join(sorted(systems))})"))
    return out


def _yaml(path: Path, problems: list[Problem]) -> object | None:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        problems.append(Problem(path, where, f"not YAML: {getattr(exc, 'problem', None) or exc}"))
        return None


def _templates(roots: list[Path], problems: list[Problem]) -> int:
    """Every template under sql/ parses, and what it imports or includes exists."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([r / "sql" for r in roots]), trim_blocks=True,
                             lstrip_blocks=True)
    known = {p.relative_to(r / "sql").as_posix() for r in roots for p in (r / "sql").rglob("*") if p.is_file()}
    n = 0
    for root in roots:
        for path in sorted((root / "sql").rglob("*.j2")):
            n += 1
            try:
                ast = env.parse(path.read_text(encoding="utf-8"), name=path.name, filename=str(path))
            except jinja2.TemplateSyntaxError as exc:
                problems.append(Problem(path, f"line {exc.lineno}", f"Jinja syntax error: {exc.message}"))
                continue
            here = path.parent.relative_to(root / "sql").as_posix()
            for ref in jinja2.meta.find_referenced_templates(ast):
                # sql/dq/ templates are loaded from sql/dq/ itself, the others from sql/
                if ref is not None and ref not in known and f"{here}/{ref}" not in known:
                    problems.append(Problem(path, "import", f"template {ref!r} does not exist under sql/"))
    return n


def check_specs() -> tuple[list[Problem], str]:
    """Every problem of the specs the engine would read, and a one-line summary."""
    from stat19 import specs
    from stat19.dq import load_suite
    from stat19.linkage import linked_model_spec
    from stat19.products import load_product_spec

    problems: list[Problem] = []
    roots = _roots(problems)
    _duplicates(roots, problems)
    if problems:
        # the engine refuses these spec roots as a whole: report them, not each file's echo of them
        try:
            from stat19.paths import spec_roots
            spec_roots()
        except SpecPathError:
            problems.append(Problem(SPEC_PATH_VARIABLE, "(roots)", "the engine refuses these spec roots: "
                                    "fix the names defined twice, then check again"))
            return problems, ""

    # code systems: each name once, each pattern a regular expression
    systems: dict[str, Path] = {}
    for root in roots:
        path = root / "assets" / "code_systems.yaml"
        if path.is_file() and isinstance(doc := _yaml(path, problems), dict):
            for name, pattern in doc.items():
                if name in systems:
                    problems.append(Problem(path, name, f"code system defined already in {systems[name]}"))
                try:
                    re.compile(str(pattern))
                except re.error as exc:
                    problems.append(Problem(path, name, f"not a regular expression: {exc}"))
                systems.setdefault(name, path)
    specs.code_systems.cache_clear()  # read them as they are now

    def each(*parts: str) -> list[Path]:
        return [p for root in roots for p in sorted(root.joinpath(*parts).glob("*.yaml"))]

    tables: set[str] = set()
    sources = each("assets", "sources")
    for path in sources:
        doc = _yaml(path, problems)
        if doc is None and path.stat().st_size:
            continue
        # a suite's table is checked against the tables named, even in a spec that does not load
        tables |= {t["name"] for t in (doc.get("tables") or []) if isinstance(t, dict) and "name" in t} \
            if isinstance(doc, dict) else set()
        unknown = _unknown_code_systems(path, doc, set(systems))
        problems += unknown
        try:
            specs.load_source_spec(path)
        except ValueError as exc:  # an unknown code system is reported above, with its field
            problems += [p for p in _load_errors(path, doc, exc) if not (unknown and "unknown code system" in p.message)]

    if not problems:  # the sources as a set: one population register, every part claimed once
        specs.source_specs.cache_clear()
        try:
            problems += [Problem(*p) for p in specs.check_declared_parts()]
        except SpecError as exc:
            problems.append(Problem("assets/sources", "role", str(exc)))

    products = each("assets", "products")
    for path in products:
        doc = _yaml(path, problems)
        if doc is None and path.stat().st_size:
            continue
        try:
            load_product_spec(path)
        except ValueError as exc:
            problems += _load_errors(path, doc, exc)

    linked = [p.name.removesuffix(".sql.j2") for root in roots for p in sorted((root / "sql" / "linked").glob("*.sql.j2"))
              if not p.name.startswith("_")]
    try:
        model = linked_model_spec()
    except (ValueError, yaml.YAMLError) as exc:
        problems.append(Problem("assets/linked.yaml", "tables", str(exc).replace("\n", " ")))
        model = {"tables": {}}
    described = set((model or {}).get("tables") or {})
    for root in roots:
        for path in sorted((root / "sql" / "linked").glob("*.sql.j2")):
            table = path.name.removesuffix(".sql.j2")
            if not table.startswith("_") and table not in described:
                problems.append(Problem(path, f"tables.{table}", "the linked table is not described in any assets/linked.yaml"))

    suites = each("dq_checks")
    checks = {p.name.removesuffix(".sql.j2") for root in roots for p in (root / "sql" / "dq").glob("*.sql.j2")}
    seen: dict[tuple[str, str], Path] = {}
    for path in suites:
        doc = _yaml(path, problems)
        if doc is None and path.stat().st_size:
            continue
        try:
            suite = load_suite(path)
        except ValueError as exc:
            problems += _load_errors(path, doc, exc)
            continue
        known = tables | ENGINE_VAULT_TABLES if suite.database == "vault" else set(linked) | described
        if suite.table not in known:
            problems.append(Problem(path, "table", f"no {suite.database} table {suite.table!r}"))
        for e in suite.expectations:
            if e.sql and e.sql not in checks:
                problems.append(Problem(path, f"expectations[{e.name}].sql", f"no template sql/dq/{e.sql}.sql.j2"))
            if (suite.asset, e.name) in seen:
                problems.append(Problem(path, f"expectations[{e.name}].name",
                                        f"check name used already on {suite.asset} in {seen[(suite.asset, e.name)]}"))
            seen.setdefault((suite.asset, e.name), path)

    n_templates = _templates(roots, problems)
    summary = (f"check-specs: {len(sources)} sources, {len(products)} products, {len(suites)} suites, "
               f"{len(linked)} linked tables, {n_templates} templates in {len(roots)} spec roots: no problems")
    return problems, summary
