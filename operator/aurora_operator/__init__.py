"""The QuorumDB operator: turns ``AuroraCluster`` objects into pods, volumes, Services and status.

Layers (outer may import inner, never the reverse): ``main``/``handlers`` (kopf) -> ``reconcile`` (observe,
plan, apply, report) -> ``render`` (pure manifests) -> ``aurora_api`` (models and the pod contract).
``render`` and ``reconcile.plan``/``reconcile.status`` do no I/O; only ``kube`` talks to the API server.
"""
