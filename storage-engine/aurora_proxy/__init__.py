"""The resume proxy: the cluster and reader endpoints while a serverless cluster is paused.

Why a process of its own: a paused cluster has no PostgreSQL to accept a connection, so something that
always runs must accept it, wake the instance and forward the connection once it answers: the client sees
a slow first connection, never an error. The operator points the endpoints at it only around a pause
(``docs/serverless.md``), so a running cluster's traffic does not pass it.
"""
