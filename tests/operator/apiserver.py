"""A throw-away Kubernetes control plane (etcd, kube-apiserver, the garbage collector) on loopback.

Why: CRD schemas, CEL rules and the admission policy are only really checked by a real API server, and the
lightkube adapter only by real server-side apply. The binaries are the ones the kind test bed builds into
``$AURORA_CACHE_DIR/bin`` (default ``~/.cache/aurora-testbed``): no network, no containers, ~6 s to start.
Absent binaries skip the tests locally and fail them under CI.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

TOKEN = "quorumdb-test-token"


@dataclasses.dataclass(frozen=True)
class ApiServer:
    kubeconfig: pathlib.Path
    kubectl: str
    server: str

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = os.environ | {"KUBECONFIG": str(self.kubeconfig)}
        done = subprocess.run(
            [self.kubectl, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        if check:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done


def binaries() -> dict[str, pathlib.Path]:
    cache = pathlib.Path(os.environ.get("AURORA_CACHE_DIR", pathlib.Path.home() / ".cache/aurora-testbed"))
    found: dict[str, pathlib.Path] = {}
    for name, pattern in (("etcd", "etcd-*/etcd"), ("kube-apiserver", "kubernetes-*/kube-apiserver"),
                          ("kube-controller-manager", "kubernetes-*/kube-controller-manager"),
                          ("kubectl", "kubernetes-*/kubectl")):  # fmt: skip
        matches = sorted((cache / "bin").glob(pattern))
        if matches:
            found[name] = matches[-1]
    missing = {"etcd", "kube-apiserver", "kube-controller-manager", "kubectl"} - set(found)
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{sorted(missing)} not found under {cache}/bin and CI is set")
        pytest.skip(f"{sorted(missing)} not built yet (make cluster builds them into {cache}/bin)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def control_plane(workdir: pathlib.Path) -> Iterator[ApiServer]:
    bins = binaries()
    certs = workdir / "certs"
    certs.mkdir(parents=True)
    subprocess.run(
        ["openssl", "genrsa", "-out", str(certs / "sa.key"), "2048"], check=True, capture_output=True
    )
    subprocess.run(["openssl", "rsa", "-in", str(certs / "sa.key"), "-pubout", "-out", str(certs / "sa.pub")],
                   check=True, capture_output=True)  # fmt: skip
    (workdir / "tokens.csv").write_text(f'{TOKEN},admin,admin,"system:masters"\n')
    client, peer, secure = free_port(), free_port(), free_port()
    server = f"https://127.0.0.1:{secure}"
    kubeconfig = workdir / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: t, cluster: {{server: '{server}', insecure-skip-tls-verify: true}}}}]\n"
        f"users: [{{name: t, user: {{token: {TOKEN}}}}}]\n"
        "contexts: [{name: t, context: {cluster: t, user: t}}]\ncurrent-context: t\n"
    )
    commands = [
        [str(bins["etcd"]), "--data-dir", str(workdir / "etcd"), "--listen-client-urls", f"http://127.0.0.1:{client}",
         "--advertise-client-urls", f"http://127.0.0.1:{client}", "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"default=http://127.0.0.1:{peer}", "--log-level", "error"],
        [str(bins["kube-apiserver"]), f"--etcd-servers=http://127.0.0.1:{client}", f"--secure-port={secure}",
         "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--cert-dir={certs}",
         f"--token-auth-file={workdir / 'tokens.csv'}", "--authorization-mode=RBAC",
         "--service-account-issuer=https://kubernetes.default.svc",
         f"--service-account-key-file={certs / 'sa.pub'}",
         f"--service-account-signing-key-file={certs / 'sa.key'}", "--service-cluster-ip-range=10.0.0.0/24"],
        [str(bins["kube-controller-manager"]), f"--kubeconfig={kubeconfig}", "--leader-elect=false",
         "--controllers=garbage-collector-controller", "--bind-address=127.0.0.1", "--secure-port=0"],
    ]  # fmt: skip
    processes: list[subprocess.Popen[bytes]] = []
    api = ApiServer(kubeconfig, str(bins["kubectl"]), server)
    try:
        for index, command in enumerate(commands):
            log = (workdir / f"{pathlib.Path(command[0]).name}.log").open("wb")
            processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
            if index == 0:
                time.sleep(1)
            if index == 1:
                deadline = time.monotonic() + 60
                while api.run("get", "--raw", "/readyz", check=False).returncode != 0:
                    assert time.monotonic() < deadline, (workdir / "kube-apiserver.log").read_text()[-3000:]
                    time.sleep(0.5)
        yield api
    finally:
        for process in reversed(processes):
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            if process.poll() is None:
                process.kill()
