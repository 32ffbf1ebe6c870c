-- Review 4a (breaker4a F9, F7, F4): policy values the rollover could not
-- apply, a period sub-partitioned by LIST, and the split's bounded calls.
CREATE SCHEMA lim;
SET search_path = lim, public;
SET TimeZone = 'UTC';
CREATE TABLE rs (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT (SELECT count(*) FROM capacity_policy) AS policies_before \gset

-- F9: a retention with a negative part ('1 mon -29 days' passed as "one
-- day" and put the cutoff after as_of), too long for the rollover to
-- subtract ('10000 years' stopped every rollover with 22008), or beyond
-- int64 ('100000000 years' was "must be positive"): refused, 22023
SELECT * FROM try($q$SELECT capacity_manage('rs', 'ts', 'day', retention => '1 mon -29 days', retention_action => 'drop')$q$);
SELECT * FROM try($q$SELECT capacity_manage('rs', 'ts', 'day', retention => '2 days -1 hour')$q$);
SELECT * FROM try($q$SELECT capacity_manage('rs', 'ts', 'day', retention => '0')$q$);
SELECT * FROM try($q$SELECT capacity_manage('rs', 'ts', 'day', retention => '10000 years')$q$);
SELECT * FROM try($q$SELECT capacity_manage('rs', 'ts', 'day', retention => '100000000 years')$q$);
SELECT * FROM try($q$SELECT capacity_manage('rs', 'ts', 'day', retention => '400000 days')$q$);
SELECT * FROM try($q$SELECT capacity_manage('rs', 'ts', 'month', retention => '4 weeks')$q$);
-- the conversion's check is the same validator
SELECT * FROM try($q$SELECT capacity_check_policy('rs', 'ts', 'day', NULL, NULL, 2, '10000 years', 'detach')$q$);
SELECT (SELECT count(*) FROM capacity_policy) = :policies_before AS nothing_stored;
-- the limits themselves are accepted, and the rollover applies them
SELECT capacity_manage('rs', 'ts', 'day', premake => 2, retention => '1000 years');
SELECT action, count(*) FROM capacity_rollover('rs', as_of => '2026-03-05 12:00+00') GROUP BY 1 ORDER BY 1;
SELECT capacity_manage('rs', 'ts', 'day', premake => 2, retention => '1 day', retention_action => 'drop');
INSERT INTO rs VALUES (1, '2026-03-06 13:00+00');
-- 23 hours old at as_of: kept
SELECT action, partition_name FROM capacity_rollover('rs', as_of => '2026-03-07 12:00+00')
 WHERE action <> 'created' ORDER BY 1, 2;
SELECT count(*) AS rows_kept FROM rs;

-- F7: one period sub-partitioned by LIST (the DBA's own layout) no longer
-- blocks policy updates (55000 "already has partitions by ...")
CREATE TABLE man2 (ts timestamptz NOT NULL, org text NOT NULL, k int) PARTITION BY RANGE (ts);
SELECT capacity_manage('man2', 'ts', 'day', 'org', 4, premake => 2);
SELECT count(*) FROM capacity_rollover('man2', as_of => '2026-11-02');
CREATE TABLE man2_a PARTITION OF man2 FOR VALUES FROM ('2026-11-10') TO ('2026-11-12') PARTITION BY LIST (k);
CREATE TABLE man2_a1 PARTITION OF man2_a DEFAULT;
SELECT capacity_manage('man2', 'ts', 'day', 'org', 4, premake => 3);
-- a real change of the hash column is still refused
SELECT * FROM try($q$SELECT capacity_manage('man2', 'ts', 'day', 'k', 4, premake => 3)$q$);
CREATE TABLE man (ts timestamptz NOT NULL, k int) PARTITION BY RANGE (ts);
CREATE TABLE man_a PARTITION OF man FOR VALUES FROM ('2026-11-03') TO ('2026-11-05') PARTITION BY LIST (k);
CREATE TABLE man_a1 PARTITION OF man_a DEFAULT;
SELECT capacity_manage('man', 'ts', 'day', premake => 5);
SELECT capacity_manage('man', 'ts', 'day', premake => 5, retention => '30 days');
SELECT premake, retention FROM capacity_policy WHERE table_name IN ('man'::regclass, 'man2'::regclass) ORDER BY 1;

-- F4: the split holds the parent ACCESS EXCLUSIVE until its transaction
-- ends, so one call stops once it held it matter_capacity.lock_timeout
-- (here 1 ms: one period per call) and logs the rest as deferred; calling
-- again goes on.  Before, one call re-made all 12 (and premake 365 ran out
-- of shared memory).
CREATE TABLE sp (id bigint, org text NOT NULL, ts timestamptz NOT NULL, PRIMARY KEY (id, org, ts)) PARTITION BY RANGE (ts);
SELECT capacity_manage('sp', 'ts', 'day', 'org', 4, premake => 12);
SELECT count(*) FROM capacity_rollover('sp', as_of => '2026-11-02 12:00+00');
INSERT INTO sp VALUES (1, 'o1', '2026-11-02 13:00+00'), (2, 'o2', '2026-11-05 13:00+00');
SET matter_capacity.lock_timeout = 1;
SET client_min_messages = notice;
SELECT capacity_set_hash_partitions('sp', 8, as_of => '2026-11-02 12:00+00');
RESET client_min_messages;
SELECT action, count(*) FROM capacity_rollover_log
 WHERE table_name = 'lim.sp' AND action IN ('dropped', 'deferred') GROUP BY 1 ORDER BY 1;
-- each call in a transaction of its own until nothing is deferred
SET client_min_messages = warning;
DO $$
DECLARE
    calls int := 1;
    deferred_before bigint;
BEGIN
    LOOP
        SELECT count(*) INTO deferred_before FROM capacity_rollover_log
         WHERE table_name = 'lim.sp' AND action = 'deferred' AND detail LIKE 'split:%';
        PERFORM capacity_set_hash_partitions('lim.sp', 8, as_of => '2026-11-02 12:00+00');
        COMMIT;
        calls := calls + 1;
        EXIT WHEN (SELECT count(*) FROM capacity_rollover_log
                    WHERE table_name = 'lim.sp' AND action = 'deferred' AND detail LIKE 'split:%') = deferred_before;
        IF calls > 30 THEN RAISE EXCEPTION 'split did not converge'; END IF;
    END LOOP;
    RAISE WARNING 'more than two calls: %', calls > 2;
END $$;
RESET client_min_messages;
RESET matter_capacity.lock_timeout;
SELECT range_from::date, max(hash_modulus) AS leaves
  FROM capacity_partitions WHERE table_name = 'sp'::regclass AND level = 2
 GROUP BY 1 ORDER BY 1;
SELECT count(*) AS rows_kept FROM sp;
-- one period alone beyond the lock budget (1024 leaves with a key): refused
-- up front, 54000, the policy keeps 8
SET matter_capacity.max_leaves_per_policy = 1000000;
SELECT state, hint FROM try($q$SELECT capacity_set_hash_partitions('sp', 1024, as_of => '2026-11-02 12:00+00')$q$);
RESET matter_capacity.max_leaves_per_policy;
SELECT hash_partitions FROM capacity_policy WHERE table_name = 'sp'::regclass;
SET client_min_messages = warning;
DROP SCHEMA lim CASCADE;
RESET client_min_messages;
RESET search_path;

-- F8: stray old rows make at most matter_capacity.max_past_periods_per_call
-- past periods a call, newest first; the rest stay in the default partition
-- (deferred) for the next call.  The procedure counts across its steps.
CREATE TABLE stray (ts timestamptz NOT NULL, v int) PARTITION BY RANGE (ts);
SELECT capacity_manage('stray', 'ts', 'day', premake => 1);
SELECT count(*) FROM capacity_rollover('stray', as_of => '2026-11-20 00:00+00');
INSERT INTO stray SELECT '2026-01-01 12:00+00'::timestamptz + g * interval '10 days', g FROM generate_series(0, 4) g;
SET matter_capacity.max_past_periods_per_call = 2;
SELECT action, partition_name, detail FROM capacity_rollover('stray', as_of => '2026-11-20 00:00+00') ORDER BY action, partition_name;
SET client_min_messages = notice;
CALL capacity_rollover_proc('stray', as_of => '2026-11-20 00:00+00');
RESET client_min_messages;
SELECT action, partition_name FROM capacity_rollover('stray', as_of => '2026-11-20 00:00+00') ORDER BY action, partition_name;
RESET matter_capacity.max_past_periods_per_call;
SELECT count(*) AS rows_in_default FROM ONLY stray_default;
SELECT count(*) AS rows FROM stray;
DROP TABLE stray;
