"""Everything a cluster should consist of, as one ordered list of manifests.

Why ordered: the order is the apply order (identity and config before the pods that mount them, storage
before compute) so a fresh cluster comes up in one pass. Secrets are not here: they are created only when
missing (see ``reconcile.plan``) so their passwords are never re-rendered.
"""

from __future__ import annotations

from aurora_api import contract
from aurora_api.v1alpha1.cluster import AuroraCluster

from ..settings import Settings
from . import accounts, config, disruption, instances, network, services, storage
from .meta import Manifest


def shared(c: AuroraCluster, settings: Settings) -> list[Manifest]:
    """Objects that do not depend on which instances exist."""
    return [
        accounts.service_account(c),
        accounts.role(c),
        accounts.role_binding(c),
        config.config_map(c),
        storage.headless_service(c),
        *storage.all_sets(c, settings),
        instances.headless_service(c),
        services.writer(c),
        services.readers(c),
        disruption.storage(c),
        disruption.writer(c),
        disruption.readers(c),
        *network.policies(c, settings),
        *([accounts.token_review_binding(c, settings.token_reviewer_role)] if c.spec.token_login else []),
    ]


def instance(c: AuroraCluster, settings: Settings, ordinal: int, writer: int) -> list[Manifest]:
    """The StatefulSet and Service of one instance; ``writer`` is the ordinal that holds the writer role."""
    role = contract.ROLE_WRITER if ordinal == writer else contract.ROLE_READER
    term = max(c.status.term, 1)
    return [instances.stateful_set(c, settings, ordinal, role, term), services.instance(c, ordinal)]
