"""The node's metrics: flush LSN, lag behind the writer, bytes stored, archive and repair progress.

Why it exists: it maps the status document onto Prometheus names in one place, so that dashboards and
the operator see the same numbers as ``GET /v1/status``. It must not compute anything the status does not.
"""

from __future__ import annotations

from typing import Any

from aurora_storage import lsn as lsnmod
from aurora_storage import metrics
from aurora_storage.node import runtime

P = "quorumdb_storage_"


def _lsn(text: str | None) -> int | None:
    return lsnmod.parse_lsn(text) if text else None


def samples(rt: runtime.Runtime, st: dict[str, Any]) -> list[metrics.Sample]:
    lab = {"node": st["node"]}
    c = rt.counters
    r = st["repair"]
    g, k = "gauge", "counter"
    return [
        metrics.Sample(
            P + "flush_lsn", "End of WAL held by this node (bytes since 0/0).", g, _lsn(st["flush_lsn"]), lab
        ),
        metrics.Sample(
            P + "writer_flush_lsn",
            "Writer's flush LSN as last observed.",
            g,
            _lsn(st["writer_flush_lsn"]),
            lab,
        ),
        metrics.Sample(
            P + "lag_bytes", "Bytes this node is behind the writer's flush LSN.", g, st["lag_bytes"], lab
        ),
        metrics.Sample(
            P + "writer_unquorumed_bytes",
            "Bytes the writer flushed that fewer than 4 storage nodes hold (commit-cancel exposure).",
            g,
            st["unquorumed_bytes"],
            lab,
        ),
        metrics.Sample(
            P + "writer_streaming_nodes",
            "Storage nodes streaming from the writer.",
            g,
            st["writer_streaming_nodes"],
            lab,
        ),
        metrics.Sample(
            P + "bytes_stored", "Bytes of WAL files on this node's volume.", g, st["bytes_stored"], lab
        ),
        metrics.Sample(P + "segments", "Completed segments held.", g, st["segments"], lab),
        metrics.Sample(P + "term", "Current term.", g, st["term"], lab),
        metrics.Sample(
            P + "healthy", "1 when the node holds every segment of its window.", g, int(st["healthy"]), lab
        ),
        metrics.Sample(P + "streaming", "1 while the receiver runs.", g, int(st["streaming"]), lab),
        metrics.Sample(P + "timeline", "Timeline of the newest WAL file.", g, st["timeline"], lab),
        metrics.Sample(
            P + "segments_archived_total",
            "Segments this node uploaded to the archive.",
            k,
            c.segments_archived,
            lab,
        ),
        metrics.Sample(
            P + "archive_confirmed_total",
            "Segments found already archived by another node.",
            k,
            c.archive_confirmed,
            lab,
        ),
        metrics.Sample(P + "archive_errors_total", "Failed archive rounds.", k, c.archive_errors, lab),
        metrics.Sample(
            P + "archived_lsn", "End LSN of the newest segment known archived.", g, c.archived_lsn, lab
        ),
        metrics.Sample(P + "repairing", "1 while repairing.", g, int(r["repairing"]), lab),
        metrics.Sample(P + "repair_missing_files", "Files still to fetch.", g, r["missing"], lab),
        metrics.Sample(
            P + "repair_fetched_files_total", "Files fetched by repair.", k, r["fetched_files"], lab
        ),
        metrics.Sample(
            P + "repair_fetched_bytes_total", "Bytes fetched by repair.", k, r["fetched_bytes"], lab
        ),
        metrics.Sample(
            P + "corrupt_detected_total",
            "Corrupt files detected (reads, scrub, repair).",
            k,
            c.corrupt_detected,
            lab,
        ),
        metrics.Sample(P + "receiver_starts_total", "Receiver (re)starts.", k, c.receiver_starts, lab),
        metrics.Sample(
            P + "retention_deleted_total", "Segments deleted after archive.", k, c.deleted_segments, lab
        ),
    ]
