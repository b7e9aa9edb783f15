"""QuorumDB storage engine: six storage nodes holding the writer's WAL with a 4-of-6 write quorum.

Why it exists: this package is the durable half of the product. Storage nodes (``aurora_storage.node``)
receive WAL from the writer, checksum, archive and repair it; the client (``aurora_storage.client``) reads
it back from any three nodes for promotion and restore; ``aurora_storage.slots`` prepares a writer.
It must not import the operator or the instance manager: they depend on it, never the other way round.
"""
