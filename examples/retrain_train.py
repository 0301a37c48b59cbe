"""Training function for notebooks/retrain.ipynb: rows in, fitted model out.

``data`` holds the deployment's input columns and ``label`` (logged traffic joined with
its feedback, plus the base CSV if one was given). Keep the preprocessing in the model
(a Pipeline), so the deployed model takes the same columns as the endpoint does today.
"""

from sklearn.ensemble import HistGradientBoostingClassifier


def train(data):
    features = data.drop(columns=["label"])
    return HistGradientBoostingClassifier(max_iter=200).fit(features, data["label"])
