"""The storage node service: one process per storage pod.

Why it exists: it wraps PostgreSQL's own quorum-correct receiver (``pg_receivewal --synchronous``) with
what PostgreSQL lacks: term fencing, checksums, an HTTP read path, archive, repair, retention, metrics.
Modules here are thin drivers around the pure cores in the parent package; they must not re-implement
quorum or LSN arithmetic.
"""
