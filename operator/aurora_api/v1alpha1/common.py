"""Building blocks shared by the QuorumDB kinds: the base model, quantities, conditions.

Why: Kubernetes conventions (camelCase JSON, status conditions with ``observedGeneration``) are the same for
every kind, so they are spelled once. Nothing here knows about a particular kind.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=32)]
"""A Kubernetes resource quantity written as a string, e.g. ``"10Gi"`` or ``"500m"``."""

IntOrQuantity = Annotated[int | Quantity, Field()]
"""CPU and memory as Kubernetes accepts them: ``1`` or ``"500m"``."""

SecretName = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")]


def config(*rules: dict[str, Any], extra: Literal["forbid", "ignore"] = "forbid") -> ConfigDict:
    """Model config: camelCase on the wire, unknown fields rejected, optional CEL ``rules`` on the object."""
    cfg = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra=extra)
    if rules:
        cfg["json_schema_extra"] = {"x-kubernetes-validations": [dict(rule) for rule in rules]}
    return cfg


class ApiModel(BaseModel):
    """Base of every API object: camelCase on the wire, unknown fields rejected (as the API server prunes)."""

    model_config = config()


def nested(**extra: Any) -> dict[str, Any]:
    """``json_schema_extra`` for an object-valued field that defaults to ``{}`` so its own defaults apply."""
    return {"default": {}, **extra}


def immutable(field: str) -> dict[str, Any]:
    """A CEL transition rule that forbids changing the field once set."""
    return {"rule": "self == oldSelf", "message": f"{field} is immutable"}


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(ApiModel):
    """One observation about the object, shaped like ``metav1.Condition``."""

    type: str = Field(max_length=316, description="CamelCase condition type, e.g. Ready.")
    status: ConditionStatus
    reason: str = Field(max_length=1024, description="CamelCase machine-readable reason.")
    message: str = Field(default="", max_length=32768, description="Human-readable detail.")
    observed_generation: int = Field(
        default=0, ge=0, description="metadata.generation the condition is based on."
    )
    last_transition_time: datetime.datetime | None = Field(
        default=None, description="When status last changed (RFC 3339)."
    )


class ObjectMeta(BaseModel):
    """The part of ``metadata`` the operator reads; everything else is ignored."""

    model_config = ConfigDict(extra="ignore")

    name: str
    namespace: str = "default"
    uid: str = ""
    generation: int = 0
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    resource_version: str = Field(default="", alias="resourceVersion")
    """Optimistic-concurrency token: a status patch carrying it fails if the object changed since."""
    creation_timestamp: datetime.datetime | None = Field(default=None, alias="creationTimestamp")
    deletion_timestamp: str | None = Field(default=None, alias="deletionTimestamp")
