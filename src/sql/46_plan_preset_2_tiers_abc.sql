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

