"""Reconciliation as observe -> plan -> apply -> report.

``observe`` reads the world once into an immutable ``Observed``; ``plan`` (pure) turns desired x observed into
small actions; ``apply`` executes them through ``kube.Kube``; ``report`` (pure) computes status and Events.
``loop.reconcile`` strings them together and is all the kopf handlers call.
"""
