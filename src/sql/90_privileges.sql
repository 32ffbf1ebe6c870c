-- Privileges: mutating functions are not for PUBLIC; views are readable by
-- pg_monitor.  Catalog tables are written by our C code as the extension
-- owner, so nobody needs rights on them.

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_manage(regclass, name, text, name, integer, integer, interval, text, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_rollover(regclass, timestamptz, boolean) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE @extschema@.capacity_rollover_proc(regclass, timestamptz, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_set_hash_partitions(regclass, integer, timestamptz) FROM PUBLIC;

GRANT SELECT ON @extschema@.capacity_policies, @extschema@.capacity_partitions,
                @extschema@.capacity_rollover_log TO pg_monitor;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_sample_now(timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_register_probe(text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_register_push(text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_record(text, double precision, jsonb, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_set_pool_size(regrole, integer) FROM PUBLIC;
GRANT SELECT ON @extschema@.capacity_latest, @extschema@.capacity_indicator_status TO pg_monitor;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_trigger_eval(timestamptz, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_stage_eval(timestamptz, jsonb, interval) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_stage(timestamptz, interval, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_set_stage(integer, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_declare(text, text, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_set_threshold(text, double precision) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_bind_table(text, regclass) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_decide_at(text, text, timestamptz, jsonb, text, text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_decide(text, text, timestamptz, text, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_stage(timestamptz, interval, text),
                          @extschema@.capacity_stage_eval(timestamptz, jsonb, interval),
                          @extschema@.capacity_trigger_eval(timestamptz, jsonb) TO pg_monitor;
GRANT SELECT ON @extschema@.capacity_stages, @extschema@.capacity_trigger_status,
                @extschema@.capacity_decisions TO pg_monitor;
-- capacity_bindings() (stage evaluation, report, forecast) reads the
-- logical table names as the caller: pg_monitor reads them too.
GRANT SELECT ON @extschema@.capacity_table_binding TO pg_monitor;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_report_at(timestamptz, jsonb, interval) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_report(timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_report(timestamptz, interval),
                          @extschema@.capacity_report_at(timestamptz, jsonb, interval) TO pg_monitor;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_explain_as(oid, text, text, text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_explain_register_defaults(regclass, regrole) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_explain_register(text, text, integer, text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_explain_run(timestamptz) FROM PUBLIC;
GRANT SELECT ON @extschema@.capacity_explain_result TO pg_monitor;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_trigger_resolved(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_forecast_eval(timestamptz, interval, jsonb, @extschema@.capacity_trigger_row[], integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_forecast(timestamptz, interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_forecast(timestamptz, interval),
                          @extschema@.capacity_forecast_eval(timestamptz, interval, jsonb, @extschema@.capacity_trigger_row[], integer),
                          @extschema@.capacity_trigger_resolved(jsonb) TO pg_monitor;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_roll_up_days(timestamptz, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE @extschema@.capacity_convert(regclass, name, text, name, integer, integer, interval, text, boolean, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE @extschema@.capacity_convert_backfill(regclass, integer, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_convert_sync() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_convert_check(regclass, name, text, name, integer, integer, text, interval) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_run_bounded(text[], text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_note_backfill_copies(regclass) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_run_as_owner(regclass, text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_owner_value(regclass, text) FROM PUBLIC;
GRANT SELECT ON @extschema@.capacity_conversions TO pg_monitor;
-- plans (1.1)
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_trigger_resolved(jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_trigger_eval(timestamptz, jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_resolve(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_stage(timestamptz, jsonb, interval, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_eval(timestamptz, jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_export(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_import(jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_install(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_use(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_set_tier(text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_check_condition(jsonb, text, text[], text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_rule_groups(jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_plan_grid(text, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_pool_budget() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_trigger_resolved(jsonb, text),
                          @extschema@.capacity_trigger_eval(timestamptz, jsonb, text),
                          @extschema@.capacity_plan_resolve(text),
                          @extschema@.capacity_plan_stage(timestamptz, jsonb, interval, text),
                          @extschema@.capacity_plan_eval(timestamptz, jsonb, text),
                          @extschema@.capacity_plan_export(text),
                          @extschema@.capacity_plan_grid(text, timestamptz),
                          @extschema@.capacity_pool_budget() TO pg_monitor;
GRANT SELECT ON @extschema@.capacity_plans TO pg_monitor;
