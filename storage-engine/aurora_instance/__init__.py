"""QuorumDB in-pod instance manager: runs one PostgreSQL writer or reader as PID 1 of its container.

Why it exists: compute is ordinary PostgreSQL, but who may write, up to which WAL position, and on which
timeline is decided by the storage quorum and the control plane's term, never by the local disk. This package
bootstraps, supervises, reports and promotes PostgreSQL under that rule. Layers, top to bottom:

- ``main``/``manager``/``http``: wiring and I/O (process, HTTP, signal handling);
- ``decide``: the pure decision core over an immutable ``snapshot.World``;
- ``actions``: long actions (bootstrap, promote, rejoin, quorum recovery) run in ``executor``;
- ``postgres``/``sql``/``waldump``/``storage``: thin drivers behind documented Protocols.

It must not import the operator; it shares only ``aurora_api.contract`` with it.
"""
