"""Publishing releases: files, revisions, the catalog, and the audit of everything published.

Layout (products.md)::

    <home>/published/<product>/<R>/data.parquet  data.csv  data.json  metadata.json
    <home>/published/<product>/<R>/revisions/<n>/...   earlier revisions, kept as they were
    <home>/published/catalog.json                        every product, every release, the latest
    <home>/vault/releases/<product>/<R>/r<n>.parquet     the internal release of each revision (true
                                                         values, hidden masks): vault only

A release is built complete in a temporary folder beside its target (``.<R>.<random>.tmp``) and
then swapped into place with one atomic rename (``renameat2(RENAME_EXCHANGE)`` where the kernel
has it; otherwise two renames, and an interrupted swap is repaired by the next publication or
audit). A crash at any point leaves the previous release or the new one, never a mix; leftover
temporary folders are ignored by readers and removed by the next publication.

Revisions: the content digest covers the published table and the content metadata (not the
generation time, source deliveries or pipeline version). Publishing R again with the same
content writes nothing; with different content, revision n+1 becomes ``<R>/`` and revision n
moves to ``<R>/revisions/<n>/``.

Before anything is written the disclosure audit (``stat19.disclosure.check_release``, the LP
audit over the whole release) must pass, then the series audit against the neighbouring releases
(``stat19.disclosure.check_series``, ``neighbours(home, product, R)``), and the public table must
follow the flag rules; else ``PublishError`` and nothing is written. ``audit_all(home)`` audits
every published release again from its files alone, and every consecutive pair of releases from
their vault copies.
"""

from stat19.publish.audit import AuditFinding, audit_all, audit_files, check_derived, check_public_table
from stat19.publish.catalog import CATALOG, DATA_FILES, catalog, write_catalog
from stat19.publish.release import (DisclosureAuditFailed, PublishError, PublishResult, csv_bytes, publish,
                                    publish_product, release_dir)
from stat19.publish.series import Neighbours, neighbours, published_revisions, read_vault_copy, vault_copy_path
from stat19.publish.swap import recover

__all__ = ["CATALOG", "DATA_FILES", "AuditFinding", "DisclosureAuditFailed", "Neighbours", "PublishError",
           "PublishResult", "audit_all", "audit_files", "catalog", "check_derived", "check_public_table", "csv_bytes",
           "neighbours", "publish", "publish_product", "published_revisions", "read_vault_copy", "recover",
           "release_dir", "vault_copy_path", "write_catalog"]
