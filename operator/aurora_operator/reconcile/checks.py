"""Can the spec be satisfied here? Findings that become conditions and Warning Events, never exceptions.

Why not raise: a missing zone or Secret blocks part of a cluster, not the reconcile. Everything else keeps
being applied, and the condition tells the user exactly which label or Secret to fix.
"""

from __future__ import annotations

import dataclasses
import datetime

from aurora_api import capacity
from aurora_api.contract import TLS_CA, TLS_CERT, TLS_KEY
from aurora_api.v1alpha1.cluster import AuroraCluster

from .. import certs
from ..render import names
from .observed import Observed


@dataclasses.dataclass(frozen=True)
class Finding:
    condition: str
    reason: str
    message: str


ZONES = "ZonesAvailable"
SECRETS = "SecretsAvailable"
CAPACITY = "CapacitySupported"
CERTIFICATE = "CertificateValid"


def zones(c: AuroraCluster, observed: Observed) -> list[Finding]:
    zone_spec = c.spec.storage.zones
    missing = [(i, v) for i, v in enumerate(zone_spec.values) if v not in observed.zones]
    return [
        Finding(
            ZONES,
            "NoNodesInZone",
            f"no schedulable node has label {zone_spec.topology_key}={value}: storage pods "
            f"{' and '.join(names.storage_pods(c)[2 * index : 2 * index + 2])} (2 of 6) cannot be scheduled",
        )
        for index, value in missing
    ]


def secrets(c: AuroraCluster, observed: Observed) -> list[Finding]:
    found = []
    encryption = c.spec.backup.encryption if c.spec.backup is not None else None
    if encryption is not None and encryption.key_secret.name not in observed.secrets:
        found.append(
            Finding(
                SECRETS,
                "SecretNotFound",
                f"Secret {encryption.key_secret.name!r} (spec.backup.encryption.keySecret.name) not found in "
                f"namespace {c.metadata.namespace}: pods run, nothing is archived until it exists",
            )
        )
    if c.spec.backup is not None:
        name = c.spec.backup.object_store.credentials_secret.name
        if name not in observed.secrets:
            found.append(
                Finding(
                    SECRETS,
                    "SecretNotFound",
                    f"Secret {name!r} (spec.backup.objectStore.credentialsSecret.name) not found in "
                    "namespace "
                    f"{c.metadata.namespace}: pods run, backups cannot",
                )
            )
        ca = c.spec.backup.object_store.ca_secret
        if ca is not None and ca.name not in observed.secrets:
            found.append(
                Finding(
                    SECRETS,
                    "SecretNotFound",
                    f"Secret {ca.name!r} (spec.backup.objectStore.caSecret.name) not found in namespace "
                    f"{c.metadata.namespace}: pods run, but cannot verify the store's certificate, so "
                    "backups cannot",
                )
            )
    if c.spec.tls.enabled and c.spec.tls.secret_name and c.spec.tls.secret_name not in observed.secrets:
        found.append(
            Finding(
                SECRETS,
                "SecretNotFound",
                f"Secret {c.spec.tls.secret_name!r} (spec.tls.secretName) not found in namespace "
                f"{c.metadata.namespace}: instance pods cannot start",
            )
        )
    if c.spec.data_api is not None and c.spec.data_api.enabled:
        for name in c.spec.data_api.secrets:
            if name not in observed.secrets:
                found.append(
                    Finding(
                        SECRETS,
                        "SecretNotFound",
                        f"Secret {name!r} (spec.dataApi.secrets) not found in namespace "
                        f"{c.metadata.namespace}: Data API calls naming it get InvalidSecretException",
                    )
                )
    return found


def referenced_secrets(c: AuroraCluster) -> list[str]:
    """Secrets the cluster needs but does not create."""
    found = []
    if c.spec.backup is not None:
        found.append(c.spec.backup.object_store.credentials_secret.name)
        if c.spec.backup.encryption is not None:
            found.append(c.spec.backup.encryption.key_secret.name)
        if c.spec.backup.object_store.ca_secret is not None:
            found.append(c.spec.backup.object_store.ca_secret.name)
    if c.spec.tls.enabled and c.spec.tls.secret_name:
        found.append(c.spec.tls.secret_name)
    if c.spec.data_api is not None and c.spec.data_api.enabled:
        found += [s for s in c.spec.data_api.secrets if s not in found]
    return found


def capacity_range(c: AuroraCluster, observed: Observed) -> list[Finding]:
    """A serverless maximum no node can hold (the kubelet refuses the resize; the autoscaler stays below)."""
    serverless = c.spec.instances.serverless
    if serverless is None:
        return []
    found = []
    largest = max((capacity.fitting(*offer) for offer in observed.node_allocatable.values()), default=None)
    if largest is not None and serverless.max_capacity > largest:
        found.append(
            Finding(
                CAPACITY,
                "MaxCapacityTooLarge",
                f"maxCapacity {serverless.max_capacity:g} ACU requests "
                f"{capacity.memory_bytes(serverless.max_capacity) / capacity.GIB:g} GiB and "
                f"{capacity.cpu_millis(serverless.max_capacity) * capacity.CPU_REQUEST_SHARE / 1000:g} "
                f"cores per instance; the largest node holds {largest:g} ACU: a resize past what a node "
                "holds is refused by its kubelet, and the autoscaler stays below it",
            )
        )
    return found


def certificate(c: AuroraCluster, observed: Observed, now: datetime.datetime) -> list[Finding]:
    """The user's certificate (``spec.tls.secretName``), checked as PostgreSQL and its clients will: found
    before an instance restarts on it, not after (a missing Secret is ``secrets``' finding)."""
    name = c.spec.tls.secret_name
    if not c.spec.tls.enabled or not name or name not in observed.certificates:
        return []
    data = observed.certificates[name]
    problems = certs.defects(data.get(TLS_CERT), data.get(TLS_KEY), data.get(TLS_CA), now)
    if not problems:
        return []
    expiring = all("is not renewed by the operator" in p for p in problems)
    consequence = (
        "renew it: instances started after it expires cannot serve TLS"
        if expiring
        else "PostgreSQL cannot serve it: an instance that restarts now stays down until it is fixed "
        "(running ones keep the certificate they loaded)"
    )
    return [
        Finding(
            CERTIFICATE,
            "CertificateExpiring" if expiring else "CertificateUnusable",
            f"Secret {name!r} (spec.tls.secretName): {'; '.join(problems)}: {consequence}",
        )
    ]


def all_findings(c: AuroraCluster, observed: Observed, now: datetime.datetime) -> list[Finding]:
    findings = zones(c, observed) + secrets(c, observed) + capacity_range(c, observed)
    return findings + certificate(c, observed, now)
