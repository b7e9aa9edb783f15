"""Which ``spec.postgresql.parameters`` are applied: unknown or invalid ones are refused, by name.

Why here and not only in the schema: the API server cannot know PostgreSQL's ~350 parameters, their units
and ranges at a reasonable validation cost, and an invalid value in postgresql.conf stops PostgreSQL at its
next start. So the operator checks every parameter against the server's own catalog (``pgparams``) and
renders only accepted ones. A refused parameter keeps the value the pods already have (read back from the
live ConfigMap and StatefulSets), so a typo never reverts a working setting to its default; the refusal is
a condition and an Event naming each parameter, and everything else keeps being reconciled.
"""

from __future__ import annotations

import re

from aurora_api import contract, pgparams
from aurora_api.v1alpha1.cluster import AuroraCluster

from ..render import names
from .observed import Observed

CONDITION = "ParametersAccepted"
_LINE = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*=\s*'((?:[^']|'')*)'\s*$")


def parse(text: str) -> dict[str, str]:
    """Lines ``name = 'value'`` as ``config`` renders them."""
    found = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m is not None:
            found[m.group(1)] = m.group(2).replace("''", "'").replace("\\\\", "\\")
    return found


def live(c: AuroraCluster, observed: Observed) -> dict[str, str]:
    """Parameters the pods run with now: the ConfigMap's, and any instance template's restart-only ones."""
    found: dict[str, str] = {}
    config = observed.objects.get(("ConfigMap", names.config(c)))
    if config is not None:
        found |= parse(config.get("data", {}).get(contract.CONFIG_POSTGRESQL_CONF, ""))
    for (kind, name), obj in sorted(observed.objects.items()):
        if kind != "StatefulSet" or names.instance_ordinal(c, name) is None:
            continue
        for container in obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            for env in container.get("env", []):
                if env.get("name") == contract.EnvInstance.STATIC_PARAMETERS:
                    found |= parse(env.get("value", ""))
    return found


def accept(c: AuroraCluster, observed: Observed) -> tuple[AuroraCluster, list[str]]:
    """The cluster with only accepted parameters (refused ones at their live value, if any), and one
    sentence per refused parameter."""
    wanted = c.spec.postgresql.parameters
    refused = pgparams.check_all(wanted)
    if not refused:
        return c, []
    bad = {name for name in wanted if pgparams.check(name, wanted[name]) is not None}
    running = live(c, observed)
    kept = {k: v for k, v in wanted.items() if k not in bad}
    kept |= {k: running[k] for k in bad if k in running}
    postgresql = c.spec.postgresql.model_copy(update={"parameters": kept})
    spec = c.spec.model_copy(update={"postgresql": postgresql})
    return c.model_copy(update={"spec": spec}), refused
