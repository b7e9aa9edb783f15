"""The revision of a pod template: what a pod runs with, minus what the operator changes at run time.

Why not the template's own hash (or the StatefulSet's controller revision): the writer's role and term are in
the instance templates, so every failover would make every pod look out of date and a rolling update keyed on
"template changed" would restart the whole cluster after each failover. Role and term reach running pods
through labels, annotations and the instance manager's API; a pod needs a restart only when something else
in its template changed. Pods carry the revision of the template they were created from (an annotation of
the template), so "out of date" is a string compare on the pod, which also survives an operator restart.
"""

from __future__ import annotations

import copy
import hashlib
import json

from aurora_api import contract

from .meta import Manifest

RUNTIME_ENV = frozenset({contract.EnvInstance.ROLE, contract.EnvInstance.TERM})
"""Environment variables the operator changes without a restart (start-up hints only)."""


def of_template(template: Manifest) -> str:
    """The revision of a pod template (its revision annotation, if any, excluded)."""
    stripped = copy.deepcopy(template)
    annotations = stripped.get("metadata", {}).get("annotations", {})
    annotations.pop(contract.ANNOTATION_REVISION, None)
    for container in stripped.get("spec", {}).get("containers", []):
        container["env"] = [e for e in container.get("env", []) if e.get("name") not in RUNTIME_ENV]
    return hashlib.sha256(json.dumps(stripped, sort_keys=True).encode()).hexdigest()[:12]


def stamp(stateful_set: Manifest) -> Manifest:
    """The StatefulSet with its template's revision as a template annotation (so every pod carries it)."""
    template = stateful_set["spec"]["template"]
    meta = template.setdefault("metadata", {})
    meta["annotations"] = {**meta.get("annotations", {}), contract.ANNOTATION_REVISION: of_template(template)}
    return stateful_set


def of_pod(pod: Manifest) -> str | None:
    """The revision a pod was created with (None for pods from templates without one)."""
    value = pod.get("metadata", {}).get("annotations", {}).get(contract.ANNOTATION_REVISION)
    return str(value) if value is not None else None


def of_set(stateful_set: Manifest) -> str | None:
    """The revision a StatefulSet's pods should have."""
    annotations = stateful_set.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {})
    value = annotations.get(contract.ANNOTATION_REVISION)
    return str(value) if value is not None else None
