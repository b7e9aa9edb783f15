"""Pure manifest renderers: validated ``AuroraCluster`` (+ settings) in, Kubernetes manifest dicts out.

Must not import kopf, lightkube or anything that performs I/O; must not read the clock or randomness
(generated passwords are passed in). Manifests are dict literals, never YAML text.
"""
