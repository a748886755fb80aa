"""Prometheus metrics (issue 22): the core's Metrics port, the fast path's timings, and the scrape.

prometheus_client picks where values live when it is first imported: with PROMETHEUS_MULTIPROC_DIR
set (``serve --workers N`` sets it for its workers, to a directory of its own), every value is a
file there, and a scrape reads every worker's files, those of workers that have died included (their
counts stay counted; their live gauges go, ``multiprocess.mark_process_dead``). Without it, values
live in this process, and the scrape reads them.

Every label is a fixed word or an error class's ``code``: ``_label`` turns anything else into
"other", so no request can add a series.

By part: ``prometheus`` (the figures, ``PrometheusMetrics``) and ``scrape`` (reading them out: every
worker's files, the metrics address's small server).
"""

from doorward.metrics.prometheus import FLUSH_SECONDS, MULTIPROC_DIR, PrometheusMetrics
from doorward.metrics.scrape import CONTENT_TYPE, AddressServer, forget_process, scrape_directory

__all__ = [
    "CONTENT_TYPE",
    "FLUSH_SECONDS",
    "MULTIPROC_DIR",
    "AddressServer",
    "PrometheusMetrics",
    "forget_process",
    "scrape_directory",
]
