# QuorumDB top-level targets. `make demo` and `make test` are the README's two commands.
SHELL := /bin/bash
export AURORA_CACHE_DIR ?= $(HOME)/.cache/aurora-testbed
export KUBECONFIG ?= $(AURORA_CACHE_DIR)/kubeconfig
export PATH := $(AURORA_CACHE_DIR)/tools:$(PATH)
VENV ?= .venv
PY := $(VENV)/bin/python
TESTBED := e2e/testbed

.PHONY: venv host walrecv bins cluster cluster-down image e2e test unit integration lint demo bench bench-backup bench-repair bench-data-api chaos chaos-pause clean-cache

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@
venv: $(VENV)/.installed

## Host packages (Debian: docker.io, PostgreSQL 15, gcc, libpq-dev, ...) and daemon; idempotent.
host:
	$(TESTBED)/host-prep.sh

## The storage node's C WAL receiver (storage-engine/walrecv/build/quorumdb-walrecv).
walrecv:
	$(MAKE) -s -C storage-engine/walrecv

## Binaries built from Go modules (kind, kubectl, helm, Kubernetes, etcd, MinIO, ...), cached (runc needs
## the host's libseccomp headers).
bins: host
	$(TESTBED)/build-bins.sh

## The kind test bed: three zones, built offline on first use, cached afterwards.
cluster:
	$(TESTBED)/cluster.sh
cluster-down:
	$(TESTBED)/cluster-down.sh

## The project's image, built and loaded into the test-bed cluster.
image: venv
	PYTHON=$(PY) $(TESTBED)/project-image.sh

lint: venv
	$(VENV)/bin/ruff check operator storage-engine tests e2e
	$(VENV)/bin/mypy operator storage-engine tests e2e

## Unit tests; the chart tests need helm, which `bins` builds (cached after the first build).
unit: venv bins
	$(VENV)/bin/pytest -q -m "not integration and not e2e" tests e2e/test_secret_scan.py e2e/test_workload_log.py

integration: venv host walrecv bins
	$(VENV)/bin/pytest -q -m integration tests e2e/test_audit_client.py

## The whole end-to-end suite on the kind test bed.
e2e: venv cluster image
	$(VENV)/bin/pytest -q --durations=0 --durations-min=20 -m e2e e2e

## Writer-pod force-deletions in a row under the audited workload (a script, not a test): prints the failover
## outage distribution (p50/p90/p99/max) and acknowledged/missing totals. CHAOS_ARGS overrides (--help).
CHAOS_ARGS ?= --runs 10
chaos: venv cluster image
	$(PY) e2e/chaos.py $(CHAOS_ARGS)

## Serverless auto-pause and resume cycles in a row (a script, not a test): prints the resume-time
## distribution (connect through the cluster endpoint -> first answer) and acknowledged/missing totals.
CHAOS_PAUSE_ARGS ?= --runs 10
chaos-pause: venv cluster image
	$(PY) e2e/pause_chaos.py $(CHAOS_PAUSE_ARGS)

## The README's main command: test bed, image, operator via Helm, the example AuroraCluster, a workload.
demo: venv
	PYTHON=$(PY) e2e/demo.sh

## What CI runs (.ci/run): lint, unit, integration (real PostgreSQL/S3 processes), e2e on kind.
test: lint unit integration e2e

## Benchmarks (scripts, not tests): each prints ratios against a baseline measured in the same run.
## bench: pgbench TPS/latency with no replication, a synchronous standby and the storage quorum (base
## backup and restore throughput: make bench-backup).
## BENCH_ARGS overrides the defaults (pgbench scale 10, 30 s runs, 3 interleaved repetitions, 1 and 8 clients).
BENCH_ARGS ?= --duration 30 --reps 3 --clients 1,8 --scale 10 --configs none,standby,quorum,receivewal
bench: venv
	$(PY) storage-engine/bench/quorum_bench.py $(BENCH_ARGS)

## Base backup and restore MB/s, ours (pg_basebackup streamed to/from S3) against pg_basebackup to local disk
## and pgBackRest to S3 on the same MinIO; needs pgbackrest and openssl (host) and MinIO (bins).
## BENCH_BACKUP_ARGS overrides the defaults (pgbench scale 20, about 300 MB; 3 interleaved repetitions).
BENCH_BACKUP_ARGS ?= --scale 20 --reps 3
bench-backup: venv host bins
	$(PY) storage-engine/bench/backup_bench.py $(BENCH_BACKUP_ARGS)

## Storage-node repair MB/s (an empty node rebuilding N segments from five peers) as a ratio to a durable
## copy of the same files on the same disk, interleaved. BENCH_REPAIR_ARGS overrides the defaults (1 GiB).
BENCH_REPAIR_ARGS ?= --segments 64 --reps 5
bench-repair: venv host walrecv
	$(PY) storage-engine/bench/repair_bench.py $(BENCH_REPAIR_ARGS)

## Data API statements/s (boto3's rds-data client -> the service, a separate process) as a ratio to psycopg
## direct, on the same local PostgreSQL. BENCH_DATA_API_ARGS overrides the defaults.
BENCH_DATA_API_ARGS ?= --seconds 10 --reps 3 --clients 1,8
bench-data-api: venv host
	$(PY) storage-engine/bench/data_api_bench.py $(BENCH_DATA_API_ARGS)

## Regenerate operator/aurora_api/postgres15_parameters.json (checked in) from pg_settings of a throwaway
## PostgreSQL 15 server; aurora_api.pgparams checks spec.postgresql.parameters against it.
.PHONY: pg-catalog
pg-catalog: venv
	$(PY) operator/tools/pgcatalog_gen.py
