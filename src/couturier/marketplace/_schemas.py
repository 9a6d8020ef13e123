"""The declared schemas of the marketplace tables: Arrow types for storage, pandera rules for data.

Every chunk is validated against its pandera schema before it is written, so a table on disk
either follows these rules or does not exist. ``truth`` holds the simulator's latent variables
(what no marketplace would know); models must never read it, reports compare against it.
``control_points`` are the experts' reports that come with some verdicts, in the catalogue's terms
(``_control_points.py``). ``sales`` and ``price_changes`` are what the demand model
(``_demand.py``) made happen.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow

from couturier.errors import InvalidInputError
from couturier.marketplace._catalog import CATEGORIES
from couturier.marketplace._control_points import CONTROL_POINTS, RESULTS
from couturier.marketplace._flaws import FLAWS, VIEWS
from couturier.marketplace._oracle import CONDITIONS
from couturier.marketplace._world import COUNTRIES

__all__ = ["DATA_SCHEMAS", "TABLES", "TABLE_SCHEMAS", "validate"]

_TS = pa_arrow.timestamp("us", tz="UTC")
_I = pa_arrow.int64()
_F = pa_arrow.float64()
_S = pa_arrow.string()

TABLE_SCHEMAS: dict[str, pa_arrow.Schema] = {
    "brands": pa_arrow.schema(
        [
            ("brand_id", _I),
            ("name", _S),
            ("glyph", _S),
            ("canvas_rgb", _S),
            ("hardware_rgb", _S),
            ("serial_format", _S),
            ("spacing_px", _F),
            ("rotation_deg", _F),
            ("stitches_per_100px", _F),
        ]
    ),
    "products": pa_arrow.schema(
        [
            ("product_id", _I),
            ("brand_id", _I),
            ("category", _S),
            ("name", _S),
            ("reference_price", _F),
        ]
    ),
    "sellers": pa_arrow.schema(
        [
            ("seller_id", _I),
            ("created_at", _TS),
            ("country", _S),
            ("prior_sales", _I),
            ("rating", _F),
        ]
    ),
    "buyers": pa_arrow.schema(
        [
            ("buyer_id", _I),
            ("joined_at", _TS),
            ("country", _S),
            ("favourite_brand_id", _I),
            ("favourite_category", _S),
            ("budget", _F),
        ]
    ),
    "listings": pa_arrow.schema(
        [
            ("listing_id", _I),
            ("seller_id", _I),
            ("product_id", _I),
            ("brand_id", _I),
            ("category", _S),
            ("listed_at", _TS),
            ("created_at", _TS),
            ("asking_price", _F),
            ("currency", _S),
            ("condition", _S),
            ("title", _S),
            ("description", _S),
            ("serial_number", _S),
            ("n_photos", _I),
        ]
    ),
    "truth": pa_arrow.schema(
        [
            ("listing_id", _I),
            ("is_counterfeit", pa_arrow.bool_()),
            ("factory_id", _I),
            ("seller_propensity", _F),
            ("fraud_ring", pa_arrow.bool_()),
            ("severity_scale", _F),
            *[(f"flaw_{f}", _F) for f in FLAWS],
            ("visible_flaws", _S),
            ("oracle_logit", _F),
            ("oracle_p_counterfeit", _F),
            ("market_value", _F),
            ("demand_7d", _F),
            ("demand_30d", _F),
            ("oracle_price", _F),
            ("oracle_sale_p30", _F),
        ]
    ),
    "photos": pa_arrow.schema(
        [
            ("photo_id", _I),
            ("listing_id", _I),
            ("position", _I),
            ("view", _S),
            ("width", _I),
            ("height", _I),
            ("format", _S),
            ("image", pa_arrow.binary()),
            ("taken_at", _TS),
            ("created_at", _TS),
        ]
    ),
    "verdicts": pa_arrow.schema(
        [
            ("verdict_id", _I),
            ("listing_id", _I),
            ("expert_id", _I),
            ("verdict", _S),
            ("decided_at", _TS),
            ("created_at", _TS),
        ]
    ),
    "control_points": pa_arrow.schema(
        [
            ("check_id", _I),
            ("verdict_id", _I),
            ("listing_id", _I),
            ("expert_id", _I),
            ("control_point", _S),
            ("result", _S),
            ("measurement", _F),
            ("decided_at", _TS),
            ("created_at", _TS),
        ]
    ),
    "interactions": pa_arrow.schema(
        [
            ("interaction_id", _I),
            ("listing_id", _I),
            ("buyer_id", _I),
            ("kind", _S),
            ("occurred_at", _TS),
            ("created_at", _TS),
        ]
    ),
    "sales": pa_arrow.schema(
        [
            ("sale_id", _I),
            ("listing_id", _I),
            ("buyer_id", _I),
            ("sold_at", _TS),
            ("sale_price", _F),
            ("created_at", _TS),
        ]
    ),
    "price_changes": pa_arrow.schema(
        [
            ("change_id", _I),
            ("listing_id", _I),
            ("changed_at", _TS),
            ("old_price", _F),
            ("new_price", _F),
            ("created_at", _TS),
        ]
    ),
}
TABLES: tuple[str, ...] = tuple(TABLE_SCHEMAS)


def _id(unique: bool = False) -> pa.Column:
    return pa.Column("int64", pa.Check.ge(0), unique=unique)


def _ts() -> pa.Column:
    """A time-zone-aware UTC timestamp, at whatever resolution Arrow hands pandas."""
    return pa.Column(
        checks=pa.Check(
            lambda s: isinstance(s.dtype, pd.DatetimeTZDtype) and str(s.dtype.tz) == "UTC",
            name="utc_timestamp",
        )
    )


_CATS = list(CATEGORIES)
_POINTS = [p.name for p in CONTROL_POINTS]


def _measurement_fits(df: pd.DataFrame) -> pd.Series:
    """A measurable point's measurement lies in its physical range at its precision; a
    pass/fail-only point has none."""
    m = df["measurement"].to_numpy(dtype=float, na_value=np.nan)
    ok = np.ones(len(df), dtype=bool)
    for point in CONTROL_POINTS:
        rows = (df["control_point"] == point.name).to_numpy()
        if not point.measurable or point.low is None or point.high is None:
            ok[rows] = np.isnan(m[rows])
            continue
        scaled = m[rows] * 10.0**point.decimals
        fits = (m[rows] >= point.low) & (m[rows] <= point.high)
        ok[rows] = fits & (np.abs(scaled - np.round(scaled)) < 1e-6)
    return pd.Series(ok, index=df.index)


_JPEG = pa.Check(lambda s: s.map(lambda b: b[:3] == b"\xff\xd8\xff"), name="is_jpeg")

DATA_SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "brands": pa.DataFrameSchema(
        {
            "brand_id": _id(unique=True),
            "name": pa.Column(str, unique=True),
            "glyph": pa.Column(str),
            "canvas_rgb": pa.Column(str),
            "hardware_rgb": pa.Column(str),
            "serial_format": pa.Column(str, pa.Check.str_matches(r"^[A9-]+$")),
            "spacing_px": pa.Column(float, pa.Check.gt(0)),
            "rotation_deg": pa.Column(float),
            "stitches_per_100px": pa.Column(float, pa.Check.gt(0)),
        },
        strict=True,
    ),
    "products": pa.DataFrameSchema(
        {
            "product_id": _id(unique=True),
            "brand_id": _id(),
            "category": pa.Column(str, pa.Check.isin(_CATS)),
            "name": pa.Column(str),
            "reference_price": pa.Column(float, pa.Check.gt(0)),
        },
        strict=True,
    ),
    "sellers": pa.DataFrameSchema(
        {
            "seller_id": _id(unique=True),
            "created_at": _ts(),
            "country": pa.Column(str, pa.Check.isin(COUNTRIES)),
            "prior_sales": pa.Column("int64", pa.Check.ge(0)),
            "rating": pa.Column(float, pa.Check.in_range(1.0, 5.0), nullable=True),
        },
        strict=True,
    ),
    "buyers": pa.DataFrameSchema(
        {
            "buyer_id": _id(unique=True),
            "joined_at": _ts(),
            "country": pa.Column(str, pa.Check.isin(COUNTRIES)),
            "favourite_brand_id": _id(),
            "favourite_category": pa.Column(str, pa.Check.isin(_CATS)),
            "budget": pa.Column(float, pa.Check.gt(0)),
        },
        strict=True,
    ),
    "listings": pa.DataFrameSchema(
        {
            "listing_id": _id(unique=True),
            "seller_id": _id(),
            "product_id": _id(),
            "brand_id": _id(),
            "category": pa.Column(str, pa.Check.isin(_CATS)),
            "listed_at": _ts(),
            "created_at": _ts(),
            "asking_price": pa.Column(float, pa.Check.gt(0)),
            "currency": pa.Column(str, pa.Check.isin(["EUR"])),
            "condition": pa.Column(str, pa.Check.isin(CONDITIONS)),
            "title": pa.Column(str, pa.Check.str_length(1, 200)),
            "description": pa.Column(str, pa.Check.str_length(1, 2000)),
            "serial_number": pa.Column(str, nullable=True),
            "n_photos": pa.Column("int64", pa.Check.in_range(1, 4)),
        },
        checks=[
            pa.Check(lambda df: df["created_at"] >= df["listed_at"], name="ingested_after_listed")
        ],
        strict=True,
    ),
    "truth": pa.DataFrameSchema(
        {
            "listing_id": _id(unique=True),
            "is_counterfeit": pa.Column(bool),
            "factory_id": pa.Column("int64", pa.Check.ge(-1)),
            "seller_propensity": pa.Column(float, pa.Check.in_range(0.0, 1.0)),
            "fraud_ring": pa.Column(bool),
            "severity_scale": pa.Column(float, pa.Check.ge(0.0)),
            **{f"flaw_{f}": pa.Column(float) for f in FLAWS},
            "visible_flaws": pa.Column(str),
            "oracle_logit": pa.Column(float),
            "oracle_p_counterfeit": pa.Column(float, pa.Check.in_range(0.0, 1.0)),
            "market_value": pa.Column(float, pa.Check.gt(0)),
            "demand_7d": pa.Column(float, pa.Check.gt(0)),
            "demand_30d": pa.Column(float, pa.Check.gt(0)),
            "oracle_price": pa.Column(float, pa.Check.gt(0)),
            "oracle_sale_p30": pa.Column(float, pa.Check.in_range(0.0, 1.0)),
        },
        checks=[
            pa.Check(
                lambda df: (df["factory_id"] >= 0) == df["is_counterfeit"], name="factory_iff_fake"
            ),
            pa.Check(lambda df: df["demand_30d"] >= df["demand_7d"], name="demand_grows_with_time"),
        ],
        strict=True,
    ),
    "photos": pa.DataFrameSchema(
        {
            "photo_id": _id(unique=True),
            "listing_id": _id(),
            "position": pa.Column("int64", pa.Check.in_range(0, 3)),
            "view": pa.Column(str, pa.Check.isin(VIEWS)),
            "width": pa.Column("int64", pa.Check.gt(0)),
            "height": pa.Column("int64", pa.Check.gt(0)),
            "format": pa.Column(str, pa.Check.isin(["jpeg"])),
            "image": pa.Column(object, _JPEG),
            "taken_at": _ts(),
            "created_at": _ts(),
        },
        strict=True,
    ),
    "verdicts": pa.DataFrameSchema(
        {
            "verdict_id": _id(unique=True),
            "listing_id": _id(),
            "expert_id": _id(),
            "verdict": pa.Column(str, pa.Check.isin(["authentic", "counterfeit"])),
            "decided_at": _ts(),
            "created_at": _ts(),
        },
        checks=[
            pa.Check(lambda df: df["created_at"] >= df["decided_at"], name="arrives_after_decision")
        ],
        strict=True,
    ),
    "control_points": pa.DataFrameSchema(
        {
            "check_id": _id(unique=True),
            "verdict_id": _id(),
            "listing_id": _id(),
            "expert_id": _id(),
            "control_point": pa.Column(str, pa.Check.isin(_POINTS)),
            "result": pa.Column(str, pa.Check.isin(RESULTS)),
            "measurement": pa.Column(float, nullable=True),
            "decided_at": _ts(),
            "created_at": _ts(),
        },
        checks=[
            pa.Check(
                lambda df: df["check_id"] // 8 == df["verdict_id"], name="check_id_of_verdict"
            ),
            pa.Check(
                lambda df: (
                    df["check_id"] % 8
                    == df["control_point"].map({p: k for k, p in enumerate(_POINTS)})
                ),
                name="check_id_names_its_point",
            ),
            pa.Check(_measurement_fits, name="measurement_in_range_at_precision"),
            pa.Check(
                lambda df: df["created_at"] >= df["decided_at"], name="arrives_after_decision"
            ),
        ],
        strict=True,
    ),
    "interactions": pa.DataFrameSchema(
        {
            "interaction_id": _id(unique=True),
            "listing_id": _id(),
            "buyer_id": _id(),
            "kind": pa.Column(str, pa.Check.isin(["view", "like", "purchase", "return"])),
            "occurred_at": _ts(),
            "created_at": _ts(),
        },
        strict=True,
    ),
    "sales": pa.DataFrameSchema(
        {
            "sale_id": _id(unique=True),
            "listing_id": _id(unique=True),  # a listing sells at most once
            "buyer_id": _id(),
            "sold_at": _ts(),
            "sale_price": pa.Column(float, pa.Check.gt(0)),
            "created_at": _ts(),
        },
        checks=[
            pa.Check(lambda df: df["sale_id"] == df["listing_id"], name="sale_id_is_listing_id"),
            pa.Check(lambda df: df["created_at"] >= df["sold_at"], name="arrives_after_sale"),
        ],
        strict=True,
    ),
    "price_changes": pa.DataFrameSchema(
        {
            "change_id": _id(unique=True),
            "listing_id": _id(),
            "changed_at": _ts(),
            "old_price": pa.Column(float, pa.Check.gt(0)),
            "new_price": pa.Column(float, pa.Check.gt(0)),
            "created_at": _ts(),
        },
        checks=[
            pa.Check(
                lambda df: df["new_price"] < df["old_price"], name="a_change_lowers_the_price"
            ),
            pa.Check(
                lambda df: df["change_id"] // 4 == df["listing_id"], name="change_id_of_listing"
            ),
            pa.Check(lambda df: df["created_at"] >= df["changed_at"], name="arrives_after_change"),
        ],
        strict=True,
    ),
}


def validate(name: str, table: pa_arrow.Table | pd.DataFrame) -> pd.DataFrame:
    """Validate a table against its declared schema; raise :class:`InvalidInputError` if broken."""
    df = table.to_pandas() if isinstance(table, pa_arrow.Table) else table
    try:
        return DATA_SCHEMAS[name].validate(df, lazy=False)
    except (pa.errors.SchemaError, pa.errors.SchemaErrors) as exc:
        raise InvalidInputError(
            f"table {name!r} breaks its schema: {str(exc).splitlines()[0]}; "
            "see couturier.marketplace.DATA_SCHEMAS for the rules",
            field=name,
        ) from None
