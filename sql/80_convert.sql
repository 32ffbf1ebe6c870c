-- Online conversion (the stage 3 migration): refusals that change nothing,
-- the dry run, a conversion and its backfill with writes in between, and
-- pruning afterwards.  Times are fixed in 2029-12 .. 2030-01 and the
-- conversion runs with as_of => '2030-01-08' (bound: Monday 2030-01-14).
CREATE SCHEMA cv;
SET search_path = cv, public;
SET TimeZone = 'UTC';
\set SHOW_CONTEXT never

-- the shape a reference application has: identity key, tenant, time, an
-- index, a grant, a comment, a foreign key to a tenant table
CREATE TABLE cv.org (id text PRIMARY KEY);
INSERT INTO cv.org SELECT 'org' || g FROM generate_series(0, 9) g;
CREATE TABLE cv."Event" (
    id bigint GENERATED ALWAYS AS IDENTITY,
    "orgId" text NOT NULL REFERENCES cv.org,
    "createdAt" timestamptz NOT NULL DEFAULT now(),
    kind text NOT NULL DEFAULT 'page_view' CHECK (kind <> ''),
    PRIMARY KEY (id, "createdAt", "orgId"));
CREATE INDEX event_org_time ON cv."Event" ("orgId", "createdAt");
COMMENT ON TABLE cv."Event" IS 'what happened';
CREATE ROLE mc_cv_reader;
GRANT SELECT ON cv."Event" TO mc_cv_reader;
-- owned by an application role, not by the superuser converting it
CREATE ROLE mc_cv_owner;
GRANT USAGE, CREATE ON SCHEMA cv TO mc_cv_owner;
GRANT REFERENCES ON cv.org TO mc_cv_owner;
ALTER TABLE cv."Event" OWNER TO mc_cv_owner;
INSERT INTO cv."Event" ("orgId", "createdAt")
SELECT 'org' || (g % 10), timestamptz '2029-12-01' + (g % 4000) * interval '10 minutes'
  FROM generate_series(1, 20000) g;
CREATE TABLE cv.expected AS SELECT count(*) AS n, sum(hashtext(e::text)) AS h FROM cv."Event" e;

-- a catalog fingerprint of the table to convert: refusals must leave it as it was
CREATE FUNCTION cv.fingerprint() RETURNS text LANGUAGE sql AS $$
    SELECT md5(string_agg(c.relname || c.relkind::text || c.relispartition::text, ',' ORDER BY c.relname))
           || (SELECT string_agg(k.conname || k.convalidated::text, ',' ORDER BY k.conname)
                 FROM pg_constraint k WHERE k.conrelid = 'cv."Event"'::regclass)
           || (SELECT count(*) FROM capacity_policy) || (SELECT count(*) FROM capacity_conversion)
      FROM pg_class c WHERE c.relnamespace = 'cv'::regnamespace AND c.relname LIKE 'Event%'
$$;
SELECT fingerprint() AS before \gset

-- refusals: each names the object, says what to do, and changes nothing
CREATE TABLE cv.pk_without_time (id bigint PRIMARY KEY, at timestamptz NOT NULL);
CALL capacity_convert('cv.pk_without_time', 'at', 'week');
CREATE TABLE cv.pk_without_tenant (id bigint, org text, at timestamptz NOT NULL, PRIMARY KEY (id, at));
CALL capacity_convert('cv.pk_without_tenant', 'at', 'week', 'org', 4);
CREATE TABLE cv.referenced (id bigint, at timestamptz NOT NULL, PRIMARY KEY (id, at));
CREATE TABLE cv.referencing (rid bigint, rat timestamptz, FOREIGN KEY (rid, rat) REFERENCES cv.referenced);
CALL capacity_convert('cv.referenced', 'at', 'week');
CREATE TABLE cv.triggered (at timestamptz NOT NULL);
CREATE FUNCTION cv.noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE TRIGGER audit BEFORE INSERT ON cv.triggered FOR EACH ROW EXECUTE FUNCTION cv.noop();
CALL capacity_convert('cv.triggered', 'at', 'week');
CREATE TABLE cv.ruled (at timestamptz NOT NULL);
CREATE RULE no_delete AS ON DELETE TO cv.ruled DO INSTEAD NOTHING;
CALL capacity_convert('cv.ruled', 'at', 'week');
CREATE TABLE cv.secured (at timestamptz NOT NULL);
ALTER TABLE cv.secured ENABLE ROW LEVEL SECURITY;
CALL capacity_convert('cv.secured', 'at', 'week');
CREATE TABLE cv.published (at timestamptz NOT NULL);
SET client_min_messages = error;
CREATE PUBLICATION cv_pub FOR TABLE cv.published;
RESET client_min_messages;
CALL capacity_convert('cv.published', 'at', 'week');
CREATE TABLE cv.parent_t (at timestamptz NOT NULL);
CREATE TABLE cv.child_t () INHERITS (cv.parent_t);
CALL capacity_convert('cv.parent_t', 'at', 'week');
CREATE UNLOGGED TABLE cv.scratch (at timestamptz NOT NULL);
CALL capacity_convert('cv.scratch', 'at', 'week');
CREATE TEMP TABLE temp_t (at timestamptz NOT NULL);
CALL capacity_convert('temp_t', 'at', 'week');
CREATE TABLE cv.pointy (at timestamptz NOT NULL, spot point);
CALL capacity_convert('cv.pointy', 'at', 'week', 'spot', 4);
CREATE TABLE cv.already (at timestamptz NOT NULL) PARTITION BY RANGE (at);
CALL capacity_convert('cv.already', 'at', 'week');
CREATE VIEW cv.recent AS SELECT * FROM cv.triggered;
DROP TRIGGER audit ON cv.triggered;
CALL capacity_convert('cv.triggered', 'at', 'week');
CALL capacity_convert('cv."Event"', 'created', 'week');
CALL capacity_convert('cv."Event"', 'kind', 'week');
CALL capacity_convert('cv."Event"', 'createdAt', 'fortnight');
CALL capacity_convert('cv."Event"', 'createdAt', 'week', 'orgId', NULL);
-- a row dated after the bound: the constraint cannot be proven, so the
-- constraint is removed again and nothing is converted
INSERT INTO cv."Event" ("orgId", "createdAt") VALUES ('org1', '2030-02-01');
CALL capacity_convert('cv."Event"', 'createdAt', 'week', 'orgId', 4, as_of => '2030-01-08');
DELETE FROM cv."Event" WHERE "createdAt" = '2030-02-01';
SELECT fingerprint() = :'before' AS nothing_changed;
SELECT conname FROM pg_constraint WHERE conrelid = 'cv."Event"'::regclass ORDER BY 1;

-- the dry run lists every step and changes nothing
CALL capacity_convert('cv."Event"', 'createdAt', 'week', 'orgId', 4, dry_run => true, as_of => '2030-01-08');
SELECT fingerprint() = :'before' AS nothing_changed;

-- it commits between steps, so where it cannot commit (autocommit off, a
-- cron job string of several statements, a function) it refuses first:
-- 25001, a hint, nothing changed; the dry run still works there
BEGIN;
CALL capacity_convert('cv."Event"', 'createdAt', 'week', 'orgId', 4, as_of => '2030-01-08');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
BEGIN;
SET LOCAL client_min_messages = warning;
CALL capacity_convert('cv."Event"', 'createdAt', 'week', 'orgId', 4, dry_run => true, as_of => '2030-01-08');
COMMIT;
SELECT state, message FROM try($$CALL capacity_convert('cv."Event"', 'createdAt', 'week', 'orgId', 4, as_of => '2030-01-08')$$);
SELECT fingerprint() = :'before' AS nothing_changed;

-- the conversion
SET client_min_messages = warning;
CALL capacity_convert('cv."Event"', 'createdAt', 'week', 'orgId', 4, as_of => '2030-01-08');
RESET client_min_messages;
SELECT c.relkind, pg_get_partkeydef(c.oid) FROM pg_class c WHERE c.oid = 'cv."Event"'::regclass;
SELECT partition_name, range_from, range_to, is_default FROM capacity_partitions
 WHERE table_name = 'cv."Event"'::regclass AND level = 1 ORDER BY is_default, range_from NULLS FIRST;
-- same columns, defaults, identity, constraints, indexes, grants, comment
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity, pg_get_expr(d.adbin, d.adrelid)
  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attrelid = 'cv."Event"'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'cv."Event"'::regclass ORDER BY 1;
SELECT indexrelid::regclass FROM pg_index WHERE indrelid = 'cv."Event"'::regclass ORDER BY 1;
SELECT has_table_privilege('mc_cv_reader', 'cv."Event"', 'SELECT') AS reader_can_read,
       obj_description('cv."Event"'::regclass, 'pg_class') AS comment,
       pg_get_userbyid(relowner) AS owner FROM pg_class WHERE oid = 'cv."Event"'::regclass;
SELECT table_name, granularity, hash_column, hash_partitions FROM capacity_policies WHERE table_name = 'cv."Event"'::regclass;
-- every row is still there; new ids continue the old sequence
SELECT (SELECT n FROM expected) = count(*) AS same_count, (SELECT h FROM expected) = sum(hashtext(e::text)) AS same_checksum
  FROM cv."Event" e;
INSERT INTO cv."Event" ("orgId", "createdAt") VALUES ('org3', '2030-01-20') RETURNING id, tableoid::regclass;
INSERT INTO cv."Event" ("orgId", "createdAt") VALUES ('org3', '2030-01-09') RETURNING id, tableoid::regclass;
SELECT state, rows_moved, pct_done FROM capacity_conversions WHERE table_name = 'cv."Event"'::regclass;

-- the backfill commits per batch: refused likewise in a transaction block
BEGIN;
CALL capacity_convert_backfill('cv."Event"', 1000);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT state, rows_moved FROM capacity_conversions WHERE table_name = 'cv."Event"'::regclass;

-- the backfill, interrupted after two batches, with writes in between
SET client_min_messages = warning;
CALL capacity_convert_backfill('cv."Event"', 1000, max_batches => 2);
RESET client_min_messages;
SELECT state, rows_moved > 0 AS some_moved, rows_left > 0 AS some_left, pct_done < 100 AS partial
  FROM capacity_conversions WHERE table_name = 'cv."Event"'::regclass;
-- queries meanwhile read the historical partition: nothing is missing
SELECT count(*) = (SELECT n FROM expected) + 2 AS all_visible FROM cv."Event";
UPDATE cv."Event" SET kind = 'edited' WHERE id IN (1, 19999);           -- copied already / not yet
DELETE FROM cv."Event" WHERE id IN (2, 19998);
INSERT INTO cv."Event" ("orgId", "createdAt", kind) VALUES ('org4', '2029-12-20', 'late');
INSERT INTO cv."Event" ("orgId", "createdAt", kind) VALUES ('org4', '2029-06-01', 'older than all');
CREATE TABLE cv.expected_after AS SELECT count(*) AS n, sum(hashtext(e::text)) AS h FROM cv."Event" e;
SET client_min_messages = warning;
CALL capacity_convert_backfill('cv."Event"', 1000);
RESET client_min_messages;
SELECT state, rows_left, pct_done FROM capacity_conversions WHERE table_name = 'cv."Event"'::regclass;
SELECT (SELECT n FROM expected_after) = count(*) AS same_count,
       (SELECT h FROM expected_after) = sum(hashtext(e::text)) AS same_checksum FROM cv."Event" e;
SELECT id, kind FROM cv."Event" WHERE id IN (1, 2, 19998, 19999) ORDER BY id;
SELECT partition_name, range_from, range_to, is_default FROM capacity_partitions
 WHERE table_name = 'cv."Event"'::regclass AND level = 1 ORDER BY is_default, range_from NULLS FIRST;
SELECT relname, relispartition FROM pg_class WHERE relname IN ('Event_historical', 'Event_backfill');
SELECT count(*) AS rows_in_default FROM cv."Event_default";
-- every partition belongs to the table's owner
SELECT DISTINCT pg_get_userbyid(c.relowner) AS partition_owner
  FROM pg_partition_tree('cv."Event"') t JOIN pg_class c ON c.oid = t.relid;
-- pruning: a tenant and a week of the past read one leaf
SELECT capacity_explain_partitions($$SELECT * FROM cv."Event" WHERE "orgId" = 'org1'
                                     AND "createdAt" >= '2029-12-17' AND "createdAt" < '2029-12-24'$$);
-- a second backfill has nothing to do
CALL capacity_convert_backfill('cv."Event"');
SELECT * FROM try($$CALL capacity_convert_backfill('cv.org')$$);

-- clean up
SET client_min_messages = warning;
DROP PUBLICATION cv_pub;
DROP SCHEMA cv CASCADE;
DROP ROLE mc_cv_reader;
DROP ROLE mc_cv_owner;
RESET client_min_messages;
SELECT count(*) AS conversions_left FROM capacity_conversion;
