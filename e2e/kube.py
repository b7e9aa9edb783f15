"""A thin, typed wrapper over `kubectl` for the end-to-end tests.

Why kubectl and not a client library: the e2e suite checks what a user sees, with the tool a user uses,
against the real API server of the kind test bed. Failures carry the command and its stderr.
It must not hide errors: every call either returns output or raises ``KubectlError``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


class KubectlError(RuntimeError):
    """A kubectl command failed; the message names the command and carries its stderr."""


@dataclass(frozen=True)
class Kubectl:
    """kubectl bound to one kubeconfig and (optionally) one namespace."""

    kubeconfig: str
    namespace: str | None = None

    def in_namespace(self, namespace: str) -> Kubectl:
        return Kubectl(self.kubeconfig, namespace)

    def run(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120) -> str:
        cmd = ["kubectl", "--kubeconfig", self.kubeconfig]
        if self.namespace:
            cmd += ["-n", self.namespace]
        cmd += list(args)
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise KubectlError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def apply(self, manifest: str | Sequence[dict[str, Any]]) -> None:
        if not isinstance(manifest, str):
            manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(manifest)})
        self.run("apply", "-f", "-", stdin=manifest)

    def get_json(self, *args: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.run("get", *args, "-o", "json"))
        return out

    def exec(self, pod: str, *command: str, check: bool = True, timeout: float = 60) -> str:
        return self.run("exec", pod, "--", *command, check=check, timeout=timeout)


class PortForward:
    """``kubectl port-forward`` to a Service on a free local port, restarted whenever it exits (it exits for
    good on its first failed connection, e.g. while the target pod restarts)."""

    def __init__(self, kubectl: Kubectl, target: str, remote_port: int) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.kubectl, self.target, self.remote_port = kubectl, target, remote_port
        self.proc: subprocess.Popen[bytes] | None = None

    def ensure(self) -> str:
        """The local URL, with a live forward behind it."""
        import socket

        if self.proc is None or self.proc.poll() is not None:
            ns = self.kubectl.namespace or "default"
            cmd = ["kubectl", "--kubeconfig", self.kubectl.kubeconfig, "-n", ns,
                   "port-forward", self.target, f"{self.port}:{self.remote_port}"]  # fmt: skip
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                    break
                except OSError:
                    time.sleep(0.2)
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


def wait_for(what: str, predicate: Callable[[], bool], timeout: float, interval: float = 1.0) -> None:
    """Poll ``predicate`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (KubectlError, KeyError, IndexError) as err:
            last_error = err
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout:.0f}s (last error: {last_error})")


def default_kubeconfig() -> str:
    cache = os.environ.get("AURORA_CACHE_DIR", os.path.expanduser("~/.cache/aurora-testbed"))
    return os.environ.get("KUBECONFIG", os.path.join(cache, "kubeconfig"))
