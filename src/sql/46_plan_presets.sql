-- Shipped plans.  matter-six-stage is installed and active; the others are
-- documents capacity_plan_install(name) loads (docs/plans.md describes
-- each).  Indicators a preset names that nothing samples yet are declared
-- by its document and registered as pushed ones when it is installed.

INSERT INTO @extschema@.capacity_plan (name, description, doc, active) VALUES
 ('matter-six-stage',
  'The six-stage ladder: single primary, read replicas, partitioned hot tables, tenant tiers, multi-region, webhook cluster.',
  NULL, true);

-- tiers-abc: three tiers of one cluster's life.  A while every A condition
-- holds; B when any B trigger holds on 3 consecutive UTC days (back to A
-- when every A condition holds on 7); C, one way, when any C trigger holds
-- on 7.  Guardrail: purge by partition only.
INSERT INTO @extschema@.capacity_plan_preset (name, doc) VALUES ('tiers-abc', $doc$
{
  "format": 1,
  "name": "tiers-abc",
  "description": "Tier A (one shared cluster), B (scaled: replicas, pool, partitions), C (the top tenant moves out). B after 3 breaching days, back to A after 7 healthy ones, C after 7; C is one-way.",
  "settings": {
    "cluster_write_capacity_qps": {"value": 2000, "unit": "per second",
      "description": "Steady-state write capacity of the cluster (the top tenant's share of it decides tiers A and C)"}
  },
  "indicators": {
    "recall_p95_ms":           {"unit": "ms", "description": "Recall (search/read-back) p95 as the application measures it"},
    "tenant_top_write_qps":    {"unit": "per second", "description": "Write QPS of the tenant that writes most"},
    "tenant_top_growth_share": {"unit": "ratio", "description": "Top tenant's share (0..1) of the month's cluster storage growth"},
    "table_rows_deleted":      {"unit": "rows", "description": "Rows deleted row by row from managed tables, cumulative (the sampler provides it once the delete counter lands; until then push it)"}
  },
  "tiers": [
    {"name": "A", "description": "One shared cluster: write p95 <= 200 ms, recall p95 <= 800 ms, DB CPU p95 <= 65 %, top tenant <= 20 % of write capacity."},
    {"name": "B", "from": "A", "runbook": "docs/runbooks/read-replicas.md",
     "description": "Scaled cluster: read replicas, a larger pool, partitioned hot tables.",
     "enter": {"any": [
       {"name": "B.recall_p95", "indicator": "recall_p95_ms", "comparator": ">", "threshold": 800, "days": 3,
        "description": "recall p95 > 800 ms on 3 consecutive UTC days"},
       {"name": "B.cpu_p95", "indicator": "cpu_utilization", "comparator": ">", "threshold": 65, "days": 3, "daily": "p95",
        "description": "DB CPU p95 > 65 % on 3 consecutive UTC days"},
       {"all": [
         {"name": "B.pool_saturated", "indicator": "pool_utilization", "comparator": ">=", "threshold": 90, "days": 3, "daily": "max",
          "description": "reads saturate the pool: pool utilisation peaks >= 90 % on 3 consecutive UTC days"},
         {"name": "B.writes_stable", "indicator": "write_latency_p95_ms", "comparator": "<=", "threshold": 200, "days": 3,
          "description": "while writes stay stable: write p95 <= 200 ms on the same days"}]}
     ]},
     "exit": {"all": [
       {"name": "A.write_p95", "indicator": "write_latency_p95_ms", "comparator": "<=", "threshold": 200, "days": 7,
        "description": "write p95 <= 200 ms on 7 consecutive UTC days"},
       {"name": "A.recall_p95", "indicator": "recall_p95_ms", "comparator": "<=", "threshold": 800, "days": 7,
        "description": "recall p95 <= 800 ms on 7 consecutive UTC days"},
       {"name": "A.cpu_p95", "indicator": "cpu_utilization", "comparator": "<=", "threshold": 65, "days": 7, "daily": "p95",
        "description": "DB CPU p95 <= 65 % on 7 consecutive UTC days"},
       {"name": "A.top_tenant", "indicator": "tenant_top_write_qps", "comparator": "<=", "threshold": 0.20,
        "setting": "cluster_write_capacity_qps", "days": 7,
        "description": "top tenant's write QPS <= 20 % of the cluster's write capacity on 7 consecutive UTC days"}]}},
    {"name": "C", "from": "B", "one_way": true, "runbook": "docs/runbooks/tenant-tier-migration.md",
     "description": "The top tenant gets its own database; one-way.",
     "enter": {"any": [
       {"name": "C.top_tenant", "indicator": "tenant_top_write_qps", "comparator": ">=", "threshold": 0.35,
        "setting": "cluster_write_capacity_qps", "days": 7,
        "description": "top tenant's write QPS >= 35 % of write capacity on 7 consecutive UTC days"},
       {"name": "C.top_tenant_growth", "indicator": "tenant_top_growth_share", "comparator": ">=", "threshold": 0.30, "days": 7,
        "description": "top tenant >= 30 % of the month's storage growth on 7 consecutive UTC days"},
       {"all": [
         {"name": "C.tier_b_applied", "declared": "tiers-abc:tier_b_applied",
          "description": "declared: Tier B is fully applied"},
         {"name": "C.write_p95", "indicator": "write_latency_p95_ms", "comparator": ">", "threshold": 300, "days": 7,
          "description": "write p95 > 300 ms on 7 consecutive UTC days after Tier B is fully applied"}]}
     ]}}
  ],
  "guardrails": [
    {"name": "purge by partition only", "runbook": "docs/partitioning.md",
     "description": "Old rows of managed tables leave by detaching partitions (retention), never by bulk DELETE.",
     "when": {"any": [
       {"name": "guard.bulk_delete", "indicator": "table_rows_deleted", "aggregate": "growth", "per": "1 day",
        "window": "1 day", "comparator": ">", "threshold": 10000,
        "description": "more than 10,000 rows a day deleted row by row from a managed table"}]}}
  ]
}
$doc$::jsonb);

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

-- control-plane: an event-sourced control plane's stages 0-3.  Each move
-- needs the stage's exit criteria declared (the team's own checklist) and
-- a measured pressure; host-level figures are alerts with the mesh
-- thresholds as settings.
INSERT INTO @extschema@.capacity_plan_preset (name, doc) VALUES ('control-plane', $doc$
{
  "format": 1,
  "name": "control-plane",
  "description": "Control-plane stages 0-3: inline projections, async projections, standby and read offload, sharded mesh. A move needs the current stage's exit criteria declared and a measured pressure; stage 3 is one-way.",
  "settings": {
    "mesh_nodes_warning": {"value": 25, "unit": "nodes", "description": "Node count at which the service mesh needs planning (stage 2)"},
    "mesh_nodes_limit":   {"value": 50, "unit": "nodes", "description": "Node count the mesh is not run beyond without sharding (stage 3)"}
  },
  "indicators": {
    "event_append_per_second":        {"unit": "per second", "description": "Events appended to the event store per second"},
    "projection_lag_seconds":         {"unit": "seconds", "description": "Age of the newest event not yet in the read projections"},
    "cluster_node_count":             {"unit": "nodes", "description": "Nodes in the cluster (host level, pushed by the platform)"},
    "node_allocatable_memory_percent": {"unit": "percent", "description": "Allocatable memory left on the fullest node (host level)"},
    "cpu_overcommit_ratio":           {"unit": "ratio", "description": "CPU requested over allocatable across the cluster (host level)"}
  },
  "tiers": [
    {"name": "stage 0", "description": "One database, projections written inline with the events."},
    {"name": "stage 1", "from": "stage 0", "description": "Projections built asynchronously from the event log.",
     "enter": {"any": [
       {"all": [{"name": "cp.stage0_exit", "declared": "control-plane:stage-0-exit-criteria",
                 "description": "declared: stage 0's exit criteria are met"},
                {"name": "cp.append_rate", "indicator": "event_append_per_second", "comparator": ">", "threshold": 500, "days": 3, "daily": "max",
                 "description": "event append rate peaks above 500/s on 3 consecutive UTC days"}]},
       {"all": [{"name": "cp.stage0_exit_lag", "declared": "control-plane:stage-0-exit-criteria",
                 "description": "declared: stage 0's exit criteria are met"},
                {"name": "cp.inline_projection_lag", "indicator": "projection_lag_seconds", "comparator": ">", "threshold": 2, "days": 3, "daily": "p95",
                 "description": "inline projections lag: daily p95 above 2 s on 3 consecutive UTC days"}]}]},
     "exit": {"all": [
       {"name": "cp.append_rate_low", "indicator": "event_append_per_second", "comparator": "<=", "threshold": 100, "days": 14, "daily": "max",
        "description": "append rate peaks at most 100/s on 14 consecutive UTC days"}]}},
    {"name": "stage 2", "from": "stage 1", "description": "A hot standby takes projection reads; writes stay on the primary.",
     "enter": {"any": [
       {"all": [{"name": "cp.stage1_exit", "declared": "control-plane:stage-1-exit-criteria",
                 "description": "declared: stage 1's exit criteria are met"},
                {"name": "cp.async_projection_lag", "indicator": "projection_lag_seconds", "comparator": ">", "threshold": 5, "days": 3, "daily": "p95",
                 "description": "async projections lag: daily p95 above 5 s on 3 consecutive UTC days"}]},
       {"all": [{"name": "cp.stage1_exit_nodes", "declared": "control-plane:stage-1-exit-criteria",
                 "description": "declared: stage 1's exit criteria are met"},
                {"name": "cp.nodes_warning", "indicator": "cluster_node_count", "comparator": ">=", "threshold": 1, "setting": "mesh_nodes_warning",
                 "description": "the cluster reaches the mesh warning size (25 nodes)"}]}]},
     "exit": {"all": [
       {"name": "cp.standby_lagging", "indicator": "replica_lag_seconds", "comparator": ">", "threshold": 30, "days": 3, "daily": "max",
        "description": "the standby's lag peaks above 30 s on 3 consecutive UTC days: reads go back to the primary"}]}},
    {"name": "stage 3", "from": "stage 2", "one_way": true, "description": "The control plane is sharded; one mesh per shard.",
     "enter": {"any": [
       {"all": [{"name": "cp.stage2_exit", "declared": "control-plane:stage-2-exit-criteria",
                 "description": "declared: stage 2's exit criteria are met"},
                {"name": "cp.nodes_limit", "indicator": "cluster_node_count", "comparator": ">=", "threshold": 1, "setting": "mesh_nodes_limit", "days": 7, "daily": "min",
                 "description": "the cluster stays at or above the mesh limit (50 nodes) on 7 consecutive UTC days"}]}]}}
  ],
  "alerts": [
    {"name": "mesh warning", "when": {"any": [{"name": "cp.alert_nodes_warning", "indicator": "cluster_node_count", "comparator": ">=", "threshold": 1, "setting": "mesh_nodes_warning",
        "description": "node count at or above 25"}]}},
    {"name": "mesh limit", "when": {"any": [{"name": "cp.alert_nodes_limit", "indicator": "cluster_node_count", "comparator": ">=", "threshold": 1, "setting": "mesh_nodes_limit",
        "description": "node count at or above 50"}]}},
    {"name": "allocatable memory", "when": {"any": [{"name": "cp.alert_memory", "indicator": "node_allocatable_memory_percent", "comparator": "<", "threshold": 20, "window": "1 hour",
        "description": "less than 20 % allocatable memory left on a node for an hour"}]}},
    {"name": "cpu overcommit", "when": {"any": [{"name": "cp.alert_overcommit", "indicator": "cpu_overcommit_ratio", "comparator": ">", "threshold": 1.5, "window": "1 hour",
        "description": "CPU overcommitted more than 1.5x for an hour"}]}},
    {"name": "standby lag", "when": {"any": [{"name": "cp.alert_standby_lag", "indicator": "replica_lag_seconds", "comparator": ">", "threshold": 30, "window": "15 minutes",
        "description": "standby lag above 30 s for 15 minutes"}]}},
    {"name": "projection lag", "when": {"any": [{"name": "cp.alert_projection_lag", "indicator": "projection_lag_seconds", "comparator": ">", "threshold": 5, "window": "15 minutes",
        "description": "projection lag above 5 s for 15 minutes"}]}}
  ]
}
$doc$::jsonb);

-- tenant-archetypes: tenants placed in size bands A-E (settings), an
-- archetype x tier grid of what each needs (data, answered per tenant by
-- capacity_plan_grid), and the connection-pool budget: the pools' sizes
-- against max_connections less the reserved ones (capacity_pool_budget),
-- a warning at 80 % and a breach at 100 %.
INSERT INTO @extschema@.capacity_plan_preset (name, doc) VALUES ('tenant-archetypes', $doc$
{
  "format": 1,
  "name": "tenant-archetypes",
  "description": "Tenant archetypes A-E by size band, the archetype x tier grid answered per tenant (capacity_plan_grid), and the connection-pool budget (warning at 80 %, breach at 100 %).",
  "settings": {
    "archetype_a_max_rows": {"value": 100000,    "unit": "rows", "description": "Largest tenant of archetype A (starter)"},
    "archetype_b_max_rows": {"value": 1000000,   "unit": "rows", "description": "Largest tenant of archetype B (team)"},
    "archetype_c_max_rows": {"value": 10000000,  "unit": "rows", "description": "Largest tenant of archetype C (business)"},
    "archetype_d_max_rows": {"value": 100000000, "unit": "rows", "description": "Largest tenant of archetype D (enterprise); larger is E"}
  },
  "indicators": {
    "tenant_rows":         {"unit": "rows", "description": "Rows a tenant owns across the hot tables, labels {tenant}"},
    "pool_budget_percent": {"unit": "percent", "description": "Sum of pool sizes over max_connections less reserved (push SELECT capacity_record('pool_budget_percent', percent) FROM capacity_pool_budget())"}
  },
  "guardrails": [
    {"name": "pool budget", "description": "The pools together never promise more connections than the server has.",
     "when": {"any": [{"name": "ta.pool_budget_breach", "indicator": "pool_budget_percent", "comparator": ">=", "threshold": 100,
                       "description": "pool sizes add up to 100 % or more of max_connections less reserved"}]}}
  ],
  "alerts": [
    {"name": "pool budget warning",
     "when": {"any": [{"name": "ta.pool_budget_warning", "indicator": "pool_budget_percent", "comparator": ">=", "threshold": 80,
                       "description": "pool sizes add up to 80 % or more of the connection budget"}]}}
  ],
  "grid": {
    "measure": "tenant_rows",
    "archetypes": [
      {"name": "A", "up_to": "archetype_a_max_rows"},
      {"name": "B", "up_to": "archetype_b_max_rows"},
      {"name": "C", "up_to": "archetype_c_max_rows"},
      {"name": "D", "up_to": "archetype_d_max_rows"},
      {"name": "E"}
    ],
    "columns": ["shared pool", "partitioned tables", "read replica", "dedicated pool", "dedicated database"],
    "cells": {
      "A": {"shared pool": "required",    "partitioned tables": "optional",    "read replica": "n.a.",        "dedicated pool": "n.a.",        "dedicated database": "n.a."},
      "B": {"shared pool": "required",    "partitioned tables": "recommended", "read replica": "optional",    "dedicated pool": "n.a.",        "dedicated database": "n.a."},
      "C": {"shared pool": "recommended", "partitioned tables": "required",    "read replica": "recommended", "dedicated pool": "optional",    "dedicated database": "n.a."},
      "D": {"shared pool": "n.a.",        "partitioned tables": "required",    "read replica": "required",    "dedicated pool": "required",    "dedicated database": "recommended"},
      "E": {"shared pool": "n.a.",        "partitioned tables": "required",    "read replica": "required",    "dedicated pool": "required",    "dedicated database": "required"}
    }
  }
}
$doc$::jsonb);
