-- evidence-gates: four independent decisions, each taken only when all of
-- its evidence holds and its checklist is declared; the system thresholds
-- are alerts beside them.
INSERT INTO @extschema@.capacity_plan_preset (name, doc) VALUES ('evidence-gates', $doc$
{
  "format": 1,
  "name": "evidence-gates",
  "description": "Four independent evidence gates (API bottleneck, search, WebSocket limit, pool exhaustion), each with a decision checklist, and the system thresholds as alerts.",
  "settings": {},
  "indicators": {
    "endpoint_p95_ms":            {"unit": "ms", "description": "API endpoint p95, labels {endpoint}"},
    "statement_top_share":        {"unit": "ratio", "description": "Share (0..1) of database execution time taken by the costliest statement"},
    "messages_per_second":        {"unit": "per second", "description": "Messages the API handles per second"},
    "searches_per_day":           {"unit": "per day", "description": "Searches in the last 24 h"},
    "search_p95_ms":              {"unit": "ms", "description": "Search p95"},
    "search_db_time_share":       {"unit": "ratio", "description": "Share (0..1) of database time spent on search"},
    "websocket_peak_concurrent":  {"unit": "count", "description": "Peak concurrent WebSocket connections"},
    "websocket_rejections":       {"unit": "count", "description": "WebSocket connections rejected since the last push"},
    "websocket_delivery_p95_ms":  {"unit": "ms", "description": "WebSocket message delivery latency p95"},
    "connection_timeout_errors":  {"unit": "count", "description": "Connection timeouts at the pool since the last push"},
    "pool_services":              {"unit": "count", "description": "Services sharing the busiest pool"},
    "api_p95_ms":                 {"unit": "ms", "description": "API p95 over all endpoints"},
    "cache_memory_utilization":   {"unit": "percent", "description": "Cache (Redis, memcached) memory in use"},
    "outbox_lag_seconds":         {"unit": "seconds", "description": "Age of the oldest unpublished outbox row"},
    "worker_queue_depth":         {"unit": "count", "description": "Jobs waiting in the worker queue"}
  },
  "gates": [
    {"name": "api-bottleneck", "description": "Split the API service or its hottest statement off.",
     "when": {"all": [
       {"name": "api.endpoint_p95", "indicator": "endpoint_p95_ms", "comparator": ">", "threshold": 200, "days": 14,
        "description": "an endpoint's p95 > 200 ms on 14 consecutive UTC days"},
       {"name": "api.statement_share", "indicator": "statement_top_share", "comparator": ">", "threshold": 0.40, "window": "1 hour",
        "description": "one statement > 40 % of database execution time for an hour"},
       {"name": "api.throughput", "indicator": "messages_per_second", "comparator": ">", "threshold": 1000, "window": "1 hour",
        "description": "throughput > 1,000 msg/s for an hour"}]},
     "checklist": ["api-bottleneck:evidence_met", "api-bottleneck:optimisation_exhausted", "api-bottleneck:clear_boundary",
                   "api-bottleneck:owner", "api-bottleneck:cost_benefit", "api-bottleneck:observability_plan"]},
    {"name": "search", "description": "Move search to a dedicated engine.",
     "when": {"all": [
       {"name": "search.volume", "indicator": "searches_per_day", "comparator": ">", "threshold": 100,
        "description": "more than 100 searches a day"},
       {"name": "search.p95", "indicator": "search_p95_ms", "comparator": ">", "threshold": 1000, "window": "1 hour",
        "description": "search p95 > 1 s for an hour"},
       {"name": "search.db_share", "indicator": "search_db_time_share", "comparator": ">", "threshold": 0.10, "window": "1 hour",
        "description": "search > 10 % of database time for an hour"}]},
     "checklist": ["search:evidence_met", "search:optimisation_exhausted", "search:clear_boundary",
                   "search:owner", "search:cost_benefit", "search:observability_plan"]},
    {"name": "websocket-limit", "description": "Move WebSocket fan-out to its own tier.",
     "when": {"all": [
       {"name": "ws.peak", "indicator": "websocket_peak_concurrent", "comparator": ">", "threshold": 50000,
        "description": "peak concurrent connections > 50,000"},
       {"name": "ws.rejections", "indicator": "websocket_rejections", "comparator": ">", "threshold": 0,
        "description": "connections are being rejected"},
       {"name": "ws.latency", "indicator": "websocket_delivery_p95_ms", "comparator": ">", "threshold": 500, "days": 3,
        "description": "delivery latency degrading: p95 > 500 ms on 3 consecutive UTC days"}]},
     "checklist": ["websocket-limit:evidence_met", "websocket-limit:optimisation_exhausted", "websocket-limit:clear_boundary",
                   "websocket-limit:owner", "websocket-limit:cost_benefit", "websocket-limit:observability_plan"]},
    {"name": "pool-exhaustion", "description": "Give services their own pools or a pooler tier.",
     "when": {"all": [
       {"name": "pool.utilisation", "indicator": "pool_utilization", "comparator": ">", "threshold": 80, "window": "1 hour",
        "description": "pool utilisation > 80 % for an hour or more"},
       {"name": "pool.timeouts", "indicator": "connection_timeout_errors", "comparator": ">", "threshold": 0,
        "description": "connection timeout errors"},
       {"name": "pool.shared", "indicator": "pool_services", "comparator": ">", "threshold": 1,
        "description": "several services on one pool"}]},
     "checklist": ["pool-exhaustion:evidence_met", "pool-exhaustion:optimisation_exhausted", "pool-exhaustion:clear_boundary",
                   "pool-exhaustion:owner", "pool-exhaustion:cost_benefit", "pool-exhaustion:observability_plan"]}
  ],
  "alerts": [
    {"name": "api p95", "when": {"any": [{"name": "sys.api_p95", "indicator": "api_p95_ms", "comparator": ">", "threshold": 200, "window": "1 hour",
        "description": "API p95 > 200 ms for an hour"}]}},
    {"name": "db cpu", "when": {"any": [{"name": "sys.db_cpu", "indicator": "cpu_utilization", "comparator": ">", "threshold": 70, "days": 14,
        "description": "DB CPU > 70 % on 14 consecutive UTC days"}]}},
    {"name": "pool", "when": {"any": [{"name": "sys.pool", "indicator": "pool_utilization", "comparator": ">", "threshold": 80, "window": "1 hour",
        "description": "pool utilisation > 80 % for an hour"}]}},
    {"name": "cache memory", "when": {"any": [{"name": "sys.cache_memory", "indicator": "cache_memory_utilization", "comparator": ">", "threshold": 80,
        "description": "cache memory > 80 %"}]}},
    {"name": "websocket latency", "when": {"any": [{"name": "sys.ws_latency", "indicator": "websocket_delivery_p95_ms", "comparator": ">", "threshold": 500, "window": "15 minutes",
        "description": "WebSocket delivery latency > 500 ms for 15 minutes"}]}},
    {"name": "outbox lag", "when": {"any": [{"name": "sys.outbox_lag", "indicator": "outbox_lag_seconds", "comparator": ">", "threshold": 5, "window": "15 minutes",
        "description": "outbox lag > 5 s for 15 minutes"}]}},
    {"name": "worker queue", "when": {"any": [{"name": "sys.worker_queue", "indicator": "worker_queue_depth", "comparator": ">", "threshold": 10000,
        "description": "worker queue depth > 10,000"}]}}
  ]
}
$doc$::jsonb);

