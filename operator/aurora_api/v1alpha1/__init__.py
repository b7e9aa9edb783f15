"""The ``quorumdb.io/v1alpha1`` API: ``AuroraCluster`` and ``AuroraSnapshot`` as pydantic models.

These models are the single source of truth: the CRDs under ``crds/`` and ``charts/quorumdb/crds/`` are
generated from them (``python -m aurora_api.gen``), and the operator parses every object it reads with them.
"""
