"""Kopf settings for Brook (Kopf's configuration docs: watching, queueing, persistence)."""

from __future__ import annotations

import logging

import kopf

from brook.operator.constants import FIELD_MANAGER, FINALIZER, GROUP


def configure(settings: kopf.OperatorSettings) -> None:
    # Progress and the last handled spec live in annotations under our group
    # (brook.dev/...), not in status: status stays ours alone, applied server-side.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Watches: a server-side timeout below the API server's own (it closes idle
    # watches after 30-60 min), a client timeout a bit above it, and a connect
    # timeout, so a half-open connection cannot silently stop all reconciliation.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.watching.reconnect_backoff = 1.0
    # Other API calls (patches, events) must not hang forever either.
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 15
    # Bounded concurrency: per-object workers and the thread pool of sync handlers
    # (Admin API calls block; a few dozen clusters/topics reconcile in parallel).
    settings.queueing.worker_limit = 50
    settings.execution.max_workers = 16
    # Unexpected errors (exceptions the handlers do not expect) are retried after this
    # fixed delay; Kopf does not grow it. Known transient errors (brokers unreachable,
    # a cluster not ready) raise TemporaryError with brook.operator.backoff's delay:
    # 2 s doubling per retry, capped at 5 minutes, jittered.
    settings.execution.default_backoff = 30
    # Deleting a cluster or topic stops its resync timer first; the finalizer goes only
    # once the timer has exited. A timer busy in a sync reconcile cannot exit within
    # Kopf's few "instant" event-loop cycles, and Kopf then re-checks it only every
    # cancellation_polling seconds (60 by default): deletions stalled for a minute.
    settings.background.instant_exit_timeout = 0.1
    settings.background.cancellation_polling = 1.0
    # Events: warnings from logs, plus what the handlers report with kopf.event/warn
    # (kopf.info would be filtered by this level); reported as brook-operator.
    settings.posting.level = logging.WARNING  # per-handler success logs would flood Events
    settings.posting.reporting_component = FIELD_MANAGER
    settings.posting.event_name_prefix = "brook-"
    # No cluster-wide scanning of CRDs and namespaces: it needs list/watch on both at
    # cluster scope, which a namespaced install (Roles only) must not have. The
    # resources are discovered once at start-up, so install the CRDs before the
    # operator (the chart does; its checksum/crds pod annotation makes `helm upgrade`
    # restart the operator when they change).
    settings.scanning.disabled = True
    # One operator replica (the chart's Deployment uses Recreate); no peering objects.
    settings.peering.standalone = True
