"""Statistics products: declarative specs, one generic engine, one Dagster asset per product.

A product is a YAML spec in ``assets/products/<name>.yaml`` (validated by ``ProductSpec``) plus a
jinja2 SQL template in ``sql/products/<name>.sql.j2``. Adding a product is adding those two files;
nothing here knows a product by name.

The SQL template
----------------
Rendered with ``spec`` (the ``ProductSpec``), ``R`` (the reference date, ``YYYY-MM-DD``) and
``residences`` (a relation of the Folkeregister rows as known on R, see ``residences_relation``;
the macros' ``setup`` turns its bosatt rows into ``_bosatt``),
and run on a connection where the linked tables, ``person_birth_dates`` and the ``ref_*`` tables
resolve by plain name. It builds temporary tables, most of them through the shared macros in
``sql/products/_macros.sql.j2``:

``_cells``       one row per counted unit (or partial sum) at the finest level: the product's
                 dimension columns (no ``total`` codes), ``kommune_2024``, ``fylke_2024`` and one
                 column per ``count`` (source cells) and ``sum`` measure;
``_population``  (products with a ``population`` block) the same for the population, over the
                 population's dimensions only;
``_excluded``    one row, ``n``: records left out because age or sex is unknown;
``_periods``     (products with a time dimension; macro ``periods``) every period from the one
                 holding the earliest counted event to the one containing R;
and finishes with ``{{ m.release(spec) }}``, which sums ``_cells``/``_population`` into every
``total`` and every geography level, lays them on the full grid (every 2024 unit, zeros
included; unknown units ``99``/``9999`` only when non-empty) as ``_release``, and lists rows that
found no place on the grid in ``_unmatched``.

The engine (``compute_release``) then checks the grid and every total, applies
``stat19.disclosure`` to the whole release at once, and derives rates, expected and excess
values. Publication is ``stat19.publish``.
"""

from stat19.geography import GEO_COLUMNS, NATIONAL_CODE, UNKNOWN_FYLKE, UNKNOWN_KOMMUNE, geo_parent
from stat19.products.derive import derive_measures, hidden_col, internal_columns, public_table, round_ratio
from stat19.products.engine import (check_grid, check_totals, compute_release, disclosure_dimensions,
                                    disclosure_measures, residences_relation, run_product_sql)
from stat19.products.metadata import disclosure_rule_text, measure_metadata, release_metadata
from stat19.products.periods import next_period, period_days, period_of, period_range, period_start, same_period_in_year
from stat19.products.reuse import kept_release, last_deliveries, record_release_inputs, release_inputs
from stat19.products.spec import (HIDDEN_FLAG, TOTAL, Category, CountSpec, DimensionSpec, ExcessSpec, ExpectedSpec,
                                  GeographySpec, MeasureSpec, PopulationSpec, ProductError, ProductSpec, RateSpec,
                                  SumSpec, get_product, load_product_spec, product_specs)
