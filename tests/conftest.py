"""Root conftest: registers the shared fixture plugins (PostgreSQL clusters, S3 server, storage nodes)."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.s3server",
    "tests.fixtures.storage",
]
