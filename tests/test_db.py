"""The warehouse keeps the SQL macros, so that a connection need not create them again."""

import duckdb

from stat19 import db
from stat19.paths import Home

FNR_CHECK = "SELECT s19_id_valid('15076500565'), s19_id_valid('15076500566')"


def test_the_warehouse_holds_the_macros_once_created(tmp_path):
    home = Home(tmp_path / "home")
    with db.warehouse(home) as con:
        assert con.execute(FNR_CHECK).fetchone() == (True, False)
    # a plain connection (an epidemiologist's, or the next step's) finds them in the file
    plain = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        assert plain.execute(FNR_CHECK).fetchone() == (True, False)
        assert plain.execute(f"SELECT {db._STAMP}()").fetchone()[0] == db._macro_sql()[2]
    finally:
        plain.close()


def test_a_warehouse_with_other_macros_gets_this_version(tmp_path):
    home = Home(tmp_path / "home")
    with db.warehouse(home):
        pass
    stale = duckdb.connect(str(home.warehouse))  # as an older Stat19 left it: another stamp, a wrong macro
    stale.execute(f"CREATE OR REPLACE MACRO {db._STAMP}() AS 'older'")
    stale.execute("CREATE OR REPLACE MACRO s19_id_valid(id) AS false")
    stale.close()
    with db.warehouse(home, read_only=True) as con:  # read-only: this version as TEMP macros
        assert con.execute(FNR_CHECK).fetchone() == (True, False)
    with db.warehouse(home) as con:  # writable: this version replaces the stored one
        assert con.execute(FNR_CHECK).fetchone() == (True, False)
    plain = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        assert plain.execute(FNR_CHECK).fetchone() == (True, False)
    finally:
        plain.close()


def test_a_connection_without_them_gets_temp_macros():
    con = duckdb.connect()
    db.install_macros(con)
    assert con.execute(FNR_CHECK).fetchone() == (True, False)
    assert con.execute("SELECT count(*) FROM duckdb_functions() WHERE function_name = 's19_id_valid' "
                       "AND database_name = 'temp'").fetchone()[0] == 1
