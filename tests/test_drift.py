"""Drift statistics (jupyter_deploy.monitoring.drift): pure numpy/scipy, seeded, no Ray."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from jupyter_deploy.errors import InvalidSpecError
from jupyter_deploy.monitoring.drift import (
    DriftThresholds,
    ReferenceProfile,
    compare,
    histogram,
    merge,
)

COLOURS = ["red", "green", "blue", "black"]


def sample(n: int, seed: int, colour_p: tuple[float, ...] = (0.4, 0.3, 0.2, 0.1)) -> pd.DataFrame:
    """Rows of one fixed distribution: continuous, skewed, small-integer and categorical."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(10.0, 2.0, n),
            "skewed": rng.exponential(3.0, n),
            "level": rng.integers(0, 5, n),
            "colour": rng.choice(COLOURS, size=n, p=list(colour_p)),
        }
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return sample(2000, seed=1)


@pytest.fixture(scope="module")
def profile(reference: pd.DataFrame) -> ReferenceProfile:
    return ReferenceProfile.from_frame(reference)


def verdicts(profile: ReferenceProfile, frame: pd.DataFrame) -> dict[str, bool]:
    return {d.feature: d.drifted for d in compare(profile, profile.summarise(frame))}


def test_profile_kinds_and_shapes(profile: ReferenceProfile) -> None:
    kinds = {f.name: f.kind for f in profile.features}
    assert kinds == {
        "x": "numeric",
        "skewed": "numeric",
        "level": "numeric",
        "colour": "categorical",
    }
    level = profile.feature("level")
    assert level.edges == (0.5, 1.5, 2.5, 3.5)  # few distinct values: one bucket per value
    assert profile.feature("colour").categories == ("red", "green", "blue", "black")
    assert {k: len(v) for k, v in profile.empty().items()} == {
        f.name: f.size for f in profile.features
    }
    assert all(sum(f.reference) == 2000 for f in profile.features)


def test_fresh_sample_of_same_distribution_is_not_flagged(profile: ReferenceProfile) -> None:
    results = compare(profile, profile.summarise(sample(500, seed=2)))
    assert [d.drifted for d in results] == [False] * 4, [d.reason for d in results]
    assert all(d.n == 500 and d.psi is not None and d.psi < 0.05 for d in results)
    assert {d.feature: d.test for d in results}["colour"] == "chi2"


def test_one_feature_shifted_by_one_std_is_flagged_alone(
    profile: ReferenceProfile, reference: pd.DataFrame
) -> None:
    live = sample(500, seed=3)
    live["x"] += reference["x"].std()
    results = {d.feature: d for d in compare(profile, profile.summarise(live))}
    assert {k: d.drifted for k, d in results.items()} == {
        "x": True,
        "skewed": False,
        "level": False,
        "colour": False,
    }
    x = results["x"]
    assert x.test == "ks" and x.reason.startswith("drift:")
    assert x.psi is not None and x.psi > 0.5
    assert x.p_value is not None and x.p_value < 1e-10


def test_categorical_with_changed_frequencies_is_flagged(profile: ReferenceProfile) -> None:
    live = sample(500, seed=4, colour_p=(0.1, 0.2, 0.3, 0.4))
    assert verdicts(profile, live) == {"x": False, "skewed": False, "level": False, "colour": True}


def test_regressor_predictions_profile() -> None:
    rng = np.random.default_rng(5)
    profile = ReferenceProfile.from_values("prediction", rng.normal(100.0, 15.0, 1000))
    assert profile.features[0].kind == "numeric"
    same = profile.summarise({"prediction": rng.normal(100.0, 15.0, 400)})
    moved = profile.summarise({"prediction": rng.normal(115.0, 15.0, 400)})
    assert [d.drifted for d in compare(profile, same)] == [False]
    assert [d.drifted for d in compare(profile, moved)] == [True]


def test_classifier_predictions_profile() -> None:
    rng = np.random.default_rng(6)
    classes = rng.choice([0, 1, 2], size=1000, p=[0.5, 0.3, 0.2])
    profile = ReferenceProfile.from_values("prediction", classes, kind="categorical")
    f = profile.features[0]
    assert f.kind == "categorical" and set(f.categories) == {0, 1, 2}
    same = profile.summarise({"prediction": rng.choice([0, 1, 2], 400, p=[0.5, 0.3, 0.2])})
    moved = profile.summarise({"prediction": rng.choice([0, 1, 2], 400, p=[0.2, 0.3, 0.5])})
    assert [d.drifted for d in compare(profile, same)] == [False]
    (verdict,) = compare(profile, moved)
    assert verdict.drifted and verdict.test == "chi2"
    # String labels are inferred categorical.
    labels = ReferenceProfile.from_values("prediction", np.array(["cat", "dog"] * 50))
    assert labels.features[0].kind == "categorical"


def test_merge_of_summaries_is_summary_of_concatenation(profile: ReferenceProfile) -> None:
    a, b = sample(37, seed=7), sample(64, seed=8)
    b.loc[::5, "x"] = np.nan
    b.loc[::7, "colour"] = "purple"
    merged = merge(profile.summarise(a), profile.summarise(b))
    assert merged == profile.summarise(pd.concat([a, b], ignore_index=True))
    assert merge(profile.empty(), merged) == merged
    assert all(isinstance(c, int) for counts in merged.values() for c in counts)
    with pytest.raises(InvalidSpecError, match="cannot merge"):
        merge(merged, {"x": [1, 2]})


def test_to_dict_round_trips_through_json(profile: ReferenceProfile) -> None:
    data = json.loads(json.dumps(profile.to_dict()))
    again = ReferenceProfile.from_dict(data)
    assert again == profile
    live = sample(300, seed=9)
    assert again.summarise(live) == profile.summarise(live)
    assert compare(again, again.summarise(live)) == compare(profile, profile.summarise(live))
    json.dumps([d.to_dict() for d in compare(again, again.summarise(live))])
    with pytest.raises(InvalidSpecError, match="not a drift reference profile"):
        ReferenceProfile.from_dict({"format": 1, "features": [{"name": "x"}]})


def test_min_count_means_not_enough_data(profile: ReferenceProfile) -> None:
    live = sample(12, seed=10)
    live["x"] += 100.0  # a huge shift, but too few values to judge
    results = compare(profile, profile.summarise(live))
    assert not any(d.drifted for d in results)
    assert results[0].reason == "not enough data (12 < 30)"
    assert results[0].psi is None and results[0].p_value is None
    assert compare(profile, {})[0].reason == "not enough data (0 < 30)"
    few = compare(profile, profile.summarise(live), DriftThresholds(min_count=10))
    assert {d.feature: d.drifted for d in few}["x"]


@pytest.mark.parametrize(
    "bad",
    [
        {"psi": 0},
        {"psi": float("nan")},
        {"p_value": 0},
        {"p_value": 1.5},
        {"min_count": 0},
        {"min_count": 2.5},
        {"min_count": True},
    ],
)
def test_thresholds_validation(bad: dict[str, object], profile: ReferenceProfile) -> None:
    thresholds = DriftThresholds(**bad)  # type: ignore[arg-type]  # wrong types on purpose
    with pytest.raises(InvalidSpecError):
        thresholds.validate()
    with pytest.raises(InvalidSpecError):
        compare(profile, profile.empty(), thresholds)
    DriftThresholds().validate()


def test_missing_values_and_unseen_categories(profile: ReferenceProfile) -> None:
    live = sample(500, seed=11)
    live.loc[: len(live) // 2, "x"] = np.nan  # the missing rate jumps from 0 to ~50%
    live["colour"] = live["colour"].astype(object)
    live.loc[::2, "colour"] = "purple"  # never seen in training
    live.loc[1::10, "colour"] = None
    counts = profile.summarise(live)
    colour = profile.feature("colour")
    assert counts["colour"][-2] == 250 and counts["colour"][-1] == 50  # other, missing
    assert counts["x"][-1] == 251
    assert verdicts(profile, live) == {"x": True, "skewed": False, "level": False, "colour": True}
    # A feature the frame lacks counts every row as missing; extra columns are ignored.
    partial = profile.summarise(pd.DataFrame({"x": [1.0, 2.0], "unrelated": [3, 4]}))
    assert partial["colour"] == [0] * (colour.size - 1) + [2]
    assert sum(partial["x"][:-1]) == 2


def test_binned_ks_is_close_to_exact_ks(reference: pd.DataFrame, profile: ReferenceProfile) -> None:
    rng = np.random.default_rng(12)
    for shift in (0.0, 0.3, 1.0):
        for column, draw in (
            ("x", lambda n: rng.normal(10.0, 2.0, n)),
            ("skewed", lambda n: rng.exponential(3.0, n)),
        ):
            live = draw(500) + shift * reference[column].std()
            exact = stats.ks_2samp(live, reference[column], method="asymp")
            summary = profile.summarise({column: live})
            verdict = {d.feature: d for d in compare(profile, summary)}[column]
            binned, p = verdict.statistic, verdict.p_value
            assert binned is not None and p is not None
            assert 0 <= exact.statistic - binned < 0.03, (column, shift, exact, binned)
            if exact.pvalue > 1e-6:  # a slightly smaller D: a slightly larger p
                assert exact.pvalue <= p * 1.01 and p < 3 * exact.pvalue, (exact.pvalue, p)


def test_histogram_gives_both_distributions(profile: ReferenceProfile) -> None:
    live = sample(500, seed=13)
    live["x"] += 2.0
    hist = histogram(profile, profile.summarise(live), "x")
    assert len(hist.labels) == len(hist.reference) == len(hist.live) == 10  # deciles, no missing
    assert hist.labels[0].startswith("[") and hist.labels[-1].endswith("]")
    assert sum(hist.reference) == pytest.approx(1.0) and sum(hist.live) == pytest.approx(1.0)
    assert hist.live[-1] > 2 * hist.reference[-1]  # shifted up: the top decile fills
    assert hist.n == 500
    colour = histogram(profile, profile.empty(), "colour")
    assert colour.labels == COLOURS and colour.live == [0.0] * 4 and colour.n == 0
    json.dumps(colour.to_dict())


def test_column_types_and_odd_live_values() -> None:
    frame = pd.DataFrame(
        {
            "flag": [True, False] * 50,
            "nullable": pd.array([1, None, 3, 4] * 25, dtype="Int64"),
            "kind": pd.Categorical(["a", "b", "a", "c"] * 25),
            "when": pd.date_range("2020-01-01", periods=100),
        }
    )
    profile = ReferenceProfile.from_frame(frame)
    kinds = {f.name: f.kind for f in profile.features}
    assert kinds == {"flag": "categorical", "nullable": "numeric", "kind": "categorical"}
    assert profile.feature("nullable").reference == (25, 25, 25, 25)  # 1, 3, 4, missing
    live = pd.DataFrame(
        {"flag": [True, None], "nullable": ["3", "oops"], "kind": [["a"], "a"]}, dtype=object
    )
    counts = profile.summarise(live)
    assert counts["flag"] == [1, 0, 0, 1]  # True, False, other, missing
    assert counts["nullable"] == [0, 1, 0, 1]  # a numeric string counts, garbage is missing
    assert counts["kind"] == [1, 0, 0, 1, 0]  # an unhashable value is "other"


def test_integer_column_labels_match_by_name() -> None:
    rng = np.random.default_rng(14)
    train = pd.DataFrame(rng.normal(size=(200, 3)))  # what a model fitted on arrays sees
    profile = ReferenceProfile.from_frame(train)
    assert [f.name for f in profile.features] == ["0", "1", "2"]
    live = pd.DataFrame(rng.normal(size=(50, 3)))
    counts = profile.summarise(live)
    assert all(counts[name][-1] == 0 and sum(counts[name]) == 50 for name in counts)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ReferenceProfile.from_values("p", [1.0, 2.0], bins=1), "bins"),
        (lambda: ReferenceProfile.from_values("p", ["a"], max_categories=0), "max_categories"),
        (lambda: ReferenceProfile.from_values("p", [1], kind="ordinal"), "kind"),  # type: ignore[arg-type]
        (lambda: ReferenceProfile.from_dict({"format": 99, "features": []}), "format"),
    ],
)
def test_bad_options_are_one_line_errors(call: object, message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        call()  # type: ignore[operator]
