"""Batch inference on the cluster: the same Bento, runtime and validation as the endpoint.

Runs in the kernel (or the CLI) as a Ray Data driver; the scoring actors run on the
cluster's workers. :func:`jupyter_deploy.batch.job.run` is the entry point.
"""
