"""After each end-to-end test: no secret of the test's namespace appears in a log, an Event or a status.

Why after every test and not once at the end: each test's namespace (with its Secrets, pods and Events) is
deleted when the test ends, so the scan runs just before, over everything that namespace shows: every
container's log (and the previous instance of a restarted one), every Event, the status of every
AuroraCluster and AuroraSnapshot, and the operator's log since the test began. The Secrets' values are
the needles: passwords, tokens, access keys, encryption keys, private keys (short values such as user names
are not secrets and are skipped).

``leaks`` is pure (unit-tested in ``test_secret_scan.py``); ``collect`` reads the cluster.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from kube import Kubectl

MIN_LENGTH = 12
"""Values shorter than this (user names, database names, ports, hosts' short names) are not searched for."""
NOT_SECRET_KEYS = {"username", "dbname", "database", "host", "port", "ca.crt", "tls.crt"}
"""Keys whose values are public by design (a certificate is shown to every client)."""


def _public(key: str) -> bool:
    """An access key's id names it (S3 and the Data API log it, as AWS does); its secret is the secret."""
    flat = key.lower().replace("_", "").replace("-", "")
    return key in NOT_SECRET_KEYS or key.startswith("uri") or "accesskeyid" in flat or flat == "accesskey"


def needles(secrets: list[dict[str, object]]) -> dict[str, str]:
    """``Secret/key`` -> the secret value (each line of a multi-line one, such as a PEM key, separately)."""
    found: dict[str, str] = {}
    for secret in secrets:
        meta = secret.get("metadata")
        name = meta.get("name", "?") if isinstance(meta, dict) else "?"
        data = secret.get("data") or {}
        assert isinstance(data, dict)
        for key, encoded in data.items():
            if _public(key):
                continue
            try:
                value = base64.b64decode(encoded).decode()
            except (binascii.Error, UnicodeDecodeError):
                continue
            lines = [v.strip() for v in value.splitlines() if not v.startswith("-----")] or [value]
            for i, line in enumerate(lines):
                if len(line) >= MIN_LENGTH:
                    found[f"Secret {name} key {key}" + (f" line {i + 1}" if len(lines) > 1 else "")] = line
    return found


def leaks(secrets: Mapping[str, str], texts: Mapping[str, str]) -> list[str]:
    """Where each secret appears, named (never the value itself)."""
    return [f"{what} appears in {where}" for where, text in texts.items() for what, value in secrets.items()
            if value in text]  # fmt: skip


def collect(ns: Kubectl, operator: Kubectl, since: str) -> dict[str, str]:
    """Everything a user or an attacker with read access to logs, Events and status would see."""
    pods = ns.get_json("pods")["items"]
    jobs: dict[str, list[str]] = {}
    for pod in pods:
        name = pod["metadata"]["name"]
        for c in pod["spec"].get("containers", []) + pod["spec"].get("initContainers", []):
            jobs[f"log of {name}/{c['name']}"] = ["logs", name, "-c", c["name"], "--tail=-1"]
        for status in pod.get("status", {}).get("containerStatuses", []):
            if status.get("restartCount"):
                jobs[f"previous log of {name}/{status['name']}"] = [
                    "logs", name, "-c", status["name"], "--previous", "--tail=-1"
                ]  # fmt: skip
    with ThreadPoolExecutor(8) as pool:
        logs = dict(zip(jobs, pool.map(lambda args: ns.run(*args, check=False), jobs.values()), strict=True))
    texts = dict(logs)
    texts["Events"] = ns.run("get", "events", "-o", "json", check=False)
    for kind in ("auroraclusters", "aurorasnapshots"):
        for obj in json.loads(ns.run("get", kind, "-o", "json", check=False) or '{"items": []}')["items"]:
            texts[f"status of {kind} {obj['metadata']['name']}"] = json.dumps(obj.get("status", {}))
    texts["operator log"] = operator.run("logs", "-l", "app.kubernetes.io/name=quorumdb-operator",
                                         "--since-time", since, "--tail=-1", "--all-containers",
                                         check=False)  # fmt: skip
    return texts
