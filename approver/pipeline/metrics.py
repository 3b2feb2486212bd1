"""Prometheus metrics: per-process ones, and the cluster's state read from Redis at scrape time."""

from __future__ import annotations

import os
import re
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from redis.exceptions import RedisError
from rq.registry import FailedJobRegistry

from approver import state as st

# Per process. Under gunicorn, PROMETHEUS_MULTIPROC_DIR (set by `approver web`) makes these
# add up across its worker processes.
WEBHOOKS = Counter(
    "approver_webhooks_received_total", "Inbound webhooks and hand-offs, by source and answer",
    ["source", "code"],
)
FOREIGN_ORG_EVENTS = Counter(
    "approver_foreign_org_events_total",
    "Key request events of a Tyk organisation this service does not serve, by portal",
    ["portal"],
)
DASHBOARD_CALLS = Counter(
    "approver_dashboard_calls_total", "Tyk Dashboard API calls, by route and status",
    ["method", "route", "status"],
)
DASHBOARD_SECONDS = Histogram(
    "approver_dashboard_call_seconds", "Tyk Dashboard API call latency, by route",
    ["method", "route"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# Webhook received -> decision applied at the Dashboard; kept in Redis so that every
# worker on every machine adds to one histogram.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
LATENCY_KEY = st.PREFIX + "stats:latency"
DECISIONS_KEY = st.PREFIX + "stats:decisions"
# A path segment holding a digit, an "@" or an escape, or a long token, is an id: the words
# of Tyk's API paths have none of these.
_ID_SEGMENT = re.compile(r"/(?:[^/]*[0-9@%][^/]*|[A-Za-z0-9_-]{20,})(?=/|$)")


def route(path: str) -> str:
    """A Dashboard path with its ids replaced, so that labels stay few."""
    return _ID_SEGMENT.sub("/{id}", path.split("?", 1)[0])


def rule_label(rule: str | None) -> str:
    """A decision's rule as a label: a rule's id, or `explicit:<source>` without the event id.

    Explicit decisions are recorded as `explicit:billing:<event id>`: one series per billing
    event would grow without bound.
    """
    rule = rule or "default"
    return ":".join(rule.split(":", 2)[:2]) if rule.startswith("explicit:") else rule


def observe_dashboard_call(method: str, path: str, outcome: str, seconds: float) -> None:
    """The Dashboard client's observer."""
    template = route(path)
    DASHBOARD_CALLS.labels(method, template, outcome).inc()
    DASHBOARD_SECONDS.labels(method, template).observe(seconds)


def count_decision(redis, outcome: str, rule: str | None) -> None:
    """Count a decision, cluster-wide."""
    redis.hincrby(DECISIONS_KEY, f"{outcome}|{rule_label(rule)}", 1)


def observe_applied(redis, seconds: float) -> None:
    """Add one webhook-to-applied latency to the cluster-wide histogram."""
    pipe = redis.pipeline(transaction=False)
    for bound in LATENCY_BUCKETS:
        if seconds <= bound:
            pipe.hincrby(LATENCY_KEY, f"le:{bound}", 1)
    pipe.hincrbyfloat(LATENCY_KEY, "sum", seconds)
    pipe.hincrby(LATENCY_KEY, "count", 1)
    pipe.execute()


class ClusterCollector:
    """Queue depth, oldest job, failed jobs, waits, decisions, latency, rules and Dashboard."""

    def __init__(self, runtime):
        self.rt = runtime

    def collect(self):
        try:
            yield from self._collect()
        except RedisError:
            yield GaugeMetricFamily("approver_redis_up", "Redis answered the scrape", value=0)

    def _collect(self):
        rt, redis = self.rt, self.rt.redis
        queue = rt.queue
        depth = GaugeMetricFamily("approver_queue_depth", "Jobs waiting in the queue",
                                  labels=["queue"])
        depth.add_metric([queue.name], queue.count)
        yield depth
        oldest = GaugeMetricFamily("approver_queue_oldest_job_age_seconds",
                                   "Age of the oldest queued job", labels=["queue"])
        first = queue.get_job_ids(0, 1)
        job = queue.fetch_job(first[0]) if first else None
        age = time.time() - job.enqueued_at.timestamp() if job and job.enqueued_at else 0.0
        oldest.add_metric([queue.name], max(age, 0.0))
        yield oldest
        failed = GaugeMetricFamily("approver_failed_jobs", "Jobs in the failed registry",
                                   labels=["queue"])
        failed.add_metric([queue.name], FailedJobRegistry(queue=queue).count)
        yield failed
        yield GaugeMetricFamily("approver_waiting_requests", "Key requests waiting (billing)",
                                value=redis.zcard(st.WAITS_KEY))
        decisions = CounterMetricFamily("approver_decisions", "Decisions by outcome and rule",
                                        labels=["outcome", "rule"])
        counts: dict[tuple[str, str], int] = {}
        for field, count in redis.hgetall(DECISIONS_KEY).items():
            # Fields counted per event id before labels were bounded fold into one series.
            outcome, _, rule = field.decode().partition("|")
            key = (outcome, rule_label(rule))
            counts[key] = counts.get(key, 0) + int(count)
        for labels, count in sorted(counts.items()):
            decisions.add_metric(list(labels), count)
        yield decisions
        yield self._latency(redis.hgetall(LATENCY_KEY))
        yield from self._health(st.Store(redis).health())
        yield GaugeMetricFamily("approver_redis_up", "Redis answered the scrape", value=1)

    @staticmethod
    def _latency(raw: dict) -> HistogramMetricFamily:
        values = {k.decode(): float(v) for k, v in raw.items()}
        buckets = [(str(b), values.get(f"le:{b}", 0.0)) for b in LATENCY_BUCKETS]
        buckets.append(("+Inf", values.get("count", 0.0)))
        family = HistogramMetricFamily("approver_webhook_to_applied_seconds",
                                       "Webhook received to decision applied in Tyk")
        family.add_metric([], buckets, sum_value=values.get("sum", 0.0))
        return family

    @staticmethod
    def _health(health: dict):
        revision = GaugeMetricFamily("approver_rules_info", "Rules revision in force",
                                     labels=["revision"])
        if health.get("rules_revision"):
            revision.add_metric([health["rules_revision"]], 1)
        yield revision
        yield CounterMetricFamily("approver_rules_reload_failures",
                                  "Rule edits that did not load (the last good rules stayed)",
                                  value=int(health.get("rules_reload_failures") or 0))
        up = health.get("dashboard") == "ok"
        yield GaugeMetricFamily("approver_dashboard_up",
                                "The Tyk Dashboard answered the last worker check",
                                value=1 if up else 0)


def render(runtime) -> tuple[bytes, str]:
    """The exposition text for /metrics: this tier's processes plus the cluster view."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    cluster = CollectorRegistry()
    cluster.register(ClusterCollector(runtime))
    return generate_latest(registry) + generate_latest(cluster), CONTENT_TYPE_LATEST
