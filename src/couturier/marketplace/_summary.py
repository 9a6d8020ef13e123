"""What a simulated marketplace looks like, and how hard its counterfeit problem is.

The summary states counts (the experts' control-point checks, sales and price changes among
them), prevalence, label delays, and two bars: the oracle's PR-AUC (the best any model could do)
and a logistic regression on the price and seller fields alone (what a model gets without the
photos). Both are scored on the last 30% of the period against the experts' verdicts, the labels
a real model is trained and judged on.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from couturier.marketplace._store import Marketplace

__all__ = ["Summary", "contact_sheet", "summarize", "tabular_frame"]

TEST_SHARE = 0.3


@dataclass(frozen=True)
class Summary:
    listings: int
    photos: int
    sellers: int
    buyers: int
    verdicts: int
    control_points: int  # checked points in the experts' reports
    interactions: int
    sales: int
    price_changes: int
    prevalence: float
    label_prevalence: float
    label_delay_days_p50: float
    label_delay_days_p90: float
    label_error_rate: float
    oracle_pr_auc: float
    oracle_pr_auc_truth: float
    oracle_roc_auc: float
    tabular_baseline_pr_auc: float
    test_listings: int
    scenario: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tabular_frame(market: Marketplace) -> pd.DataFrame:
    """Listings joined with their product, seller, verdict and truth: one row per listing."""
    listings = market.read(
        "listings",
        [
            "listing_id",
            "seller_id",
            "product_id",
            "listed_at",
            "asking_price",
            "condition",
            "n_photos",
        ],
    )
    products = market.read("products", ["product_id", "reference_price"])
    sellers = market.read(
        "sellers", ["seller_id", "created_at", "country", "prior_sales", "rating"]
    )
    verdicts = market.read("verdicts", ["listing_id", "verdict", "decided_at"])
    truth = market.read("truth", ["listing_id", "is_counterfeit", "oracle_p_counterfeit"])
    df = (
        listings.merge(products, on="product_id")
        .merge(sellers.rename(columns={"created_at": "seller_created_at"}), on="seller_id")
        .merge(truth, on="listing_id")
        .merge(verdicts, on="listing_id", how="left")
        .sort_values("listed_at", kind="stable")
        .reset_index(drop=True)
    )
    df["log_price_ratio"] = np.log(df["asking_price"] / df["reference_price"])
    df["account_age_days"] = (df["listed_at"] - df["seller_created_at"]).dt.total_seconds() / 86400
    df["log_prior_sales"] = np.log1p(df["prior_sales"])
    df["has_rating"] = df["rating"].notna().astype(float)
    df["rating_filled"] = df["rating"].fillna(4.5)
    df["label"] = (df["verdict"] == "counterfeit").astype(int)
    return df


def summarize(market: Marketplace) -> Summary:
    df = tabular_frame(market)
    labelled = df[df["verdict"].notna()]
    cut = int(len(labelled) * (1 - TEST_SHARE))
    train, test = labelled.iloc[:cut], labelled.iloc[cut:]
    delays = (labelled["decided_at"] - labelled["listed_at"]).dt.total_seconds() / 86400
    has_both = test["label"].nunique() == 2
    return Summary(
        listings=len(df),
        photos=market.counts["photos"],
        sellers=market.counts["sellers"],
        buyers=market.counts["buyers"],
        verdicts=len(labelled),
        control_points=market.counts.get("control_points", 0),
        interactions=market.counts["interactions"],
        sales=market.counts.get("sales", 0),
        price_changes=market.counts.get("price_changes", 0),
        prevalence=float(df["is_counterfeit"].mean()),
        label_prevalence=float(labelled["label"].mean()) if len(labelled) else float("nan"),
        label_delay_days_p50=float(delays.median()) if len(delays) else float("nan"),
        label_delay_days_p90=float(delays.quantile(0.9)) if len(delays) else float("nan"),
        label_error_rate=float((labelled["label"] != labelled["is_counterfeit"]).mean()),
        oracle_pr_auc=_ap(test["label"], test["oracle_p_counterfeit"])
        if has_both
        else float("nan"),
        oracle_pr_auc_truth=_ap(test["is_counterfeit"], test["oracle_p_counterfeit"]),
        oracle_roc_auc=(
            float(roc_auc_score(test["label"], test["oracle_p_counterfeit"]))
            if has_both
            else float("nan")
        ),
        tabular_baseline_pr_auc=_tabular_baseline(train, test),
        test_listings=len(test),
        scenario=str(market.manifest["scenario"]["name"]),
    )


def _ap(y: pd.Series, score: pd.Series) -> float:
    if y.nunique() < 2:
        return float("nan")
    return float(average_precision_score(y, score))


_NUMERIC = ["log_price_ratio", "account_age_days", "log_prior_sales", "has_rating", "rating_filled"]
_CATEGORICAL = ["condition", "country"]


def _tabular_baseline(train: pd.DataFrame, test: pd.DataFrame) -> float:
    """PR-AUC of a logistic regression on price and seller fields alone (no photos)."""
    if train["label"].nunique() < 2 or test["label"].nunique() < 2:
        return float("nan")
    from sklearn.compose import make_column_transformer

    model = make_pipeline(
        make_column_transformer(
            (StandardScaler(), _NUMERIC),
            (OneHotEncoder(handle_unknown="ignore"), _CATEGORICAL),
        ),
        LogisticRegression(max_iter=1000),
    )
    model.fit(train[_NUMERIC + _CATEGORICAL], train["label"])
    score = model.predict_proba(test[_NUMERIC + _CATEGORICAL])[:, 1]
    return _ap(test["label"], pd.Series(score))


def contact_sheet(market: Marketplace, path: Path, per_class: int = 12, seed: int = 0) -> Path:
    """A PNG of authentic photos (top rows) and counterfeit photos (bottom rows), labelled."""
    truth = market.read("truth", ["listing_id", "is_counterfeit", "factory_id"])
    rng = np.random.default_rng(seed)
    picks: dict[bool, list[int]] = {}
    for fake in (False, True):
        ids = truth.loc[truth["is_counterfeit"] == fake, "listing_id"].to_numpy()
        picks[fake] = list(rng.choice(ids, size=min(per_class, len(ids)), replace=False))
    wanted = set(picks[False]) | set(picks[True])
    photos: dict[int, bytes] = {}
    views: dict[int, str] = {}
    for part in market.iter_parts("photos", ["listing_id", "position", "view", "image"]):
        chosen = part[part["listing_id"].isin(wanted) & (part["position"] <= 1)]
        for lid, pos, view, image in chosen[["listing_id", "position", "view", "image"]].to_numpy():
            key = int(lid)
            if key not in photos or pos == 1:
                photos[key], views[key] = bytes(image), str(view)
    size = market.config.image_size
    cols = 6
    label_h = 14
    rows_per = -(-per_class // cols)
    sheet = Image.new("RGB", (cols * size, 2 * rows_per * (size + label_h) + 40), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=11)
    factory = dict(zip(truth["listing_id"], truth["factory_id"], strict=True))
    for block, fake in enumerate((False, True)):
        top = block * (rows_per * (size + label_h) + 20)
        draw.text((4, top + 2), "counterfeit" if fake else "authentic", fill="black", font=font)
        for k, lid in enumerate(picks[fake]):
            x = (k % cols) * size
            y = top + 20 + (k // cols) * (size + label_h)
            sheet.paste(Image.open(io.BytesIO(photos[int(lid)])).convert("RGB"), (x, y))
            tag = f"#{lid} {views[int(lid)]}" + (f" f{factory[int(lid)]}" if fake else "")
            draw.text((x + 2, y + size), tag, fill="black", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
