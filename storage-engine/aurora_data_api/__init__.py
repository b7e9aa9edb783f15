"""The Data API: SQL over HTTP in the RDS Data API's wire format, so boto3's ``rds-data`` client works
unchanged against a QuorumDB cluster (``docs/data-api.md``).

Why a service of its own per cluster: callers that cannot hold a PostgreSQL connection (functions, short
jobs) get pooled connections, pinned ones for transactions, and AWS-shaped errors, without a driver.
"""
