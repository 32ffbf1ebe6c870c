-- Preset control-plane: a move needs the stage's exit criteria declared
-- and its pressure on N consecutive UTC days; the standby's lag moves
-- stage 2 back; stage 3 is one-way; host figures are alerts against the
-- mesh settings.  Uses the helpers of 90_plans (schema pl).
SET search_path = pl, public;
SET TimeZone = 'UTC';
SELECT clear();
SELECT capacity_plan_install('control-plane');
SELECT name, tiers, guards, conditions, preset FROM capacity_plans WHERE name = 'control-plane';
SELECT name, value, unit FROM capacity_setting WHERE name LIKE 'mesh%' ORDER BY 1;

-- append rate peaks above 500/s on 3 days, exit criteria not declared -> no move
SELECT days('event_append_per_second', 800, '2030-01-08', '2030-01-10');
SELECT days('projection_lag_seconds', 0.5, '2030-01-08', '2030-01-10');
SELECT * FROM verdict('control-plane');
SELECT capacity_declare('control-plane:stage-0-exit-criteria', 'runbook, owner and SLO agreed');
SELECT * FROM verdict('control-plane');
-- on 2 days only (Jan 8 under) -> no move
SELECT days('event_append_per_second', 300, '2030-01-08', '2030-01-08');
SELECT * FROM verdict('control-plane');

-- stage 2: nodes at the mesh warning size with stage 1's criteria declared
SELECT capacity_plan_set_tier('control-plane', 'stage 1', 'async projections live');
SELECT days('cluster_node_count', 26, '2030-01-11', '2030-01-11');
SELECT * FROM verdict('control-plane');
SELECT capacity_declare('control-plane:stage-1-exit-criteria', 'projection rebuild drill done');
SELECT * FROM verdict('control-plane');
-- the settings decide: the warning at 30 nodes leaves 26 below it
SELECT capacity_set_threshold('mesh_nodes_warning', 30);
SELECT * FROM cond('control-plane', 'cp.nodes_warning');
SELECT capacity_set_threshold('mesh_nodes_warning', 25);

-- at stage 2 the standby lagging on 3 days moves reads back: rollback
SELECT capacity_plan_set_tier('control-plane', 'stage 2', 'standby takes reads');
SELECT days('replica_lag_seconds', 45, '2030-01-08', '2030-01-10');
SELECT * FROM verdict('control-plane');
-- stage 3 at 50 nodes on 7 days, one-way: lag never suggests going back
SELECT capacity_declare('control-plane:stage-2-exit-criteria', 'shard key agreed');
SELECT days('cluster_node_count', 52, '2030-01-04', '2030-01-10');
SELECT days('cluster_node_count', 52, '2030-01-11', '2030-01-11');
SELECT * FROM verdict('control-plane');
SELECT capacity_plan_set_tier('control-plane', 'stage 3', 'sharded');
SELECT * FROM verdict('control-plane');
-- the alerts
SELECT s ->> 'name' AS alert, s ->> 'status' AS status
  FROM capacity_stage('2030-01-11 12:00+00', plan => 'control-plane'), jsonb_array_elements(evidence -> 'steps') s
 WHERE s ->> 'kind' = 'alert' ORDER BY (s ->> 'ordinal')::int;
-- contradictions: a stage set whose entry needs a flag not declared
-- (stage 2 needs stage 1's exit criteria): named in the evidence (review
-- when nothing else decides; here stage 3's pressure still promotes)
SELECT capacity_plan_set_tier('control-plane', 'stage 2', 'set by hand');
SELECT capacity_declare('control-plane:stage-1-exit-criteria', 'withdrawn', false);
SELECT decision, evidence -> 'contradictions' AS contradictions
  FROM capacity_stage('2030-01-11 12:00+00', plan => 'control-plane');
SELECT capacity_declare('control-plane:stage-1-exit-criteria', 'runbook and owner for stage 2');
SELECT evidence -> 'contradictions' AS contradictions
  FROM capacity_stage('2030-01-11 12:00+00', plan => 'control-plane');
SELECT clear();
