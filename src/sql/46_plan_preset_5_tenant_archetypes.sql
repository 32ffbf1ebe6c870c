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
