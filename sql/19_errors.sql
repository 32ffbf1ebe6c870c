-- Issue 13, sections 2 and 3: an error in a rollover never poisons the
-- session nor stops the other tables; the rollover refuses up front (or
-- reports as a row) what it cannot carry out.
SET TimeZone = 'UTC';
CREATE SCHEMA err;
CREATE ROLE mc_err_owner;
GRANT CREATE, USAGE ON SCHEMA err TO mc_err_owner;
GRANT EXECUTE ON FUNCTION capacity_manage(regclass, name, text, name, integer, integer, interval, text, boolean),
                          capacity_rollover(regclass, timestamptz, boolean) TO mc_err_owner;
GRANT EXECUTE ON PROCEDURE capacity_rollover_proc(regclass, timestamptz, boolean) TO mc_err_owner;
SET search_path = err, public;
SET ROLE mc_err_owner;

-- (cases 08, 19) an unrelated table holds the name of a period
CREATE TABLE orders (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE orders_p20260602 (note text);
INSERT INTO orders_p20260602 VALUES ('keep me');
CREATE TABLE other (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('orders', 'at', 'day', premake => 2);
SELECT capacity_manage('other', 'at', 'day', premake => 2);
-- one row says what failed, why and what to do; the rest of orders and all of other go on
SELECT table_name, action, partition_name, detail
  FROM capacity_rollover(NULL, as_of => '2026-06-01 00:00+00') ORDER BY 1, 3, 2;
-- the session is clean: no transaction left open, same user, same settings
SELECT 1 AS next_statement_on_same_connection;
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_open_transaction,
       current_user, current_setting('search_path') AS search_path;
ROLLBACK;
CREATE TEMP TABLE not_restricted (x int);
DROP TABLE not_restricted;
SELECT * FROM orders_p20260602;
-- inside a transaction block the client's COMMIT works
BEGIN;
SELECT table_name, action, count(*) FROM capacity_rollover(NULL, as_of => '2026-06-02 00:00+00') GROUP BY 1, 2 ORDER BY 1, 2;
SELECT 1 AS still_in_the_transaction;
COMMIT;
-- the procedure form reports it too and ends normally
CALL capacity_rollover_proc('orders', as_of => '2026-06-01 00:00+00');
SELECT 1 AS next_statement_after_proc;
RESET ROLE;
SELECT action, partition_name FROM capacity_rollover_log
 WHERE table_name = 'err.orders' AND action = 'failed' ORDER BY id DESC LIMIT 1;
SET ROLE mc_err_owner;
-- once the name is free, the period is made and its rows leave the default partition
INSERT INTO orders VALUES (1, '2026-06-02 10:00+00');
ALTER TABLE orders_p20260602 RENAME TO orders_export_20260602;
SELECT action, partition_name, detail FROM capacity_rollover('orders', as_of => '2026-06-02 00:00+00') ORDER BY 1, 2;

-- a key PostgreSQL cannot create on a period (added after capacity_manage):
-- the error is a row, the others go on
CREATE TABLE k (id bigint, org int NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('k', 'at', 'day', 'org', 4, premake => 1);
ALTER TABLE k ADD PRIMARY KEY (id, at);
SELECT table_name, action, partition_name, detail
  FROM capacity_rollover(NULL, as_of => '2026-06-10 00:00+00') ORDER BY 1, 3, 2;
SELECT current_user, current_setting('search_path') AS search_path;
CALL capacity_rollover_proc(NULL, as_of => '2026-06-11 00:00+00');
SELECT 1 AS next_statement_after_proc;
-- capacity_manage refuses such a key up front
SELECT * FROM try($q$SELECT capacity_manage('k', 'at', 'day', 'org', 4, premake => 2)$q$);
ALTER TABLE k DROP CONSTRAINT k_pkey;
ALTER TABLE k ADD PRIMARY KEY (id, at, org);
SELECT action, count(*) FROM capacity_rollover('k', as_of => '2026-06-10 00:00+00') GROUP BY 1 ORDER BY 1;

-- capacity_manage checks the names and rights the rollover will need
CREATE TABLE d (at timestamptz NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE d_default (x int);
SELECT * FROM try($q$SELECT capacity_manage('d', 'at', 'day')$q$);
SELECT * FROM try($q$SELECT capacity_manage('d', 'at', 'day', default_partition => false)$q$);
RESET ROLE;
CREATE SCHEMA err_locked;
CREATE TABLE err_locked.t (at timestamptz NOT NULL) PARTITION BY RANGE (at);
ALTER TABLE err_locked.t OWNER TO mc_err_owner;
SELECT * FROM try($q$SELECT capacity_manage('err_locked.t', 'at', 'day')$q$);
DROP SCHEMA err_locked CASCADE;
SET ROLE mc_err_owner;

-- (case 08b) retention detached a week; the policy later keeps longer and a
-- late row for that week arrives: the leftover is left alone, the week gets
-- a new version of its partition
CREATE TABLE ev (at timestamptz NOT NULL, v int) PARTITION BY RANGE (at);
SELECT capacity_manage('ev', 'at', 'week', premake => 1, retention => '2 weeks', retention_action => 'detach');
SELECT action, partition_name FROM capacity_rollover('ev', as_of => '2026-06-01 00:00+00') ORDER BY 2;
INSERT INTO ev VALUES ('2026-06-01 10:00+00', 1);
SELECT action, partition_name FROM capacity_rollover('ev', as_of => '2026-06-22 00:00+00') ORDER BY 1, 2;
SELECT capacity_manage('ev', 'at', 'week', premake => 1, retention => '10 weeks', retention_action => 'detach');
INSERT INTO ev VALUES ('2026-06-02 10:00+00', 2);
SELECT action, partition_name, detail FROM capacity_rollover('ev', as_of => '2026-06-22 00:00+00') ORDER BY 1, 2;
SELECT tableoid::regclass, * FROM ev ORDER BY at;
SELECT * FROM ev_p2026w23 ORDER BY at;

-- a table kept forever: a late row older than its first period gets its period
CREATE TABLE kf (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('kf', 'at', 'month', premake => 1);
SELECT count(*) FROM capacity_rollover('kf', as_of => '2026-06-01 00:00+00');
INSERT INTO kf VALUES ('2025-01-15 10:00+00'), ('2025-01-16 10:00+00'), ('0900-01-01 00:00+00');
SELECT action, partition_name, detail FROM capacity_rollover('kf', as_of => '2026-06-01 00:00+00') ORDER BY 1, 2;
SELECT tableoid::regclass, count(*) FROM kf GROUP BY 1 ORDER BY 1;

-- a policy follows RENAME TABLE / RENAME COLUMN (and capacity_manage takes the new names)
CREATE TABLE rn (org int NOT NULL, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('rn', 'at', 'day', 'org', 2, premake => 1);
SELECT count(*) FROM capacity_rollover('rn', as_of => '2026-06-01 00:00+00');
ALTER TABLE rn RENAME COLUMN at TO happened_at;
ALTER TABLE rn RENAME COLUMN org TO tenant;
ALTER TABLE rn RENAME TO renamed;
SELECT action, partition_name, detail FROM capacity_rollover('renamed', as_of => '2026-06-02 00:00+00') ORDER BY 1, 2;
RESET ROLE;
SELECT table_name, time_column, hash_column FROM capacity_policies WHERE table_name = 'renamed'::regclass;
SET ROLE mc_err_owner;
SELECT capacity_manage('renamed', 'happened_at', 'day', 'tenant', 2, premake => 2);
SELECT * FROM try($q$SELECT capacity_manage('renamed', 'happened_at', 'day', 'tenant2', 2)$q$);

-- (case 18) the procedure inside BEGIN ... COMMIT cannot commit: it does the
-- function's work in the caller's transaction and says so with a NOTICE,
-- never "invalid transaction termination"; ROLLBACK undoes it, COMMIT keeps it
CREATE TABLE blk (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT capacity_manage('blk', 'at', 'day', premake => 1);
BEGIN;
CALL capacity_rollover_proc('blk', as_of => '2026-07-01 00:00+00');
SELECT count(*) AS periods_in_block FROM pg_inherits WHERE inhparent = 'blk'::regclass;
ROLLBACK;
SELECT count(*) AS periods_after_rollback FROM pg_inherits WHERE inhparent = 'blk'::regclass;
BEGIN;
CALL capacity_rollover_proc('blk', as_of => '2026-07-01 00:00+00');
SELECT 1 AS still_in_the_transaction;
COMMIT;
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'blk'::regclass ORDER BY 1;
RESET ROLE;
DROP SCHEMA err CASCADE;
REVOKE ALL ON FUNCTION capacity_manage(regclass, name, text, name, integer, integer, interval, text, boolean),
                       capacity_rollover(regclass, timestamptz, boolean) FROM mc_err_owner;
REVOKE ALL ON PROCEDURE capacity_rollover_proc(regclass, timestamptz, boolean) FROM mc_err_owner;
DROP ROLE mc_err_owner;
