"""A simulated marketplace on disk: one folder, a manifest, and one Parquet folder per table.

Layout::

    <run>/manifest.json            config, scenario, counts; written last, so its presence
                                   means the run is complete
    <run>/<table>/part-00000.parquet ...   one part per chunk (static tables: one part)

Photos are JPEG bytes in the ``image`` column of ``photos``, one row per photo, so a training job
streams photos with the rest of the chunk and no file system holds 10^6 small files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from couturier.errors import InvalidInputError, NotFoundError
from couturier.marketplace._config import SimulationConfig
from couturier.marketplace._schemas import TABLE_SCHEMAS, TABLES

__all__ = ["MANIFEST", "Marketplace"]

MANIFEST = "manifest.json"
FORMAT = "couturier-marketplace/1"


class Marketplace:
    """Read access to a simulated marketplace.

    >>> m = Marketplace("path/to/run")            # doctest: +SKIP
    >>> m.read("listings", columns=["listing_id", "asking_price"]).head()  # doctest: +SKIP
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not manifest.is_file():
            raise NotFoundError(
                f"{self.path} holds no complete marketplace (no {MANIFEST}); "
                "run `couturier simulate --out PATH` first",
                path=str(self.path),
            )
        self.manifest: dict[str, Any] = json.loads(manifest.read_text())
        if self.manifest.get("format") != FORMAT:
            raise InvalidInputError(
                f"{manifest} has format {self.manifest.get('format')!r}; "
                f"this version reads {FORMAT!r}; re-run `couturier simulate`",
                field="format",
            )
        self.config = SimulationConfig.of(**self.manifest["config"])

    def table_path(self, table: str) -> Path:
        if table not in TABLE_SCHEMAS:
            raise NotFoundError(
                f"no table {table!r}; the tables are: {', '.join(TABLES)}", table=table
            )
        return self.path / table

    def parts(self, table: str) -> list[Path]:
        return sorted(self.table_path(table).glob("part-*.parquet"))

    def read_arrow(self, table: str, columns: Sequence[str] | None = None) -> pa.Table:
        parts = self.parts(table)
        schema = TABLE_SCHEMAS[table]
        if columns is not None:
            unknown = [c for c in columns if c not in schema.names]
            if unknown:
                raise InvalidInputError(
                    f"table {table!r} has no column {unknown[0]!r}; "
                    f"its columns: {', '.join(schema.names)}",
                    field="columns",
                )
        if not parts:
            return schema.empty_table().select(list(columns) if columns else schema.names)
        return pa.concat_tables(pq.read_table(p, columns=columns) for p in parts)

    def read(self, table: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """One whole table as a DataFrame (``columns`` to read fewer)."""
        frame: pd.DataFrame = self.read_arrow(table, columns).to_pandas()
        return frame

    def iter_parts(
        self, table: str, columns: Sequence[str] | None = None
    ) -> Iterator[pd.DataFrame]:
        """The table chunk by chunk: memory bounded by the chunk size, not the total."""
        for p in self.parts(table):
            yield pq.read_table(p, columns=columns).to_pandas()

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.manifest["counts"])

    def __repr__(self) -> str:
        return f"Marketplace({str(self.path)!r}, listings={self.counts.get('listings')})"
