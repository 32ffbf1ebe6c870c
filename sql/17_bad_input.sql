-- Item 9: bad input gets a specific SQLSTATE, a message naming the object
-- and a hint, and changes nothing.
CREATE SCHEMA bad;
SET search_path = bad, public;
SET TimeZone = 'UTC';
CREATE TABLE plain (t timestamptz);
CREATE TABLE by_list (t timestamptz, k int) PARTITION BY LIST (k);
CREATE TABLE by_hash (t timestamptz, k int) PARTITION BY HASH (k);
CREATE TABLE by_other (t timestamptz, u timestamptz) PARTITION BY RANGE (u);
CREATE TABLE by_text (t text) PARTITION BY RANGE (t);
CREATE TABLE good (t timestamptz NOT NULL, org int, pt point) PARTITION BY RANGE (t);
SELECT (SELECT count(*) FROM capacity_policy) AS policies_before,
       (SELECT count(*) FROM capacity_rollover_history) AS log_before,
       (SELECT count(*) FROM pg_class) AS relations_before,
       (SELECT md5(string_agg(p::text, ',' ORDER BY table_name::oid)) FROM capacity_policy p) AS policy_hash_before
\gset
-- unknown table
SELECT * FROM try($q$SELECT capacity_manage('no_such_table', 't', 'week')$q$);
SELECT * FROM try($q$SELECT capacity_manage(0::oid::regclass, 't', 'week')$q$);
-- not partitioned, partitioned by list/hash, by another column, not a time type
SELECT * FROM try($q$SELECT capacity_manage('plain', 't', 'week')$q$);
SELECT * FROM try($q$SELECT capacity_manage('by_list', 't', 'week')$q$);
SELECT * FROM try($q$SELECT capacity_manage('by_hash', 't', 'week')$q$);
SELECT * FROM try($q$SELECT capacity_manage('by_other', 't', 'week')$q$);
SELECT * FROM try($q$SELECT capacity_manage('by_text', 't', 'week')$q$);
SELECT * FROM try($q$SELECT capacity_manage('good', 'no_col', 'week')$q$);
-- hash column that does not exist, of a type without hashing, without count
SELECT * FROM try($q$SELECT capacity_manage('good', 't', 'week', 'nope', 8)$q$);
SELECT * FROM try($q$SELECT capacity_manage('good', 't', 'week', 'pt', 8)$q$);
SELECT * FROM try($q$SELECT capacity_manage('good', 't', 'week', 'org')$q$);
SELECT * FROM try($q$SELECT capacity_manage('good', 't', 'week', NULL, 8)$q$);
SELECT * FROM try($q$SELECT capacity_manage('good', 't', 'week', 'org', 1)$q$);
SELECT * FROM try($q$SELECT capacity_manage('good', 't', 'week', 'org', 1025)$q$);
SELECT * FROM try($q$SELECT capacity_manage('good', 't', 'week', 't', 8)$q$);
-- granularity, premake, retention, retention_action
SELECT * FROM try($q$SELECT capacity_manage('good', 't', 'hour')$q$);
SELECT * FROM try($q$SELECT capacity_manage('good', 't', 'week', premake => 0)$q$);
SELECT * FROM try($q$SELECT capacity_manage('good', 't', 'week', premake => 100000)$q$);
SELECT * FROM try($q$SELECT capacity_manage('good', 't', 'week', retention => '-1 day')$q$);
SELECT * FROM try($q$SELECT capacity_manage('good', 't', 'week', retention => '3 days')$q$);
SELECT * FROM try($q$SELECT capacity_manage('good', 't', 'week', retention => '10 weeks', retention_action => 'truncate')$q$);
SELECT * FROM try($q$SELECT capacity_manage('good', 't', 'week', premake => NULL)$q$);
-- rollover of a table nobody manages; as_of out of range
SELECT * FROM try($q$SELECT * FROM capacity_rollover('good')$q$);
SELECT * FROM try($q$SELECT * FROM capacity_rollover('good', as_of => 'infinity')$q$);
SELECT * FROM try($q$SELECT * FROM capacity_rollover(NULL, as_of => NULL)$q$);
SELECT * FROM try($q$SELECT * FROM capacity_rollover('demo."AuditEntry"', as_of => '9998-11-15')$q$);
SELECT * FROM try($q$SELECT capacity_set_hash_partitions('good', 8)$q$);
-- a caller who does not own the table
CREATE ROLE mc_stranger;
GRANT USAGE ON SCHEMA bad, demo TO mc_stranger;
GRANT EXECUTE ON FUNCTION capacity_manage(regclass, name, text, name, integer, integer, interval, text, boolean) TO mc_stranger;
GRANT EXECUTE ON FUNCTION capacity_rollover(regclass, timestamptz, boolean) TO mc_stranger;
SET ROLE mc_stranger;
SELECT * FROM try($q$SELECT capacity_manage('good', 't', 'week')$q$);
SELECT * FROM try($q$SELECT * FROM capacity_rollover('demo."Event"')$q$);
-- with no table named, a stranger rolls over nothing
SELECT count(*) FROM capacity_rollover(as_of => '2026-11-22 00:00+00');
RESET ROLE;
-- changing the shape of a policy whose periods exist is refused
SELECT * FROM try($q$SELECT capacity_manage('demo."IdempotencyRecord"', 'created_at', 'day', 'key', 4)$q$);
-- nothing changed
SELECT (SELECT count(*) FROM capacity_policy) = :policies_before AS same_policies,
       (SELECT md5(string_agg(p::text, ',' ORDER BY table_name::oid)) FROM capacity_policy p) = :'policy_hash_before' AS same_policy_rows,
       (SELECT count(*) FROM capacity_rollover_history) = :log_before AS same_log,
       (SELECT count(*) FROM pg_class) = :relations_before AS same_relations;
REVOKE ALL ON SCHEMA bad, demo FROM mc_stranger;
REVOKE EXECUTE ON FUNCTION capacity_manage(regclass, name, text, name, integer, integer, interval, text, boolean) FROM mc_stranger;
REVOKE EXECUTE ON FUNCTION capacity_rollover(regclass, timestamptz, boolean) FROM mc_stranger;
DROP ROLE mc_stranger;
