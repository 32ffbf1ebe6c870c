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

