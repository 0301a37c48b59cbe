"""A training script for ``notebooks/deploy.ipynb``: it leaves the fitted model in ``model``.

The deployment notebook runs this file and takes ``model`` as the candidate. Run as a
script, it writes the holdout rows it did not train on, for the notebook's ``data``::

    python examples/train_wine.py wine_holdout.csv
    jupyter-deploy run notebooks/deploy.ipynb record.ipynb -p name wine \\
        -p model examples/train_wine.py -p data wine_holdout.csv -p threshold 0.9
"""

from __future__ import annotations

import sys

from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_wine(return_X_y=True, as_frame=True)
X_train, X_holdout, y_train, y_holdout = train_test_split(
    X, y, test_size=0.25, random_state=0, stratify=y
)
model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, y_train)


def write_holdout(path: str) -> None:
    """The rows ``model`` never saw, features and a ``target`` column, as CSV."""
    X_holdout.assign(target=y_holdout).to_csv(path, index=False)


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "wine_holdout.csv"
    write_holdout(out)
    print(f"wrote {len(X_holdout)} holdout rows to {out}")
