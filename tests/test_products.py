"""Products on small hand-built linked tables (docs/linked_model.md), every value checked by hand.

The builder ``Linked`` creates the linked tables in an in-memory DuckDB; test_publish.py uses it
too. Kommuner used: 0301 Oslo (fylke 03), 4601 Bergen (fylke 46), 1103 Stavanger (fylke 11).
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import duckdb
import polars as pl
import pytest

from stat19.reference import install_reference_tables

D0 = date(2000, 1, 1)  # "known since forever": the delivery date of background rows

SCHEMA = {
    "persons": "pid VARCHAR, birth_year INTEGER, birth_month INTEGER, sex VARCHAR, in_freg BOOLEAN, id_kind VARCHAR",
    "person_birth_dates": "pid VARCHAR, birth_date DATE",
    "residences": "pid VARCHAR, status VARCHAR, kommune_original VARCHAR, kommune_2024 VARCHAR, fylke_2024 VARCHAR, "
                  "valid_from DATE, valid_to DATE, _known_from DATE, _known_to DATE",
    "vaccinations": "pid VARCHAR, vaccination_id VARCHAR, vaccine_code VARCHAR, vaccine_group VARCHAR, dose_number BIGINT, "
                    "vaccination_date DATE, kommune_original VARCHAR, kommune_2024 VARCHAR, fylke_2024 VARCHAR, "
                    "_known_from DATE, _known_to DATE",
    "cases": "pid VARCHAR, msis_id VARCHAR, disease VARCHAR, sampling_date DATE, diagnosis_date DATE, notification_date DATE, "
             "infected_abroad BOOLEAN, status VARCHAR, kommune_original VARCHAR, kommune_2024 VARCHAR, fylke_2024 VARCHAR, "
             "_known_from DATE, _known_to DATE",
    "lab_results": "pid VARCHAR, lab_result_id VARCHAR, lab_id VARCHAR, pathogen VARCHAR, method VARCHAR, sampling_date DATE, "
                   "result VARCHAR, kommune_original VARCHAR, kommune_2024 VARCHAR, fylke_2024 VARCHAR, "
                   "_known_from DATE, _known_to DATE",
    "hospital_episodes": "pid VARCHAR, episode_id VARCHAR, health_trust VARCHAR, admission_date DATE, discharge_date DATE, "
                         "care_level BIGINT, main_diagnosis VARCHAR, secondary_diagnoses VARCHAR[], icu BOOLEAN, "
                         "emergency BOOLEAN, _known_from DATE, _known_to DATE",
    "primary_care_contacts": "pid VARCHAR, claim_id VARCHAR, contact_date DATE, practitioner_type VARCHAR, contact_mode VARCHAR, "
                             "icpc2 VARCHAR[], takst VARCHAR[], kommune_original VARCHAR, kommune_2024 VARCHAR, "
                             "fylke_2024 VARCHAR, _known_from DATE, _known_to DATE",
    "births": "mother_pid VARCHAR, child_pid VARCHAR, birth_id VARCHAR, birth_date DATE, gestational_age_days BIGINT, "
              "birth_weight_g BIGINT, plurality BIGINT, stillborn BOOLEAN, kommune_original VARCHAR, kommune_2024 VARCHAR, "
              "fylke_2024 VARCHAR, _known_from DATE, _known_to DATE",
    "deaths": "pid VARCHAR, death_id VARCHAR, death_date DATE, underlying_cause VARCHAR, place_of_death VARCHAR, "
              "kommune_original VARCHAR, kommune_2024 VARCHAR, fylke_2024 VARCHAR, _known_from DATE, _known_to DATE",
    "dispensings": "pid VARCHAR, dispensing_id VARCHAR, dispense_date DATE, atc_code VARCHAR, ddd DOUBLE, prescriber_type VARCHAR, "
                   "kommune_original VARCHAR, kommune_2024 VARCHAR, fylke_2024 VARCHAR, _known_from DATE, _known_to DATE",
}


def _geo(kommune: str | None) -> tuple[str | None, str, str]:
    k = kommune or "9999"
    return kommune, k, k[:2]


class Linked:
    """Hand-built linked tables in an in-memory DuckDB (plus ref_* tables)."""

    def __init__(self) -> None:
        self.con = duckdb.connect()
        install_reference_tables(self.con)
        for name, cols in SCHEMA.items():
            self.con.execute(f"CREATE TABLE {name} ({cols})")
        self._ids = itertools.count(1)

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}"

    def insert(self, table: str, **row: object) -> None:
        cols = ", ".join(row)
        self.con.execute(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(row))})", list(row.values()))

    def person(self, birth: date | None, sex: str | None, kommune: str | None = "0301", *,
               resident_from: date = D0, resident_to: date | None = None, known: date = D0,
               pid: str | None = None, in_freg: bool = True) -> str:
        """A person; bosatt in `kommune` from resident_from (None: no residence at all)."""
        pid = pid or self._id("p")
        self.insert("persons", pid=pid, birth_year=birth.year if birth else None,
                    birth_month=birth.month if birth else None, sex=sex, in_freg=in_freg, id_kind="fnr")
        if birth:
            self.insert("person_birth_dates", pid=pid, birth_date=birth)
        if kommune is not None:
            self.residence(pid, kommune, resident_from, resident_to, known=known)
        return pid

    def people(self, n: int, birth: date, sex: str, kommune: str = "0301", **kw: object) -> list[str]:
        return [self.person(birth, sex, kommune, **kw) for _ in range(n)]

    def residence(self, pid: str, kommune: str, valid_from: date, valid_to: date | None = None, *,
                  status: str = "bosatt", known: date = D0, known_to: date | None = None) -> None:
        orig, k, f = _geo(kommune)
        self.insert("residences", pid=pid, status=status, kommune_original=orig, kommune_2024=k, fylke_2024=f,
                    valid_from=valid_from, valid_to=valid_to, _known_from=known, _known_to=known_to)

    def vaccination(self, pid: str, day: date, code: str = "J07BN01", group: str | None = "covid19", *,
                    known: date | None = None, known_to: date | None = None, kommune: str | None = None) -> None:
        orig, k, f = _geo(kommune)
        self.insert("vaccinations", pid=pid, vaccination_id=self._id("v"), vaccine_code=code, vaccine_group=group,
                    dose_number=1, vaccination_date=day, kommune_original=orig, kommune_2024=k, fylke_2024=f,
                    _known_from=known or day, _known_to=known_to)

    def case(self, pid: str | None, disease: str, sampling: date | None, *, diagnosis: date | None = None,
             status: str = "active", known: date | None = None, known_to: date | None = None,
             msis_id: str | None = None, kommune: str | None = None) -> str:
        msis_id = msis_id or self._id("m")
        orig, k, f = _geo(kommune)
        day = sampling or diagnosis
        assert day is not None
        self.insert("cases", pid=pid, msis_id=msis_id, disease=disease, sampling_date=sampling,
                    diagnosis_date=diagnosis or day, notification_date=day, infected_abroad=False, status=status,
                    kommune_original=orig, kommune_2024=k, fylke_2024=f, _known_from=known or day, _known_to=known_to)
        return msis_id

    def lab(self, pid: str | None, pathogen: str, day: date, result: str = "positive", *, known: date | None = None) -> None:
        orig, k, f = _geo(None)
        self.insert("lab_results", pid=pid, lab_result_id=self._id("l"), lab_id="L1", pathogen=pathogen, method="pcr",
                    sampling_date=day, result=result, kommune_original=orig, kommune_2024=k, fylke_2024=f,
                    _known_from=known or day, _known_to=None)

    def episode(self, pid: str | None, day: date, diagnosis: str = "J189", *, care_level: int = 1, icu: bool = False,
                emergency: bool = True, known: date | None = None, known_to: date | None = None) -> None:
        self.insert("hospital_episodes", pid=pid, episode_id=self._id("e"), health_trust="HT", admission_date=day,
                    discharge_date=day + timedelta(days=3), care_level=care_level, main_diagnosis=diagnosis,
                    secondary_diagnoses=[], icu=icu, emergency=emergency, _known_from=known or day, _known_to=known_to)

    def claim(self, pid: str | None, day: date, practitioner: str = "fastlege", mode: str = "oppmote",
              icpc2: list[str] | None = None, *, known: date | None = None, kommune: str | None = None) -> None:
        orig, k, f = _geo(kommune)
        self.insert("primary_care_contacts", pid=pid, claim_id=self._id("c"), contact_date=day,
                    practitioner_type=practitioner, contact_mode=mode, icpc2=icpc2 or ["A01"], takst=["2ad"],
                    kommune_original=orig, kommune_2024=k, fylke_2024=f, _known_from=known or day, _known_to=None)

    def birth(self, mother: str | None, day: date, gestation: int = 280, *, stillborn: bool = False,
              plurality: int = 1, known: date | None = None, kommune: str | None = None) -> None:
        orig, k, f = _geo(kommune)
        self.insert("births", mother_pid=mother, child_pid=None if stillborn else self._id("c"),
                    birth_id=self._id("b"), birth_date=day, gestational_age_days=gestation, birth_weight_g=3500,
                    plurality=plurality, stillborn=stillborn, kommune_original=orig, kommune_2024=k, fylke_2024=f,
                    _known_from=known or day, _known_to=None)

    def death(self, pid: str | None, day: date, *, known: date | None = None, known_to: date | None = None,
              death_id: str | None = None, kommune: str | None = None, freg: bool = True) -> None:
        """A death in DÅR and (freg=True) the Folkeregister: the bosatt row ends on the death date."""
        orig, k, f = _geo(kommune)
        self.insert("deaths", pid=pid, death_id=death_id or self._id("d"), death_date=day, underlying_cause="I219",
                    place_of_death="hospital", kommune_original=orig, kommune_2024=k, fylke_2024=f,
                    _known_from=known or day, _known_to=known_to)
        if freg and pid is not None:
            self.con.execute("UPDATE residences SET valid_to = ? WHERE pid = ? AND status = 'bosatt' AND valid_to IS NULL",
                             [day, pid])
            home = self.con.execute("SELECT kommune_2024 FROM residences WHERE pid = ? ORDER BY valid_from DESC LIMIT 1",
                                    [pid]).fetchone()
            self.residence(pid, home[0] if home else "0301", day, status="doed")

    def dispensing(self, pid: str | None, day: date, atc: str = "J01CA04", ddd: float | None = 1.0, *,
                   known: date | None = None, kommune: str | None = None) -> None:
        orig, k, f = _geo(kommune)
        self.insert("dispensings", pid=pid, dispensing_id=self._id("x"), dispense_date=day, atc_code=atc, ddd=ddd,
                    prescriber_type="fastlege", kommune_original=orig, kommune_2024=k, fylke_2024=f,
                    _known_from=known or day, _known_to=None)


def cell(df: pl.DataFrame, geo: str = "NO", **dims: str) -> dict:
    """The one row of a release with these codes."""
    out = df.filter(pl.col("geo_code") == geo, *[pl.col(k) == v for k, v in dims.items()])
    assert out.height == 1, (geo, dims, out.height)
    return out.row(0, named=True)


def hidden_cells(df: pl.DataFrame) -> int:
    return sum(int(df[c].sum()) for c in df.columns if c.endswith("_hidden"))


def random_linked(seed: int = 1, persons: int = 300, r: date = date(2026, 2, 10), days: int = 14) -> Linked:
    """A small random world (for invariants, not hand-checked values): events within `days` before R."""
    import random

    rnd = random.Random(seed)
    L = Linked()
    kommuner = ["0301", "4601", "1103", "3401", "5001"]
    start = r - timedelta(days=days)

    def day() -> date:
        return start + timedelta(days=rnd.randrange(days + 1))

    for _ in range(persons):
        p = L.person(date(1930, 1, 1) + timedelta(days=rnd.randrange(365 * 95)), rnd.choice(["male", "female"]),
                     rnd.choice(kommuner))
        if rnd.random() < 0.5:
            L.vaccination(p, date(2025, 1, 1) + timedelta(days=rnd.randrange(400)),
                          group=rnd.choice(["covid19", "influenza", "pertussis"]))
        if rnd.random() < 0.15:
            L.case(p, rnd.choice(["covid19", "hiv", "pertussis", "tuberculosis"]), day())
        if rnd.random() < 0.1:
            L.episode(p, day(), icu=rnd.random() < 0.3)
        if rnd.random() < 0.1:
            L.lab(p, rnd.choice(["sars-cov-2", "rsv"]), day())
        if rnd.random() < 0.2:
            L.dispensing(p, day(), ddd=rnd.choice([1.5, 7, 10.333]))
        if rnd.random() < 0.3:
            L.claim(p, day(), rnd.choice(["fastlege", "legevakt"]), icpc2=[rnd.choice(["R05", "A01"])])
        if rnd.random() < 0.05:
            L.birth(p, day())
        if rnd.random() < 0.03:
            L.death(p, day())
    # a case of a person without residence or kommune: the unknown units 99/9999
    L.case(L.person(date(1980, 1, 1), "female", None), "covid19", r - timedelta(days=1))
    L.case(None, "covid19", day())  # nobody's case: excluded (no age)
    return L


# --------------------------------------------------------------------------------------------
# Specs


def test_every_spec_loads_and_has_its_sql():
    from stat19.products import product_specs

    specs = product_specs()
    assert sorted(specs) == sorted([
        "vaccine_coverage", "pertussis_pregnancy", "mortality_weekly", "sari_weekly", "msis_cases_weekly",
        "antibiotics_monthly", "primary_care_monthly"])
    for spec in specs.values():
        assert spec.choices, f"{spec.name}: the choices made where products.md is silent belong in the spec"


@pytest.mark.parametrize("change, message", [
    ({"measures": [{"kind": "count", "name": "x", "label": "x", "definition": "x", "unit": "x", "rule": "share"}]},
     "denominator"),
    ({"dimensions": [{"name": "age_group", "label": "a", "kind": "age_group", "categories": [{"code": "0-4"}, {"code": "6+"}]}]},
     "should start at 5"),
    ({"dimensions": [{"name": "age_group", "label": "a", "kind": "age_group", "categories": [{"code": "0-4"}, {"code": "5-9"}]}]},
     "open"),
    ({"geography": {"levels": ["national", "kommune"], "residence": "x"}}, "levels"),
    ({"measures": [{"kind": "rate", "name": "r", "label": "r", "definition": "r", "unit": "r", "numerator": "nope",
                    "denominator": "population"}]}, "nope"),
])
def test_invalid_specs_are_refused(change, message):
    from stat19.products import ProductSpec, product_specs

    doc = product_specs()["sari_weekly"].model_dump()
    doc.update(change)
    with pytest.raises(ValueError, match=message):
        ProductSpec.model_validate(doc)


def test_a_new_product_is_a_spec_and_sql():
    """Coarser age groups for SARI: a spec change only, the same SQL and engine."""
    from stat19.products import ProductSpec, compute_release, product_specs

    doc = product_specs()["sari_weekly"].model_dump()
    doc["name"] = "sari_weekly_broad"
    doc["sql"] = "products/sari_weekly.sql.j2"
    doc["dimensions"][2]["categories"] = [{"code": "0-64", "label": None}, {"code": "65+", "label": None}]
    spec = ProductSpec.model_validate(doc)
    L = Linked()
    for p in L.people(6, date(1955, 6, 1), "female"):
        L.episode(p, date(2026, 1, 28))
    df, meta = compute_release(L.con, spec, date(2026, 2, 4))
    assert sorted(df["age_group"].unique().to_list()) == ["0-64", "65+", "total"]
    assert cell(df, "NO", iso_week="2026-W05", pathogen="unconfirmed", age_group="65+")["admissions"] == 6


def test_rounding_is_exact_and_half_away_from_zero():
    from decimal import Decimal

    from stat19.products import round_ratio

    # 0.15 and 0.25 are not exact binary floats: naive float rounding gives 0.1 and 0.2
    assert round_ratio([100 * 3, 100 * 5, 100 * 1, 100 * 3, 100 * 1, -1, 1, 0],
                       [2000, 2000, 8, 16, 6, 4, 0, 5], 1) == [0.2, 0.3, 12.5, 18.8, 16.7, -0.3, None, 0.0]
    assert round_ratio([Decimal("0.45")], [1], 1) == [0.5]
    assert round_ratio([-5], [2], 0) == [-3.0]


# --------------------------------------------------------------------------------------------
# vaccine_coverage


def test_vaccine_coverage():
    from stat19.products import compute_release, public_table

    R = date(2026, 1, 15)
    L = Linked()
    women = L.people(30, date(1990, 5, 1), "female", "0301")  # 35 on R: 18-44
    men = L.people(25, date(1950, 6, 1), "male", "4601")  # 75 on R: 75-84
    for p in women[:10]:
        L.vaccination(p, date(2025, 10, 1))  # in the season
    for p in women[10:16]:
        L.vaccination(p, date(2025, 3, 1))  # before the season: ever only
    L.vaccination(women[16], date(2026, 1, 20), known=date(2026, 1, 10))  # dated after R
    L.vaccination(women[17], date(2025, 10, 1), known_to=date(2025, 12, 1))  # deleted before R
    L.vaccination(women[18], date(2025, 10, 1), known=date(2026, 2, 1))  # delivered after R
    L.vaccination(women[19], date(2025, 10, 1), code="J07AB01", group=None)  # no vaccine group
    for p in women[20:28]:
        L.vaccination(p, date(2025, 11, 1), code="J07BB02", group="influenza")
    for p in men[:12]:
        L.vaccination(p, date(2025, 10, 15))
    L.vaccination(men[0], date(2025, 11, 15))  # a second dose counts once
    gone = L.person(date(1990, 5, 1), "female", "0301", resident_to=date(2025, 12, 1))  # emigrated
    L.residence(gone, "0301", date(2025, 12, 1), status="utflyttet")
    L.vaccination(gone, date(2025, 10, 1))
    L.person(date(1990, 5, 1), "female", "0301", known=date(2026, 2, 1))  # registered after R
    L.person(date(1990, 5, 1), None, "0301")  # sex unknown: excluded

    df, meta = compute_release(L.con, "vaccine_coverage", R)
    assert hidden_cells(df) == 0
    assert meta["excluded_records"] == 1
    assert set(df["geo_level"].unique()) == {"national", "fylke", "kommune"}
    assert df.filter(pl.col("geo_code").is_in(["99", "9999"])).height == 0
    assert df.height == 4 * 9 * 3 * (1 + 15 + 357)

    c = cell(df, "NO", vaccine_group="covid19", age_group="total", sex="total")
    assert (c["population"], c["vaccinated_ever"], c["vaccinated_season"]) == (55, 28, 22)
    assert (c["coverage_ever_pct"], c["coverage_season_pct"]) == (50.9, 40.0)
    c = cell(df, "03", vaccine_group="covid19", age_group="18-44", sex="female")
    assert (c["geo_name"], c["population"], c["vaccinated_ever"], c["vaccinated_season"]) == ("Oslo", 30, 16, 10)
    assert (c["coverage_ever_pct"], c["coverage_season_pct"]) == (53.3, 33.3)
    c = cell(df, "0301", vaccine_group="covid19", age_group="total", sex="female")
    assert (c["population"], c["vaccinated_ever"], c["vaccinated_season"]) == (30, 16, 10)
    c = cell(df, "4601", vaccine_group="covid19", age_group="75-84", sex="total")
    assert (c["population"], c["vaccinated_ever"], c["vaccinated_season"], c["coverage_ever_pct"]) == (25, 12, 12, 48.0)
    c = cell(df, "46", vaccine_group="covid19", age_group="75-84", sex="female")
    assert (c["population"], c["vaccinated_ever"], c["coverage_ever_pct"]) == (0, 0, None)
    c = cell(df, "NO", vaccine_group="influenza", age_group="18-44", sex="total")
    assert (c["population"], c["vaccinated_ever"], c["vaccinated_season"], c["coverage_season_pct"]) == (30, 8, 8, 26.7)
    c = cell(df, "NO", vaccine_group="pneumococcal", age_group="total", sex="male")
    assert (c["population"], c["vaccinated_ever"]) == (25, 0)
    c = cell(df, "1103", vaccine_group="pertussis", age_group="0-4", sex="male")
    assert (c["geo_name"], c["population"], c["vaccinated_ever"]) == ("Stavanger", 0, 0)

    pub = public_table("vaccine_coverage", df)
    assert pub.columns[:6] == ["geo_level", "geo_code", "geo_name", "vaccine_group", "age_group", "sex"]
    assert pub.columns[6:10] == ["population", "population_flag", "vaccinated_ever", "vaccinated_ever_flag"]
    assert pub.filter(pl.col("geo_code") == "NO").row(0, named=True)["vaccinated_ever_flag"] == ""


def test_small_cells_are_hidden_with_their_rates():
    from stat19.products import compute_release, public_table

    L = Linked()
    women = L.people(30, date(1990, 5, 1), "female", "0301")
    men = L.people(25, date(1950, 6, 1), "male", "4601")
    for p in women[:10] + men[:3]:  # 3 of 25: primary
        L.vaccination(p, date(2025, 10, 1))
    df, _ = compute_release(L.con, "vaccine_coverage", date(2026, 1, 15))
    c = cell(df, "4601", vaccine_group="covid19", age_group="75-84", sex="male")
    assert c["vaccinated_ever"] == 3 and c["vaccinated_ever_hidden"] and c["coverage_ever_pct_hidden"]
    # secondary: 46 = 4601 alone, and the national total would give 3 away from Oslo's 10
    assert cell(df, "46", vaccine_group="covid19", age_group="75-84", sex="male")["vaccinated_ever_hidden"]
    pub = public_table("vaccine_coverage", df)
    row = pub.filter(pl.col("geo_code") == "4601", pl.col("vaccine_group") == "covid19",
                     pl.col("age_group") == "75-84", pl.col("sex") == "male").row(0, named=True)
    assert (row["vaccinated_ever"], row["vaccinated_ever_flag"], row["coverage_ever_pct"], row["coverage_ever_pct_flag"]) == (None, ":", None, ":")
    assert (row["population"], row["population_flag"]) == (25, "")


def test_residence_as_known_on_R():
    """A move reported on 20 January (back-dated to 1 January) does not count on 15 January;
    it does on 25 January."""
    from stat19.products import compute_release

    L = Linked()
    L.people(25, date(1990, 5, 1), "female", "4601")
    mover = L.person(date(1990, 5, 1), "female", None)
    L.residence(mover, "4601", D0, known=D0, known_to=date(2026, 1, 20))  # what we knew until 20 January
    L.residence(mover, "4601", D0, date(2026, 1, 1), known=date(2026, 1, 20))  # then: moved on 1 January ...
    L.residence(mover, "0301", date(2026, 1, 1), known=date(2026, 1, 20))  # ... to Oslo
    before, _ = compute_release(L.con, "vaccine_coverage", date(2026, 1, 15))
    after, _ = compute_release(L.con, "vaccine_coverage", date(2026, 1, 25))
    assert cell(before, "4601", vaccine_group="covid19", age_group="total", sex="total")["population"] == 26
    assert cell(before, "0301", vaccine_group="covid19", age_group="total", sex="total")["population"] == 0
    assert cell(after, "4601", vaccine_group="covid19", age_group="total", sex="total")["population"] == 25
    assert cell(after, "0301", vaccine_group="covid19", age_group="total", sex="total")["population"] == 1


def test_residences_through_the_linked_zone_macro():
    """The lead's linked zone keeps residence history behind residences_as_of(R)."""
    from stat19.products import compute_release, residences_relation

    L = Linked()
    L.people(25, date(1990, 5, 1), "female", "4601")
    L.person(date(1990, 5, 1), "female", "0301", known=date(2026, 2, 1))  # known after R
    L.con.execute("ALTER TABLE residences RENAME TO residence_history")
    L.con.execute("CREATE TABLE residences AS SELECT * EXCLUDE (_known_from, _known_to) FROM residence_history")
    L.con.execute("""CREATE MACRO residences_as_of(as_of) AS TABLE
                     SELECT * EXCLUDE (_known_from, _known_to) FROM residence_history
                     WHERE _known_from <= CAST(as_of AS DATE) AND (_known_to IS NULL OR _known_to > CAST(as_of AS DATE))""")
    assert residences_relation(L.con, date(2026, 1, 15)).startswith("residences_as_of(")
    L.con.execute("UPDATE residence_history SET valid_from = NULL")  # the earliest row: "since birth"
    df, _ = compute_release(L.con, "vaccine_coverage", date(2026, 1, 15))
    assert cell(df, "NO", vaccine_group="covid19", age_group="total", sex="total")["population"] == 25


# --------------------------------------------------------------------------------------------
# pertussis_pregnancy


def test_pertussis_pregnancy():
    from stat19.products import compute_release

    R = date(2026, 3, 10)
    L = Linked()
    mothers = L.people(24, date(1995, 1, 1), "female", "0301")  # 31 on the birth date: 30-34
    jan = date(2026, 1, 10)
    for i, p in enumerate(mothers):
        if i < 2:  # twins: two rows, one event; the larger gestational age sets the window
            L.birth(p, jan, gestation=250, plurality=2)
            L.birth(p, jan, gestation=260, plurality=2)
        else:
            L.birth(p, jan, stillborn=(i == 2))
    for p in mothers[2:12]:
        L.vaccination(p, date(2025, 11, 1), code="J07CA02", group="pertussis")
    L.vaccination(mothers[0], jan - timedelta(days=260), code="J07AJ52", group="pertussis")  # first day of the window
    L.vaccination(mothers[1], jan - timedelta(days=261), code="J07AJ52", group="pertussis")  # the day before
    L.vaccination(mothers[12], jan, code="J07CA02", group="pertussis")  # on the birth date
    L.vaccination(mothers[13], date(2025, 3, 1), code="J07CA02", group="pertussis")  # before the pregnancy
    L.vaccination(mothers[14], date(2025, 11, 1), code="J07CA02", group="pertussis", known_to=date(2026, 1, 1))  # deleted
    L.vaccination(mothers[15], date(2025, 11, 1), code="J07BN01", group="covid19")  # another group
    young = L.people(20, date(2003, 6, 1), "female", "4601")  # 22: <25
    for p in young:
        L.birth(p, date(2026, 2, 5))
    for p in young[:5]:
        L.vaccination(p, date(2025, 12, 1), code="J07CA02", group="pertussis")
    L.birth(young[5], date(2026, 3, 1), known=date(2026, 3, 15))  # known after R
    L.birth(L.person(None, "female", "0301"), jan)  # mother's age unknown: excluded

    df, meta = compute_release(L.con, "pertussis_pregnancy", R)
    assert hidden_cells(df) == 0
    assert meta["excluded_records"] == 1
    assert sorted(df["month"].unique().to_list()) == ["2026-01", "2026-02", "2026-03"]
    assert set(df["geo_level"].unique()) == {"national", "fylke"}
    c = cell(df, "NO", month="2026-01", mother_age_group="total")
    assert (c["births"], c["vaccinated_in_pregnancy"], c["vaccinated_pct"]) == (24, 12, 50.0)
    c = cell(df, "03", month="2026-01", mother_age_group="30-34")
    assert (c["births"], c["vaccinated_in_pregnancy"]) == (24, 12)
    c = cell(df, "46", month="2026-02", mother_age_group="<25")
    assert (c["births"], c["vaccinated_in_pregnancy"], c["vaccinated_pct"]) == (20, 5, 25.0)
    c = cell(df, "NO", month="2026-03", mother_age_group="total")
    assert (c["births"], c["vaccinated_in_pregnancy"], c["vaccinated_pct"]) == (0, 0, None)


def test_births_of_mothers_not_resident_count_by_the_record_kommune():
    from stat19.products import compute_release

    L = Linked()
    for p in L.people(20, date(1995, 1, 1), "female", "0301"):
        L.birth(p, date(2026, 1, 10))
    visitor = L.person(date(1995, 1, 1), "female", None)
    L.birth(visitor, date(2026, 1, 12), kommune="1103")
    L.birth(L.person(date(1995, 1, 1), "female", None), date(2026, 1, 12))  # no kommune anywhere
    df, _ = compute_release(L.con, "pertussis_pregnancy", date(2026, 1, 31))
    assert cell(df, "11", month="2026-01", mother_age_group="30-34")["births"] == 1
    assert cell(df, "99", month="2026-01", mother_age_group="30-34")["births"] == 1
    assert cell(df, "NO", month="2026-01", mother_age_group="total")["births"] == 22
    assert cell(df, "11", month="2026-01", mother_age_group="30-34")["births_hidden"]


# --------------------------------------------------------------------------------------------
# mortality_weekly


def test_mortality_weekly():
    from stat19.products import compute_release

    R = date(2026, 1, 21)  # Wednesday of 2026-W04
    L = Linked()
    men = L.people(40, date(1940, 1, 1), "male", "0301")  # 86: 85+
    for p in men[:6]:
        L.death(p, date(2026, 1, 14))  # Wednesday of W03
    L.death(men[6], date(2026, 1, 12))  # on the Monday: bosatt the day before, counts
    # a death reported, then updated (a second version): counts once
    L.death(men[7], date(2026, 1, 15), death_id="D1", known=date(2026, 1, 16), known_to=date(2026, 1, 18))
    L.insert("deaths", pid=men[7], death_id="D1", death_date=date(2026, 1, 15), underlying_cause="I219",
             place_of_death="home", kommune_original="0301", kommune_2024="0301", fylke_2024="03",
             _known_from=date(2026, 1, 18), _known_to=None)
    L.death(men[7], date(2026, 1, 16), freg=False)  # a second death record of the same person
    L.death(men[8], date(2026, 1, 15), known=date(2026, 1, 25), freg=False)  # reported after R
    L.death(L.person(None, "male", "0301"), date(2026, 1, 14))  # age unknown: excluded

    df, meta = compute_release(L.con, "mortality_weekly", R)
    assert meta["excluded_records"] == 1
    assert sorted(df["iso_week"].unique().to_list()) == ["2026-W03", "2026-W04"]
    assert hidden_cells(df) == 0
    for geo in ("NO", "03"):
        c = cell(df, geo, iso_week="2026-W03", age_group="85+", sex="male")
        assert (c["deaths"], c["population"], c["deaths_per_100k"]) == (8, 40, 20000.0)
        assert (c["expected_deaths"], c["excess_deaths"]) == (None, None)
    c = cell(df, "NO", iso_week="2026-W03", age_group="total", sex="total")
    assert (c["deaths"], c["population"]) == (8, 40)
    c = cell(df, "NO", iso_week="2026-W04", age_group="total", sex="total")
    assert (c["deaths"], c["population"], c["deaths_per_100k"]) == (0, 32, 0.0)


def _deaths_in_week_10(L: Linked, kommune: str, sex: str, counts: dict[int, int]) -> None:
    people = L.people(60, date(1930, 1, 1), sex, kommune)
    days = {2023: date(2023, 3, 8), 2024: date(2024, 3, 6), 2025: date(2025, 3, 5), 2026: date(2026, 3, 4)}
    it = iter(people)
    for year, n in counts.items():
        for _ in range(n):
            L.death(next(it), days[year])


def test_expected_deaths_from_earlier_years():
    from stat19.products import compute_release

    L = Linked()
    _deaths_in_week_10(L, "0301", "female", {2023: 6, 2024: 5, 2025: 7, 2026: 8})
    df, _ = compute_release(L.con, "mortality_weekly", date(2026, 3, 6))
    weeks = sorted(df["iso_week"].unique().to_list())
    assert weeks[0] == "2023-W10" and weeks[-1] == "2026-W10" and len(weeks) == 3 * 52 + 1
    c = cell(df, "03", iso_week="2026-W10", age_group="85+", sex="female")
    assert (c["deaths"], c["population"]) == (8, 60 - 18)
    assert (c["expected_deaths"], c["excess_deaths"]) == (6.0, 2.0)
    assert not c["expected_deaths_hidden"] and not c["excess_deaths_hidden"]
    c = cell(df, "NO", iso_week="2026-W10", age_group="total", sex="total")
    assert (c["expected_deaths"], c["excess_deaths"]) == (6.0, 2.0)
    c = cell(df, "46", iso_week="2026-W10", age_group="85+", sex="female")
    assert (c["deaths"], c["expected_deaths"], c["excess_deaths"]) == (0, 0.0, 0.0)  # 3 years of zeros
    c = cell(df, "03", iso_week="2026-W09", age_group="85+", sex="female")
    assert (c["deaths"], c["expected_deaths"]) == (0, None)  # 2023-W09 is before the data begins
    c = cell(df, "03", iso_week="2025-W10", age_group="85+", sex="female")
    assert (c["deaths"], c["expected_deaths"], c["excess_deaths"]) == (7, None, None)  # only 2 earlier years


def test_expected_deaths_hidden_when_an_earlier_count_is_small():
    from stat19.products import compute_release

    L = Linked()
    _deaths_in_week_10(L, "4601", "male", {2023: 2, 2024: 6, 2025: 7, 2026: 8})
    df, _ = compute_release(L.con, "mortality_weekly", date(2026, 3, 6))
    c = cell(df, "46", iso_week="2026-W10", age_group="85+", sex="male")
    assert (c["deaths"], c["expected_deaths"], c["excess_deaths"]) == (8, 5.0, 3.0)
    assert not c["deaths_hidden"] and c["expected_deaths_hidden"] and c["excess_deaths_hidden"]


def test_iso_week_53():
    from stat19.products import compute_release

    L = Linked()
    men = L.people(30, date(1940, 1, 1), "male", "0301")
    for p in men[:5]:
        L.death(p, date(2027, 1, 1))  # Friday of 2026-W53
    df, _ = compute_release(L.con, "mortality_weekly", date(2027, 1, 3))
    assert df["iso_week"].unique().to_list() == ["2026-W53"]
    c = cell(df, "NO", iso_week="2026-W53", age_group="85+", sex="male")
    assert (c["deaths"], c["population"], c["expected_deaths"]) == (5, 30, None)
    df, _ = compute_release(L.con, "mortality_weekly", date(2027, 1, 4))  # Monday of 2027-W01
    assert sorted(df["iso_week"].unique().to_list()) == ["2026-W53", "2027-W01"]


# --------------------------------------------------------------------------------------------
# sari_weekly


def test_sari_weekly():
    from stat19.products import compute_release

    R = date(2026, 2, 4)
    L = Linked()
    old = L.people(21, date(1955, 6, 1), "female", "0301")  # 70: 65-79
    young = L.people(6, date(1995, 6, 1), "male", "4601")  # 30: 18-64
    adm = date(2026, 1, 28)  # W05
    for p in old[:6]:  # covid19: sampled 8 days before
        L.episode(p, adm, "J189")
        L.lab(p, "sars-cov-2", adm - timedelta(days=8))
    for p, dx in zip(old[6:11], ["J09", "J101", "J22", "J111", "U071"]):  # influenza: 3 days after
        L.episode(p, adm, dx)
        L.lab(p, "influensa-b" if dx == "J22" else "influensa-a", adm + timedelta(days=3))
    for p in old[11:16]:  # multiple; in intensive care
        L.episode(p, adm, "J189", icu=True)
        L.lab(p, "sars-cov-2", adm - timedelta(days=14))
        L.lab(p, "rsv", adm)
    for p in young[:5]:  # unconfirmed: positive too early, pertussis, a negative
        L.episode(p, adm + timedelta(days=1), "U071")
        L.lab(p, "rsv", adm - timedelta(days=15))
        L.lab(p, "pertussis", adm)
        L.lab(None, "sars-cov-2", adm, result="negative")
    # not SARI admissions
    L.episode(old[16], adm, "J189", care_level=2)
    L.episode(old[17], adm, "J189", emergency=False)
    L.episode(old[18], adm, "J45")
    L.episode(old[19], adm, "U072")
    L.episode(old[20], adm, "J189", known_to=date(2026, 2, 1))  # deleted before R
    L.episode(young[5], adm, "J189", known=date(2026, 2, 5))  # delivered after R

    df, meta = compute_release(L.con, "sari_weekly", R)
    assert hidden_cells(df) == 0 and meta["excluded_records"] == 0
    assert sorted(df["iso_week"].unique().to_list()) == ["2026-W05", "2026-W06"]
    w = "2026-W05"
    expect = {("NO", "covid19", "total"): (6, 0), ("03", "covid19", "65-79"): (6, 0),
              ("NO", "influenza", "65-79"): (5, 0), ("NO", "multiple", "65-79"): (5, 5),
              ("NO", "unconfirmed", "18-64"): (5, 0), ("46", "unconfirmed", "total"): (5, 0),
              ("NO", "rsv", "total"): (0, 0), ("NO", "total", "total"): (21, 5), ("NO", "total", "65-79"): (16, 5),
              ("03", "total", "total"): (16, 5), ("46", "total", "total"): (5, 0), ("11", "total", "total"): (0, 0)}
    for (geo, pathogen, age), (n, icu) in expect.items():
        c = cell(df, geo, iso_week=w, pathogen=pathogen, age_group=age)
        assert (c["admissions"], c["icu_admissions"]) == (n, icu), (geo, pathogen, age)
    assert cell(df, "NO", iso_week="2026-W06", pathogen="total", age_group="total")["admissions"] == 0


# --------------------------------------------------------------------------------------------
# msis_cases_weekly


def test_msis_cases_weekly():
    from stat19.products import compute_release

    R = date(2026, 2, 4)
    L = Linked()
    women = L.people(30, date(1990, 5, 1), "female", "0301")  # 35: 25-44
    men = L.people(25, date(1980, 5, 1), "male", "4601")  # 45: 45-64
    for p in women[:6]:
        L.case(p, "covid19", date(2026, 1, 27))
    L.case(women[6], "covid19", date(2026, 1, 27), status="retracted")
    mid = L.case(women[7], "covid19", date(2026, 1, 27), known=date(2026, 1, 28), known_to=date(2026, 1, 30))
    L.case(women[7], "covid19", date(2026, 1, 27), status="retracted", known=date(2026, 1, 30), msis_id=mid)
    L.case(women[8], "covid19", date(2026, 1, 27), known=date(2026, 2, 5))  # delivered after R
    for p in men[:5]:
        L.case(p, "pertussis", None, diagnosis=date(2026, 1, 28))  # no sampling date: diagnosis week
    for p in women[10:15]:
        L.case(p, "hiv", date(2026, 1, 29))
    L.case(L.person(date(1990, 5, 1), None, "0301"), "covid19", date(2026, 1, 27))  # sex unknown: excluded

    df, meta = compute_release(L.con, "msis_cases_weekly", R)
    assert hidden_cells(df) == 0 and meta["excluded_records"] == 1
    assert sorted(df["iso_week"].unique().to_list()) == ["2026-W05", "2026-W06"]
    assert df.filter(pl.col("geo_level") == "kommune", pl.col("disease").is_in(["hiv", "tuberculosis"])).height == 0
    assert df.filter(pl.col("geo_code").is_in(["99", "9999"])).height == 0
    assert df.height == (12 * 373 + 2 * 16) * 2 * 8 * 3
    w = "2026-W05"
    c = cell(df, "NO", disease="covid19", iso_week=w, age_group="total", sex="total")
    assert (c["cases"], c["population"], c["cases_per_100k"]) == (6, 55, 10909.1)
    c = cell(df, "0301", disease="covid19", iso_week=w, age_group="25-44", sex="female")
    assert (c["cases"], c["population"], c["cases_per_100k"]) == (6, 30, 20000.0)
    c = cell(df, "NO", disease="pertussis", iso_week=w, age_group="45-64", sex="male")
    assert (c["cases"], c["population"], c["cases_per_100k"]) == (5, 25, 20000.0)
    c = cell(df, "03", disease="hiv", iso_week=w, age_group="total", sex="female")
    assert (c["geo_level"], c["cases"], c["population"]) == ("fylke", 5, 30)
    c = cell(df, "NO", disease="measles", iso_week="2026-W06", age_group="total", sex="total")
    assert (c["cases"], c["population"], c["cases_per_100k"]) == (0, 55, 0.0)


def test_cases_of_persons_without_residence_and_the_unknown_unit():
    from stat19.products import compute_release

    L = Linked()
    women = L.people(30, date(1990, 5, 1), "female", "0301")
    for p in women[:6]:
        L.case(p, "covid19", date(2026, 1, 27))
    L.case(L.person(date(1990, 5, 1), "female", None), "covid19", date(2026, 1, 27), kommune="1103")
    L.case(L.person(date(1990, 5, 1), "female", None), "covid19", date(2026, 1, 27))
    df, _ = compute_release(L.con, "msis_cases_weekly", date(2026, 2, 4))
    w = "2026-W05"
    assert cell(df, "1103", disease="covid19", iso_week=w, age_group="25-44", sex="female")["cases"] == 1
    c = cell(df, "9999", disease="covid19", iso_week=w, age_group="25-44", sex="female")
    assert (c["geo_name"], c["cases"], c["population"], c["cases_per_100k"], c["cases_hidden"]) == (
        "Ukjent kommune", 1, 0, None, True)
    assert cell(df, "99", disease="hiv", iso_week=w, age_group="total", sex="total")["cases"] == 0
    assert cell(df, "NO", disease="covid19", iso_week=w, age_group="total", sex="total")["cases"] == 8


# --------------------------------------------------------------------------------------------
# antibiotics_monthly


def test_antibiotics_monthly():
    from stat19.products import compute_release

    R = date(2026, 2, 10)
    L = Linked()
    women = L.people(30, date(1990, 1, 15), "female", "0301")  # 35 on 1 January: 18-64
    for p in women[:8]:
        L.dispensing(p, date(2026, 1, 10), ddd=10)
    for p in women[:2]:
        L.dispensing(p, date(2026, 1, 20), ddd=5)  # a second dispensing: the same person
    L.dispensing(women[9], date(2026, 1, 10), atc="N02BE01", ddd=10)  # not an antibiotic
    visitor = L.person(date(1990, 1, 15), "female", None)  # not bosatt: counts as a dispensing only
    L.dispensing(visitor, date(2026, 1, 12), ddd=10, kommune="0301")
    for p in women[20:25]:
        L.dispensing(p, date(2026, 2, 3), ddd=7)
    L.dispensing(women[26], date(2026, 2, 15), ddd=7, known=date(2026, 2, 9))  # dated after R
    L.dispensing(L.person(None, "female", "0301"), date(2026, 1, 10))  # age unknown: excluded

    df, meta = compute_release(L.con, "antibiotics_monthly", R)
    assert hidden_cells(df) == 0 and meta["excluded_records"] == 1
    assert sorted(df["month"].unique().to_list()) == ["2026-01", "2026-02"]
    assert "ddd" in df.columns
    for geo in ("NO", "03", "0301"):
        c = cell(df, geo, month="2026-01", age_group="18-64", sex="female")
        assert (c["population"], c["persons_treated"], c["dispensings"]) == (30, 8, 11)
        assert (c["persons_per_1000"], c["ddd_per_1000_per_day"]) == (266.7, 107.5)  # 1000*100/30/31
    c = cell(df, "NO", month="2026-02", age_group="total", sex="total")
    assert (c["population"], c["persons_treated"], c["dispensings"]) == (30, 5, 5)
    assert (c["persons_per_1000"], c["ddd_per_1000_per_day"]) == (166.7, 41.7)  # 1000*35/30/28
    c = cell(df, "NO", month="2026-02", age_group="total", sex="male")
    assert (c["population"], c["persons_per_1000"], c["ddd_per_1000_per_day"]) == (0, None, None)


# --------------------------------------------------------------------------------------------
# primary_care_monthly


def test_primary_care_monthly():
    from stat19.products import compute_release

    R = date(2026, 2, 10)
    L = Linked()
    people = L.people(30, date(1980, 1, 1), "female", "0301")
    day = date(2026, 1, 12)
    for i, p in enumerate(people):
        L.claim(p, day, "fastlege", "oppmote", ["R05", "A01"] if i < 25 else ["A01"])
    for p in people[:5]:
        L.dispensing(p, day, known=day)  # same day
    for p in people[5:10]:
        L.dispensing(p, day + timedelta(days=3))  # 3 days after: counts
    for p in people[10:12]:
        L.dispensing(p, day + timedelta(days=4))  # too late
    L.dispensing(people[12], day, atc="R05DA04")  # not an antibiotic
    L.dispensing(people[25], day)  # after a contact that is not respiratory
    for p in people[:6]:
        L.claim(p, date(2026, 1, 20), "nettlege", "tekst", ["A04"])

    df, meta = compute_release(L.con, "primary_care_monthly", R)
    assert hidden_cells(df) == 0 and meta["excluded_records"] == 0
    m = "2026-01"
    c = cell(df, "NO", month=m, practitioner_type="total", contact_mode="total")
    assert (c["population"], c["contacts"], c["respiratory_contacts"], c["respiratory_contacts_with_antibiotic"]) == (30, 36, 25, 10)
    assert (c["contacts_per_1000"], c["antibiotic_share_pct"]) == (1200.0, 40.0)
    c = cell(df, "0301", month=m, practitioner_type="fastlege", contact_mode="oppmote")
    assert (c["population"], c["contacts"], c["respiratory_contacts"], c["respiratory_contacts_with_antibiotic"]) == (30, 30, 25, 10)
    c = cell(df, "03", month=m, practitioner_type="nettlege", contact_mode="total")
    assert (c["population"], c["contacts"], c["respiratory_contacts"], c["antibiotic_share_pct"]) == (30, 6, 0, None)
    c = cell(df, "NO", month="2026-02", practitioner_type="legevakt", contact_mode="video")
    assert (c["population"], c["contacts"], c["contacts_per_1000"]) == (30, 0, 0.0)
    c = cell(df, "4601", month=m, practitioner_type="total", contact_mode="total")
    assert (c["population"], c["contacts"], c["contacts_per_1000"]) == (0, 0, None)


# --------------------------------------------------------------------------------------------
# Invariants on a random world


@pytest.fixture(scope="module")
def random_releases():
    from stat19.products import compute_release, product_specs

    L = random_linked()
    return {name: compute_release(L.con, name, date(2026, 2, 10)) for name in product_specs()}


def test_hiding_rules_hold_everywhere(random_releases):
    from stat19.products import CountSpec, ExcessSpec, RateSpec, product_specs, public_table

    for name, (df, meta) in random_releases.items():
        spec = product_specs()[name]
        assert hidden_cells(df) > 0, name  # the random world has small cells
        for m in spec.measures:
            if not m.published:
                continue
            hidden = df[f"{m.name}_hidden"]
            if isinstance(m, CountSpec) and m.rule != "public":
                small = df[m.name].is_between(1, 4)
                assert not (small & ~hidden).any(), f"{name}.{m.name}: a count of 1-4 published"
            if isinstance(m, RateSpec):
                want = df[f"{m.numerator}_hidden"] if isinstance(spec.measure(m.numerator), CountSpec) else pl.Series([False] * df.height)
                for h in m.hidden_with:
                    want = want | df[f"{h}_hidden"]
                if spec.measure(m.denominator).rule != "public":
                    want = want | df[f"{m.denominator}_hidden"]
                else:  # the rule of products.md: hidden exactly when the numerator is
                    assert m.hidden_with or (hidden == df[f"{m.numerator}_hidden"]).all(), f"{name}.{m.name}"
                assert (hidden == want).all(), f"{name}.{m.name}"
            if isinstance(m, ExcessSpec):
                assert (hidden == (df[f"{m.observed}_hidden"] | df[f"{m.expected}_hidden"])).all()
        pub = public_table(name, df)
        for m in spec.published_measures:
            flags = pub[f"{m.name}_flag"]
            assert flags.is_in(["", ":"]).all()
            assert (pub.filter(flags == ":")[m.name].is_null()).all(), f"{name}.{m.name}: hidden value leaked"
            assert (flags == ":").sum() == meta["disclosure"]["hidden_cells"][m.name]
        assert not any(c.endswith("_hidden") for c in pub.columns)
        assert "ddd" not in pub.columns


def test_totals_add_up_at_every_level(random_releases):
    df, _ = random_releases["msis_cases_weekly"]
    parts = df.filter(pl.col("geo_level") == "fylke").group_by("disease", "iso_week", "age_group", "sex").agg(pl.col("cases").sum())
    whole = df.filter(pl.col("geo_level") == "national").select("disease", "iso_week", "age_group", "sex", "cases")
    joined = whole.join(parts, on=["disease", "iso_week", "age_group", "sex"], suffix="_parts")
    assert joined.height == whole.height and (joined["cases"] == joined["cases_parts"]).all()
    c = cell(df, "9999", disease="covid19", iso_week="2026-W07", age_group="45-64", sex="female")
    assert (c["geo_level"], c["geo_name"]) == ("kommune", "Ukjent kommune") and c["cases"] >= 1
    assert random_releases["msis_cases_weekly"][1]["excluded_records"] >= 1
