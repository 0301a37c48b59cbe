"""Why a model predicted what it did: per-column contributions of one prediction.

Runs where the model is loaded (a replica, a batch scorer) and imports nothing of ours
but the package's vocabulary; the kernel side only asks the endpoint's ``/explain``.
"""
