"""Chooses the ``StorageQuorum`` adapter from the environment.

Why: one place turns ``contract.Env.STORAGE_NODES`` into the storage adapter, so actions and the
``restore_command`` helper agree. It must not be imported by the pure modules.
"""

from __future__ import annotations

from collections.abc import Mapping

from aurora_api import contract, control

from aurora_instance.httpstorage import HttpStorage
from aurora_instance.settings import ConfigError
from aurora_instance.storage import StorageQuorum


def storage_from_env(env: Mapping[str, str], tokens: control.Tokens | None = None) -> StorageQuorum:
    """``tokens`` sign term changes (fencing); without them only reads work (``restore_command``)."""
    raw = env.get(contract.Env.STORAGE_NODES, "")
    urls = [u.strip() for u in raw.split(",") if u.strip()]
    if len(urls) != contract.STORAGE_NODES:
        raise ConfigError(
            f"{contract.Env.STORAGE_NODES} lists {len(urls)} storage nodes, need {contract.STORAGE_NODES}"
        )
    return HttpStorage(urls, tokens=tokens)
