"""The complete metadata: every table, MySQL options, naming convention."""

from __future__ import annotations

from ichnaea.models.all import metadata

EXPECTED_TABLES = {
    *(f"wifi_shard_{s}" for s in "0123456789abcdef"),
    *(f"blue_shard_{s}" for s in "0123456789abcdef"),
    "cell_gsm",
    "cell_wcdma",
    "cell_lte",
    "cell_nr",
    "cell_area",
    "cell_area_nr",
    "datamap_ne",
    "datamap_nw",
    "datamap_se",
    "datamap_sw",
    "api_key",
    "export_config",
    "stat",
    "region_stat",
    "pipeline_batch",
}


def test_metadata_holds_every_table_of_the_schema() -> None:
    assert set(metadata.tables) == EXPECTED_TABLES


def test_every_table_is_innodb_utf8mb4_on_mysql() -> None:
    for table in metadata.tables.values():
        assert table.dialect_options["mysql"]["engine"] == "InnoDB", table.name
        assert table.dialect_options["mysql"]["charset"] == "utf8mb4", table.name


def test_every_index_name_starts_with_its_table_name() -> None:
    for table in metadata.tables.values():
        for index in table.indexes:
            assert str(index.name).startswith(f"{table.name}_"), index.name
            assert str(index.name).endswith("_idx"), index.name
