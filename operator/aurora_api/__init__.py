"""The contract between QuorumDB's control plane and its data plane.

The operator (``aurora_operator``) and the in-pod processes (``aurora_storage``, ``aurora_instance``) both
depend on this package and never on each other: the CRD models, the pod-level wiring (ports, HTTP paths,
environment variable names) and the status documents they exchange are defined here exactly once.
"""
