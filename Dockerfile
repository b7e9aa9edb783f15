# The QuorumDB image: one image, three entry points (quorumdb-operator, quorumdb-storage-node,
# quorumdb-instance), PostgreSQL 15 from Debian. BASE_IMAGE is a build argument so that the offline test
# bed can use its debootstrapped base while everyone else builds FROM debian:bookworm-slim unchanged.
# Python dependencies come from a wheelhouse built on the host (`make image`), so the build itself needs
# only Debian's mirror.
ARG BASE_IMAGE=debian:bookworm-slim

# The storage node's C WAL receiver, compiled against Debian's libpq; only the binary is kept.
FROM ${BASE_IMAGE} AS walrecv
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev libpq-dev make \
 && rm -rf /var/lib/apt/lists/*
COPY storage-engine/walrecv /src
RUN make -C /src install PREFIX=/usr/local && /usr/local/bin/quorumdb-walrecv --help 2>&1 | grep -q usage

# The token-login PAM module (spec.tokenLogin), compiled against Debian's libpam; only the module is kept.
FROM ${BASE_IMAGE} AS pam
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev libpam0g-dev make \
 && rm -rf /var/lib/apt/lists/*
COPY storage-engine/pam /src
RUN make -C /src install PREFIX=/usr/local

FROM ${BASE_IMAGE}
# The label lets project-image.sh prune this project's superseded (dangling) images and nobody else's. Not
# on the walrecv stage: its untagged image is the build cache of that stage (pruning it re-ran its apt).
LABEL io.quorumdb.project=quorumdb
# A fixed UID/GID for postgres so pod securityContexts can name it; created before the package does.
RUN groupadd -r -g 999 postgres && useradd -r -u 999 -g postgres -d /var/lib/postgresql -s /bin/bash postgres \
 && mkdir -p /etc/postgresql-common \
 && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      postgresql-15 postgresql-client-15 python3 python3-venv ca-certificates tini procps \
 && rm -rf /var/lib/apt/lists/*
COPY --from=walrecv /usr/local/bin/quorumdb-walrecv /usr/local/bin/quorumdb-walrecv
COPY --from=pam /usr/local/lib/security/pam_quorumdb_token.so /usr/local/lib/security/pam_quorumdb_token.so
COPY build/wheels /tmp/wheels
RUN python3 -m venv /opt/quorumdb \
 && /opt/quorumdb/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels quorumdb \
 && rm -rf /tmp/wheels
# Token login (spec.tokenLogin): pg_hba sends the token roles to this PAM service, whose module runs the
# checker with the role in PAM_USER and the whole token on stdin (storage-engine/pam,
# aurora_instance/token_login.py); no other PAM module decides.
RUN printf '%s\n' \
      'auth    required /usr/local/lib/security/pam_quorumdb_token.so /opt/quorumdb/bin/quorumdb-token-login' \
      'account required pam_permit.so' > /etc/pam.d/quorumdb-token
ENV PATH=/opt/quorumdb/bin:/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1
USER 999:999
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["quorumdb-operator"]
