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
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from couturier.errors import InvalidInputError, NotFoundError
from couturier.marketplace._config import SimulationConfig
from couturier.marketplace._schemas import TABLE_SCHEMAS, TABLES

__all__ = ["MANIFEST", "Marketplace"]

MANIFEST = "manifest.json"
# 2: sales, price_changes, truth demand columns; 3: control_points (the experts' reports),
# config.report_share
FORMAT = "couturier-marketplace/3"
#: the column that says when a row reached the platform (``Marketplace.at``)
_ARRIVAL = {
    "listings": "created_at",
    "photos": "created_at",
    "verdicts": "created_at",
    "control_points": "created_at",
    "interactions": "created_at",
    "sales": "created_at",
    "price_changes": "created_at",
    "sellers": "created_at",
    "buyers": "joined_at",
}


class Marketplace:
    """Read access to a simulated marketplace.

    >>> m = Marketplace("path/to/run")            # doctest: +SKIP
    >>> m.read("listings", columns=["listing_id", "asking_price"]).head()  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, *, as_of: datetime | None = None) -> None:
        if as_of is not None and as_of.tzinfo is None:
            raise InvalidInputError(
                f"as_of={as_of} has no time zone; pass an aware time, e.g. in UTC",
                field="as_of",
            )
        self.path = Path(path)
        self.as_of = as_of
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

    def at(self, when: datetime) -> Marketplace:
        """The marketplace as the platform knew it at ``when``: only rows that had arrived
        (listings, photos, verdicts and their control-point reports, interactions, sales, price
        changes and sellers by ``created_at``, buyers by ``joined_at``, truth for the listings
        that had arrived). Time travel for replays."""
        return Marketplace(self.path, as_of=when)

    def _read_part(self, table: str, part: Path, columns: Sequence[str] | None) -> pa.Table:
        if self.as_of is None:
            return pq.read_table(part, columns=columns)
        if table == "truth":  # no time of its own: the truth of the listings that arrived
            listed = self.read_arrow("listings", ["listing_id"]).column("listing_id")
            wanted = None if columns is None else sorted({"listing_id", *columns})
            t = pq.read_table(part, columns=wanted)
            t = t.filter(pc.is_in(t.column("listing_id"), value_set=listed))
            return t if columns is None else t.select(list(columns))
        column = _ARRIVAL.get(table)
        if column is None:
            return pq.read_table(part, columns=columns)
        when = pa.scalar(self.as_of, type=pa.timestamp("us", tz="UTC"))
        return pq.read_table(part, columns=columns, filters=pc.field(column) <= when)

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
        return pa.concat_tables(self._read_part(table, p, columns) for p in parts)

    def read(self, table: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """One whole table as a DataFrame (``columns`` to read fewer)."""
        frame: pd.DataFrame = self.read_arrow(table, columns).to_pandas()
        return frame

    def lookup(
        self, table: str, key: str, values: Sequence[int], columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """The rows of ``table`` whose ``key`` is one of ``values`` (a few rows: each part's
        row-group statistics skip what cannot match), seen as of this view's time."""
        schema = TABLE_SCHEMAS[self.table_path(table).name]
        unknown = [c for c in [key, *(columns or [])] if c not in schema.names]
        if unknown:
            raise InvalidInputError(
                f"table {table!r} has no column {unknown[0]!r}; its columns: "
                f"{', '.join(schema.names)}",
                field="columns",
            )
        wanted = pc.field(key).isin(list(values))
        column = _ARRIVAL.get(table)
        if self.as_of is not None and column is not None:
            wanted &= pc.field(column) <= pa.scalar(self.as_of, type=pa.timestamp("us", tz="UTC"))
        parts = [pq.read_table(p, columns=columns, filters=wanted) for p in self.parts(table)]
        if not parts:
            parts = [schema.empty_table().select(list(columns) if columns else schema.names)]
        frame: pd.DataFrame = pa.concat_tables(parts).to_pandas()
        return frame

    def append(self, table: str, rows: pd.DataFrame) -> Path:
        """Add ``rows`` to ``table`` as a new part: events that arrive after the simulation
        (an expert's verdict recorded in the review console). The part is written to a
        temporary name, flushed to disk and renamed, so a reader sees all of it or none; a crash
        leaves no partial part. Columns must be the table's, with its types."""
        folder = self.table_path(table)  # an unknown table: NotFoundError naming the tables
        schema = TABLE_SCHEMAS[table]
        if table not in _ARRIVAL:
            raise InvalidInputError(
                f"table {table!r} is written by the simulator only; rows can be appended to: "
                f"{', '.join(sorted(_ARRIVAL))}",
                field="table",
            )
        if list(rows.columns) != schema.names:
            raise InvalidInputError(
                f"rows for {table!r} have columns {list(rows.columns)}; "
                f"the table's are {schema.names}, in that order",
                field="rows",
            )
        data = pa.Table.from_pandas(rows, schema=schema, preserve_index=False)
        folder.mkdir(exist_ok=True)
        # after the simulator's part-00000...: appended parts sort last, in arrival order
        name = f"part-z{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
        tmp = folder / f".{name}.tmp"
        pq.write_table(data, tmp)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        tmp.replace(folder / name)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)  # the rename itself survives a power cut
        finally:
            os.close(fd)
        return folder / name

    def iter_parts(
        self, table: str, columns: Sequence[str] | None = None
    ) -> Iterator[pd.DataFrame]:
        """The table chunk by chunk: memory bounded by the chunk size, not the total."""
        for p in self.parts(table):
            yield self._read_part(table, p, columns).to_pandas()

    @property
    def counts(self) -> dict[str, int]:
        """The whole run's row counts (a view made by :meth:`at` holds fewer)."""
        return dict(self.manifest["counts"])

    def __repr__(self) -> str:
        when = f", as_of={self.as_of.isoformat()}" if self.as_of else ""
        return f"Marketplace({str(self.path)!r}, listings={self.counts.get('listings')}{when})"
