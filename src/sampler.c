/*-------------------------------------------------------------------------
 * sampler.c
 *		capacity_sample_now(): measure every enabled indicator once.
 *
 * Owns: the built-in indicators (each one SQL query over the statistics
 * views, returning (labels jsonb, value float8) rows, or a counter turned
 * into a rate), running registered probes as the role that registered them
 * under matter_capacity.probe_timeout, and keeping history bounded: the
 * raw sample table is rolled over by the partition engine (day partitions,
 * dropped after matter_capacity.sample_retention_days) and rolled up per
 * hour and per day (kept matter_capacity.rollup_retention_days).  Also the
 * one write path of a sample (write_rows: the raw samples and the series'
 * newest values), which SQL uses through capacity_write_sample() (one
 * value) and capacity_write_samples() (the import, in bulk); the one walk
 * of every table's leaves that counts inserts and deletes (measures.c
 * writes table_rows_deleted from it).  After sampling it has the hours
 * since the previous sampling and their days rolled up (rollup.c, the one
 * rollup path).
 *
 * Every indicator runs in its own subtransaction: one failing query is
 * recorded in capacity_indicator_run and the others still run.
 *
 * Must not evaluate thresholds or stages, nor aggregate samples (rollup.c).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdio.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_partitioned_table.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "matter_capacity.h"
#include "catalog.h"
#include "locks.h"
#include "fleet.h"
#include "latency.h"
#include "measures.h"
#include "periods.h"
#include "rollover.h"
#include "rollup.h"
#include "sampler.h"
#include "usercode.h"

PG_FUNCTION_INFO_V1(capacity_sample_now);

/* (labels jsonb, value float8) for every partitioned table we do not own */
#define TOP_TABLES \
	"FROM pg_class p JOIN pg_partitioned_table pt ON pt.partrelid = p.oid " \
	"WHERE p.relkind = 'p' AND NOT p.relispartition " \
	"AND (p.relpersistence <> 't' OR p.relnamespace = pg_catalog.pg_my_temp_schema()) " \
	"AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass " \
	"AND d.objid = p.oid AND d.deptype = 'e') "

typedef struct BuiltinQuery
{
	const char *indicator;
	const char *sql;			/* $1 = as_of */
} BuiltinQuery;

static const BuiltinQuery builtin_queries[] = {
	{"partition_runway_days",
		"SELECT jsonb_build_object('table', h.table_name::text), "
		"extract(epoch FROM (h.range_to - $1)) / 86400.0 "
		"FROM @extschema@.capacity_partition_horizon() h"},
	{"connections",
		"SELECT jsonb_build_object('role', coalesce(a.usename::text, '')), count(*)::float8 "
		"FROM pg_stat_activity a WHERE a.backend_type = 'client backend' GROUP BY a.usename"},
	{"pool_utilization",
		"WITH c AS (SELECT a.usesysid, count(*) AS n FROM pg_stat_activity a "
		"  WHERE a.backend_type = 'client backend' GROUP BY a.usesysid) "
		"SELECT jsonb_build_object('role', r.rolname::text), "
		"100.0 * coalesce(c.n, 0) / (CASE WHEN r.rolconnlimit > 0 THEN r.rolconnlimit "
		"  WHEN ps.pool_size IS NOT NULL THEN ps.pool_size "
		"  ELSE greatest(current_setting('max_connections')::int "
		"       - current_setting('superuser_reserved_connections')::int, 1) END) "
		"FROM pg_roles r LEFT JOIN c ON c.usesysid = r.oid "
		"LEFT JOIN @extschema@.capacity_pool_size ps ON ps.role_name = r.oid "
		"WHERE c.n IS NOT NULL OR ps.pool_size IS NOT NULL"},
	{"connections_utilization",
		"SELECT '{}'::jsonb, 100.0 * count(*) / greatest(current_setting('max_connections')::int "
		"  - current_setting('superuser_reserved_connections')::int, 1) "
		"FROM pg_stat_activity a WHERE a.backend_type = 'client backend'"},
	{"replica_lag_seconds",
		"SELECT jsonb_build_object('application_name', r.application_name), "
		"CASE WHEN r.replay_lag IS NOT NULL THEN extract(epoch FROM r.replay_lag)::float8 "
		"     WHEN r.replay_lsn = r.sent_lsn THEN 0::float8 END "
		"FROM pg_stat_replication r"},
	{"replication_slot_lag_bytes",
		"SELECT jsonb_build_object('slot', s.slot_name::text), "
		"pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(s.confirmed_flush_lsn, s.restart_lsn))::float8 "
		"FROM pg_replication_slots s WHERE coalesce(s.confirmed_flush_lsn, s.restart_lsn) IS NOT NULL"},
};

/*
 * database_bytes: pg_database_size() stat()s every file of the database
 * (about 80 ms at 50,000 partitions, a third of the sampler's budget), so
 * a session measures it at most every matter_capacity.database_size_refresh
 * seconds of real time and writes the last measurement in between: the
 * indicator serves growth forecasts over days, where minutes of staleness
 * do not show.  No cheaper source gives the same figure (the catalog's page
 * counts leave out free space and visibility maps and lag until VACUUM).
 */
static double database_bytes_measured;
static TimestampTz database_bytes_measured_at = 0;

static int
sample_database_bytes(TimestampTz as_of)
{
	TimestampTz now = GetCurrentTimestamp();

	if (database_bytes_measured_at == 0 || mc_database_size_refresh_s == 0 ||
		TimestampDifferenceExceeds(database_bytes_measured_at, now, mc_database_size_refresh_s * 1000) ||
		now < database_bytes_measured_at)
	{
		bool		isnull;

		catalog_execute("SELECT pg_database_size(current_database())::float8", 0, NULL, NULL, NULL, true);
		database_bytes_measured = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		database_bytes_measured_at = now;
	}
	return write_samples("database_bytes",
						 psprintf("SELECT '{}'::jsonb, %.17g::float8", database_bytes_measured), as_of);
}

/*
 * table_rows and table_bytes of every top-level partitioned table, and
 * table_rows_inserted as stored, from the one walk of the leaves
 * (walk_leaves: rows from the cumulative statistics, bytes from the
 * catalog's page counts of the leaves, their TOAST tables and indexes,
 * current as of the last VACUUM or ANALYZE like reltuples: stat()ing
 * 10,000 relations per sample would cost more than the whole sampler may),
 * summed per table in C: $1 tables, $2 n_live_tup, $3 n_tup_ins, $4 pages.
 * COUNT_LEAVES_SQL below returns the same figures while it advances the
 * insert counters; this query serves when that cannot run:
 * table_rows_inserted is then the counter as stored (INSERTED_COUNTER),
 * or, where the extension is still at 1.0 (the library is newer than the
 * installed SQL until ALTER EXTENSION UPDATE), the 1.0 sum over the
 * leaves (INSERTED_SUM).
 */
#define INSERTED_COUNTER \
	"(SELECT k.value FROM @extschema@.capacity_counter k WHERE k.name = 'table_rows_inserted' " \
	"  AND k.labels = jsonb_build_object('table', u.root::regclass::text))"
#define INSERTED_SUM "u.n"
#define TABLE_STATS_SQL \
	"SELECT jsonb_build_object('table', u.root::regclass::text)::text, u.live, %s, " \
	"u.pages * current_setting('block_size')::float8 " \
	"FROM unnest($1::oid[], $2::float8[], $3::float8[], $4::float8[]) AS u(root, live, n, pages)"

/*
 * table_rows_inserted: rows the application wrote into each table, as a
 * counter that only grows.  PostgreSQL counts inserts per leaf
 * (n_tup_ins), and a sum over today's leaves is no counter: a partition
 * dropped or detached by retention takes its count with it, a statistics
 * reset zeroes them all, and rows the rescue moves out of the default
 * partition or the conversion's backfill copies are counted as inserts
 * again.  So the sampler keeps, per table, its own cumulative count in
 * capacity_counter ('table_rows_inserted', labels {table}) and advances it
 * by what each leaf gained since the last sample (capacity_leaf_inserts
 * remembers every leaf's n_tup_ins by OID): a leaf that left the table
 * keeps what it contributed; a new leaf, or one whose count went back
 * (reset, crash), counts from zero.  Rows our own engine inserted are
 * recorded as they are made (record_engine_inserts: 'engine_rows_inserted',
 * labels {relid}) and taken out of the gain; what the statistics have not
 * shown yet is carried to the next sample, so the counter never goes back.
 * (A negative record is a credit: application rows the backfill's switch
 * detached with the historical partition before a sample counted them.)
 * A table seen for the first time (or after a restore) starts from its
 * newest sample, or else from the sum of its leaves' counts less the rows
 * the engine moved or copied into them.
 *
 * table_rows_deleted (written by measures.c) is the same kind of counter
 * over n_tup_del ('table_rows_deleted', capacity_leaf_deletes), without
 * default partitions (the rescue moves rows out of them by deleting them,
 * which is not the application's) and without engine records; a table
 * seen for the first time starts from its newest sample or the sum of its
 * leaves' counts.  Both counters advance in the one walk of the leaves
 * (count_leaves; walking 50,000 leaves twice cost some 200 ms a sampling).
 *
 * It also returns the three table figures, as TABLE_STATS_SQL does, from
 * the same walk of the leaves.  A leaf whose statistics were reset has a
 * live count (n_live_tup) that restarted from zero too, and stays wrong
 * until the next ANALYZE or VACUUM; until then (no such time recorded
 * since) its table_rows is the catalog's count at the last one
 * (reltuples) plus the rows counted since the reset.  The reset is seen
 * as the insert count going back, and remembered (capacity_leaf_inserts.
 * reset) until an ANALYZE or VACUUM.
 *
 * What is per leaf is done in C (count_leaves): this statement gets one
 * row per table, $4 the table, $5..$10 the sums of its leaves (n_tup_ins,
 * gain, rows, pages, then n_tup_del and its gain without default
 * partitions), and the state rows to write: $11..$13 the leaves whose
 * n_tup_ins or reset flag changed, $15..$16 those whose n_tup_del did;
 * $14 and $17 the state rows that matched no leaf, looked for in pg_class
 * (a leaf dropped or detached) only when there are such rows.  $1 =
 * as_of, $2: count inserts, $3: count deletes (a part not counted writes
 * nothing).  The caller holds the lock of each state table it counts in
 * (capacity_leaf_inserts, capacity_leaf_deletes), so two samplers never
 * count the same gain twice.  Rows: labels, table_rows,
 * table_rows_inserted, table_bytes, table_rows_deleted.
 */
#define COUNT_LEAVES_SQL \
	"WITH per_root AS MATERIALIZED (SELECT r.root, r.labels, r.total, r.gain, r.live, " \
	"  r.pages * current_setting('block_size')::float8 AS bytes, r.dtotal, r.dgain, " \
	"  (SELECT k.value FROM @extschema@.capacity_counter k " \
	"    WHERE k.name = 'table_rows_inserted' AND k.labels = r.labels) AS cum, " \
	"  coalesce((SELECT e.value FROM @extschema@.capacity_counter e WHERE e.name = 'engine_rows_inserted' " \
	"    AND e.labels = jsonb_build_object('relid', r.root::bigint)), 0) AS engine, " \
	"  (SELECT ls.value FROM @extschema@.capacity_latest_sample ls " \
	"    WHERE ls.indicator = 'table_rows_inserted' AND ls.labels = r.labels) AS latest, " \
	"  CASE WHEN $3 THEN (SELECT k.value FROM @extschema@.capacity_counter k " \
	"    WHERE k.name = 'table_rows_deleted' AND k.labels = r.labels) END AS dcum, " \
	"  CASE WHEN $3 THEN (SELECT ls.value FROM @extschema@.capacity_latest_sample ls " \
	"    WHERE ls.indicator = 'table_rows_deleted' AND ls.labels = r.labels) END AS dlatest " \
	"  FROM (SELECT u.*, jsonb_build_object('table', u.root::regclass::text) AS labels " \
	"    FROM unnest($4::oid[], $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::float8[]) " \
	"      AS u(root, total, gain, live, pages, dtotal, dgain)) r), " \
	"calc AS MATERIALIZED (SELECT p.root, p.labels, p.live, p.bytes, " \
	"  CASE WHEN p.cum IS NOT NULL THEN least(p.gain, p.engine) " \
	"  WHEN p.latest IS NULL THEN least(p.total, p.engine) ELSE p.engine END AS take, " \
	"  CASE WHEN p.cum IS NOT NULL THEN p.cum + p.gain - least(p.gain, p.engine) " \
	"       ELSE coalesce(p.latest, p.total - least(p.total, p.engine)) END AS cum, " \
	"  CASE WHEN p.dcum IS NOT NULL THEN p.dcum + p.dgain ELSE coalesce(p.dlatest, p.dtotal) END AS dcum " \
	"  FROM per_root p), " \
	"leaves AS (INSERT INTO @extschema@.capacity_leaf_inserts AS s (leaf, inserted, observed_at, reset) " \
	"  SELECT u.leaf, u.n, $1, u.reset FROM unnest($11::oid[], $12::float8[], $13::bool[]) AS u(leaf, n, reset) " \
	"  WHERE $2 ON CONFLICT (leaf) DO UPDATE SET inserted = EXCLUDED.inserted, observed_at = EXCLUDED.observed_at, " \
	"  reset = EXCLUDED.reset), " \
	"gone AS (DELETE FROM @extschema@.capacity_leaf_inserts s WHERE $2 AND s.leaf = ANY ($14::oid[]) " \
	"  AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = s.leaf)), " \
	"counted AS (INSERT INTO @extschema@.capacity_counter AS k (name, labels, value, observed_at) " \
	"  SELECT 'table_rows_inserted', c.labels, c.cum, $1 FROM calc c WHERE $2 " \
	"  ON CONFLICT (name, labels) DO UPDATE SET value = EXCLUDED.value, observed_at = EXCLUDED.observed_at), " \
	"taken AS (UPDATE @extschema@.capacity_counter e SET value = e.value - c.take, observed_at = $1 " \
	"  FROM calc c WHERE $2 AND c.take <> 0 AND e.name = 'engine_rows_inserted' " \
	"  AND e.labels = jsonb_build_object('relid', c.root::bigint)), " \
	"forgotten AS (DELETE FROM @extschema@.capacity_counter e WHERE $2 AND e.name = 'engine_rows_inserted' " \
	"  AND NOT EXISTS (SELECT 1 FROM pg_class r WHERE r.oid = (e.labels->>'relid')::oid)), " \
	"dleaves AS (INSERT INTO @extschema@.capacity_leaf_deletes AS s (leaf, deleted, observed_at) " \
	"  SELECT u.leaf, u.dn, $1 FROM unnest($15::oid[], $16::float8[]) AS u(leaf, dn) WHERE $3 " \
	"  ON CONFLICT (leaf) DO UPDATE SET deleted = EXCLUDED.deleted, observed_at = EXCLUDED.observed_at), " \
	"dgone AS (DELETE FROM @extschema@.capacity_leaf_deletes s WHERE $3 AND s.leaf = ANY ($17::oid[]) " \
	"  AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = s.leaf)), " \
	"dcounted AS (INSERT INTO @extschema@.capacity_counter AS k (name, labels, value, observed_at) " \
	"  SELECT 'table_rows_deleted', c.labels, c.dcum, $1 FROM calc c WHERE $3 " \
	"  ON CONFLICT (name, labels) DO UPDATE SET value = EXCLUDED.value, observed_at = EXCLUDED.observed_at) " \
	"SELECT c.labels::text, c.live, c.cum, c.bytes, c.dcum FROM calc c"

/* table_rows_deleted as stored, when another sampler is counting */
#define STORED_DELETES_SQL \
	"SELECT k.labels::text, k.value FROM @extschema@.capacity_counter k WHERE k.name = 'table_rows_deleted' " \
	"AND to_regclass(k.labels ->> 'table') IS NOT NULL"

static const char *const table_stat_indicators[] = {"table_rows", "table_rows_inserted", "table_bytes"};

bool
is_numeric_type(Oid typid)
{
	return typid == INT2OID || typid == INT4OID || typid == INT8OID ||
		typid == FLOAT4OID || typid == FLOAT8OID || typid == NUMERICOID;
}

/* Replace @extschema@ in a builtin query with the quoted schema. */
static char *
with_schema(const char *sql)
{
	const char *marker = "@extschema@";
	const char *at = strstr(sql, marker);

	if (at == NULL)
		return pstrdup(sql);
	return psprintf("%.*s%s%s", (int) (at - sql), sql, capacity_schema(),
					with_schema(at + strlen(marker)));
}

/*
 * The one write path of a sample: insert the rows (indicator, labels,
 * sampled_at, value) produced by `source` (SQL text with its parameters)
 * into capacity_sample, and keep capacity_latest_sample current with the
 * newest value of each series among them (an older one than there leaves
 * it).  Returns the series whose newest value was written.  The sampler
 * writes through write_samples() (one indicator at as_of); SQL through
 * capacity_write_sample() (capacity_record, capacity_explain_run) and
 * capacity_write_samples() (the import, in bulk; it rolls its history up
 * and deletes what is older than the raw samples kept).  Only tables 1.0
 * has: a 1.0 database runs this library until ALTER EXTENSION UPDATE.
 */
static int64
write_rows(const char *source, int nargs, Oid *types, Datum *values, const char *nulls)
{
	catalog_execute(psprintf("WITH src(indicator, labels, sampled_at, value) AS MATERIALIZED (%s), "
							 "ins AS (INSERT INTO %s (indicator, labels, sampled_at, value) "
							 "  SELECT indicator, labels, sampled_at, value FROM src ORDER BY sampled_at) "
							 "INSERT INTO %s AS l (indicator, labels, sampled_at, value) "
							 "SELECT DISTINCT ON (indicator, labels) indicator, labels, sampled_at, value FROM src "
							 "ORDER BY indicator, labels, sampled_at DESC "
							 "ON CONFLICT (indicator, labels) DO UPDATE "
							 "SET sampled_at = EXCLUDED.sampled_at, value = EXCLUDED.value "
							 "WHERE l.sampled_at <= EXCLUDED.sampled_at",
							 source, capacity_object("capacity_sample"),
							 capacity_object("capacity_latest_sample")),
					nargs, types, values, nulls, false);
	return (int64) SPI_processed;
}

/*
 * Samples of one indicator at as_of: source yields (labels, value) rows,
 * may use $1 = as_of, $2 = the indicator and nextra more parameters.
 */
static int
write_samples_args(const char *indicator, const char *source, TimestampTz as_of,
				   int nextra, Oid *xtypes, Datum *xvalues, const char *xnulls)
{
	Oid			types[4] = {TIMESTAMPTZOID, TEXTOID};
	Datum		values[4] = {TimestampTzGetDatum(as_of), CStringGetTextDatum(indicator)};
	char		nulls[4] = "    ";
	int			i;

	Assert(nextra <= 2);
	for (i = 0; i < nextra; i++)
	{
		types[2 + i] = xtypes[i];
		values[2 + i] = xvalues[i];
		nulls[2 + i] = xnulls[i];
	}
	return (int) write_rows(psprintf("SELECT $2, s.labels, $1, s.value FROM (%s) s(labels, value)", source),
							2 + nextra, types, values, nulls);
}

int
write_samples(const char *indicator, const char *source, TimestampTz as_of)
{
	return write_samples_args(indicator, source, as_of, 0, NULL, NULL, NULL);
}

PG_FUNCTION_INFO_V1(capacity_write_sample);

/*
 * capacity_write_sample(indicator text, labels jsonb, sampled_at
 *		timestamptz, value double precision) RETURNS void
 *
 * write_samples() for one value, for SQL callers that checked it already
 * (capacity_record, capacity_explain_run).
 */
Datum
capacity_write_sample(PG_FUNCTION_ARGS)
{
	Oid			xtypes[2] = {JSONBOID, FLOAT8OID};
	Datum		xvalues[2];
	char		xnulls[2] = {' ', ' '};

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matter_capacity: a sample needs its indicator, labels and time"),
				 errhint("capacity_write_sample('webhook_p99_ms', '{}', now(), 12.5)")));
	xvalues[0] = PG_GETARG_DATUM(1);
	xvalues[1] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	xnulls[1] = PG_ARGISNULL(3) ? 'n' : ' ';
	SPI_connect();
	(void) write_samples_args(text_to_cstring(PG_GETARG_TEXT_PP(0)), "SELECT $3, $4",
							  PG_GETARG_TIMESTAMPTZ(2), 2, xtypes, xvalues, xnulls);
	SPI_finish();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(capacity_write_samples);

/*
 * capacity_write_samples(indicators text[], labels jsonb[], sampled_at
 *		timestamptz[], values double precision[]) RETURNS bigint
 *
 * write_rows() in bulk, for the import (capacity_import_load), which has
 * checked every element: arrays of one length, element i is sample i.
 * Returns the series whose newest value was written.
 */
Datum
capacity_write_samples(PG_FUNCTION_ARGS)
{
	Oid			types[4];
	Datum		values[4];
	int			k;
	int64		n;

	for (k = 0; k < 4; k++)
	{
		if (PG_ARGISNULL(k))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("matter_capacity: samples need their indicators, labels, times and values"),
					 errhint("Pass four arrays of the same length.")));
		types[k] = get_fn_expr_argtype(fcinfo->flinfo, k);
		values[k] = PG_GETARG_DATUM(k);
	}
	SPI_connect();
	n = write_rows("SELECT * FROM unnest($1, $2, $3, $4)", 4, types, values, NULL);
	SPI_finish();
	PG_RETURN_INT64(n);
}

static void
record_run(const char *indicator, TimestampTz as_of, int samples, const char *error)
{
	Oid			types[4] = {TEXTOID, TIMESTAMPTZOID, INT4OID, TEXTOID};
	Datum		values[4] = {CStringGetTextDatum(indicator), TimestampTzGetDatum(as_of),
	Int32GetDatum(samples), error ? CStringGetTextDatum(error) : (Datum) 0};
	char		nulls[4] = {' ', ' ', ' ', error ? ' ' : 'n'};

	catalog_execute(psprintf("INSERT INTO %s AS r (indicator, last_run, last_ok, samples, last_error, last_error_at) "
							 "VALUES ($1, $2, CASE WHEN $4 IS NULL THEN $2 END, $3, $4, CASE WHEN $4 IS NOT NULL THEN $2 END) "
							 "ON CONFLICT (indicator) DO UPDATE SET last_run = $2, samples = $3, "
							 "last_ok = CASE WHEN $4 IS NULL THEN $2 ELSE r.last_ok END, "
							 "last_error = coalesce($4, r.last_error), "
							 "last_error_at = CASE WHEN $4 IS NOT NULL THEN $2 ELSE r.last_error_at END",
							 capacity_object("capacity_indicator_run")),
					4, types, values, nulls, false);
}

/*
 * A cumulative counter's change since the previous sample; false when there
 * is no previous value, or the counter went backwards or its epoch changed
 * (stats reset, restart, reboot): that interval is skipped.
 */
static bool
counter_delta(const char *name, double now_value, const char *epoch,
			  TimestampTz as_of, double *delta)
{
	Oid			types[4] = {TEXTOID, FLOAT8OID, TIMESTAMPTZOID, TEXTOID};
	Datum		values[4] = {CStringGetTextDatum(name), Float8GetDatum(now_value),
	TimestampTzGetDatum(as_of), CStringGetTextDatum(epoch ? epoch : "")};
	bool		have = false;
	double		prev = 0;
	char	   *prev_epoch = NULL;

	catalog_execute(psprintf("SELECT value, epoch FROM %s WHERE name = $1 AND labels = '{}'",
							 capacity_object("capacity_counter")),
					1, types, values, NULL, true);
	if (SPI_processed == 1)
	{
		bool		isnull;

		prev = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		prev_epoch = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		have = true;
	}
	catalog_execute(psprintf("INSERT INTO %s (name, labels, value, observed_at, epoch) "
							 "VALUES ($1, '{}', $2, $3, $4) ON CONFLICT (name, labels) DO UPDATE "
							 "SET value = $2, observed_at = $3, epoch = $4",
							 capacity_object("capacity_counter")),
					4, types, values, NULL, false);
	if (!have || now_value < prev ||
		strcmp(prev_epoch ? prev_epoch : "", epoch ? epoch : "") != 0)
		return false;
	*delta = now_value - prev;
	return true;
}

static int
sample_cache_hit_ratio(TimestampTz as_of)
{
	double		hit,
				read,
				dhit,
				dread;
	char	   *epoch;
	bool		isnull;
	bool		ok;

	catalog_execute("SELECT blks_hit::float8, blks_read::float8, "
					"coalesce(stats_reset::text, '') || '/' || pg_postmaster_start_time()::text "
					"FROM pg_stat_database WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())",
					0, NULL, NULL, NULL, true);
	if (SPI_processed != 1)
		return 0;
	hit = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	read = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	epoch = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	ok = counter_delta("blks_hit", hit, epoch, as_of, &dhit);
	ok = counter_delta("blks_read", read, epoch, as_of, &dread) && ok;
	if (!ok || dhit + dread <= 0)
		return 0;
	return write_samples("cache_hit_ratio",
						 psprintf("SELECT '{}'::jsonb, %.17g::float8", dhit / (dhit + dread)), as_of);
}

/*
 * Host CPU busy share between two samples, from /proc/stat.  Where the
 * file cannot be read the sample is NULL: never a made-up number.
 */
static int
sample_cpu(TimestampTz as_of)
{
	FILE	   *f = fopen("/proc/stat", "r");
	char		line[512];
	unsigned long long v[8] = {0};
	char		epoch[64] = "";
	bool		have_cpu = false;
	double		total = 0,
				idle,
				dtotal,
				didle;
	bool		ok;
	int			i;

	if (f == NULL)
		return write_samples("cpu_utilization", "SELECT '{}'::jsonb, NULL::float8", as_of);
	while (fgets(line, sizeof(line), f))
	{
		if (strncmp(line, "cpu ", 4) == 0)
			have_cpu = sscanf(line + 4, "%llu %llu %llu %llu %llu %llu %llu %llu",
							  &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) >= 4;
		else if (strncmp(line, "btime ", 6) == 0)
			strlcpy(epoch, line + 6, sizeof(epoch));
	}
	fclose(f);
	if (!have_cpu)
		return write_samples("cpu_utilization", "SELECT '{}'::jsonb, NULL::float8", as_of);
	for (i = 0; i < 8; i++)
		total += (double) v[i];
	idle = (double) v[3] + (double) v[4];
	/* update both counters before deciding */
	ok = counter_delta("cpu_total", total, epoch, as_of, &dtotal);
	ok = counter_delta("cpu_idle", idle, epoch, as_of, &didle) && ok;
	if (!ok || dtotal <= 0)
		return 0;
	return write_samples("cpu_utilization",
						 psprintf("SELECT '{}'::jsonb, %.17g::float8", 100.0 * (1.0 - didle / dtotal)),
						 as_of);
}

/*
 * One leaf of the walk (walk_leaves), its statistics and its state rows
 * (count_leaves).
 */
typedef struct LeafFigures
{
	Oid			leaf;
	int			root;			/* index into the walk's roots */
	Oid			toast;
	bool		is_default;
	bool		plain;			/* pg_class has it as a plain table */
	float8		reltuples;		/* at the last ANALYZE or VACUUM, 0 if never */
	float8		pages;			/* the leaf's, its TOAST table's, its indexes' */
	/* cumulative statistics */
	float8		n;				/* n_tup_ins */
	float8		live;			/* n_live_tup */
	float8		dn;				/* n_tup_del */
	bool		unmaintained;	/* no ANALYZE or VACUUM recorded */
	/* capacity_leaf_inserts, capacity_leaf_deletes */
	bool		has_prev;
	float8		prev;
	bool		was_reset;
	bool		has_dprev;
	float8		dprev;
} LeafFigures;

typedef struct LeafWalk
{
	Oid		   *roots;
	int			nroots;
	LeafFigures *leaves;		/* sorted by leaf OID */
	int			n;
	int			size;
} LeafWalk;

/* A partitioned table and its default partition (InvalidOid: none). */
typedef struct Parted
{
	Oid			relid;
	Oid			deflt;
} Parted;

/* An index of a leaf (n: the leaf's place in the walk) or a TOAST table (n: its pages). */
typedef struct Owned
{
	Oid			relid;
	int32		n;
} Owned;

/*
 * Add the children below parent (partitioned) to the walk, going down into
 * partitioned children: pg_inherits by its parent index, with the catalog
 * snapshot and no lock on any table (a sampling must not take one lock
 * per partition, nor wait for DDL on them).  A child that is no
 * partitioned table is taken as a leaf; walk_leaves keeps those that are
 * plain tables.
 */
static void
walk_below(LeafWalk *w, Relation inherits, Parted *parted, int nparted, int root, Oid parent)
{
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Parted	   *p = bsearch(&parent, parted, nparted, sizeof(Parted), oid_cmp);
	Oid			deflt = p ? p->deflt : InvalidOid;
	List	   *below = NIL;
	ListCell   *lc;

	ScanKeyInit(&key, Anum_pg_inherits_inhparent, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(parent));
	scan = systable_beginscan(inherits, InheritsParentIndexId, true, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Oid			child = ((Form_pg_inherits) GETSTRUCT(tup))->inhrelid;
		LeafFigures *l;

		if (bsearch(&child, parted, nparted, sizeof(Parted), oid_cmp) != NULL)
		{
			below = lappend_oid(below, child);
			continue;
		}
		if (w->n == w->size)
		{
			w->size *= 2;
			w->leaves = repalloc_huge(w->leaves, sizeof(LeafFigures) * w->size);
		}
		l = &w->leaves[w->n++];
		memset(l, 0, sizeof(LeafFigures));
		l->leaf = child;
		l->root = root;
		l->is_default = child == deflt;
	}
	systable_endscan(scan);
	foreach(lc, below)
		walk_below(w, inherits, parted, nparted, root, lfirst_oid(lc));
	list_free(below);
}

static int
leaf_cmp(const void *a, const void *b)
{
	Oid			x = ((const LeafFigures *) a)->leaf;
	Oid			y = ((const LeafFigures *) b)->leaf;

	return x < y ? -1 : x > y ? 1 : 0;
}

static LeafFigures *
find_leaf(LeafWalk *w, Oid leaf)
{
	LeafFigures key;

	key.leaf = leaf;
	return w->n > 0 ? bsearch(&key, w->leaves, w->n, sizeof(LeafFigures), leaf_cmp) : NULL;
}

/*
 * Each leaf's cumulative statistics, read now (stats_fetch_consistency
 * none: not this sampling's earlier view), one entry per leaf for all its
 * figures; the same values pg_stat_get_tuples_inserted(), _live_tuples(),
 * _tuples_deleted() and the four pg_stat_get_last_*_time() give.
 */
static void
read_leaf_statistics(LeafWalk *w)
{
	MemoryContext scratch = AllocSetContextCreate(CurrentMemoryContext, "matter_capacity leaf statistics",
												  ALLOCSET_DEFAULT_SIZES);
	int			nest = NewGUCNestLevel();
	int			i;

	(void) set_config_option("stats_fetch_consistency", "none", PGC_SUSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	for (i = 0; i < w->n; i++)
	{
		LeafFigures *l = &w->leaves[i];
		MemoryContext old = MemoryContextSwitchTo(scratch);
		PgStat_StatTabEntry *e;

#if PG_VERSION_NUM >= 150000
		e = pgstat_fetch_stat_tabentry_ext(false, l->leaf);
#else
		e = pgstat_fetch_stat_tabentry(l->leaf);
#endif
		l->unmaintained = true;
		if (e != NULL)
		{
			l->n = (float8) e->tuples_inserted;
			l->dn = (float8) e->tuples_deleted;
#if PG_VERSION_NUM >= 160000
			l->live = (float8) e->live_tuples;
			l->unmaintained = e->last_vacuum_time == 0 && e->last_autovacuum_time == 0 &&
				e->last_analyze_time == 0 && e->last_autoanalyze_time == 0;
#else
			l->live = (float8) e->n_live_tuples;
			l->unmaintained = e->vacuum_timestamp == 0 && e->autovac_vacuum_timestamp == 0 &&
				e->analyze_timestamp == 0 && e->autovac_analyze_timestamp == 0;
#endif
		}
		MemoryContextSwitchTo(old);
		if ((i & 1023) == 1023)
			MemoryContextReset(scratch);	/* "none" copies each entry out */
	}
	AtEOXact_GUC(true, nest);
	MemoryContextDelete(scratch);
}

/*
 * The one walk of the leaves: every top-level partitioned table we do not
 * own (TOP_TABLES) and its leaves (plain tables; foreign partitions have
 * no figures) with their catalog figures, rows at the last ANALYZE or
 * VACUUM (reltuples, 0 where never counted) and pages of the leaf, its
 * TOAST table and its indexes, and their statistics as they are now.  In
 * C because at 50,000 partitions the same walk in SQL (a recursive CTE
 * over pg_inherits, a hash join with pg_class, three statistics calls per
 * leaf) took some 140 ms.  The catalogs are read with the catalog
 * snapshot and no lock on any user table: pg_partitioned_table and
 * pg_index whole, pg_inherits by parent, and pg_class in one sequential
 * pass, each relation found by binary search among the leaves or the
 * relations they own (a syscache lookup per leaf cost twice as much, and
 * would again per index).
 */
static LeafWalk
walk_leaves(void)
{
	LeafWalk	w;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	Parted	   *parted;
	int			nparted = 0,
				sparted = 64;
	Owned	   *owned;
	int			nowned = 0,
				sowned = 64;
	Owned	   *toasts;
	int			ntoasts = 0,
				stoasts = 64;
	int			i,
				k;

	catalog_execute("SELECT p.oid " TOP_TABLES, 0, NULL, NULL, NULL, true);
	w.nroots = (int) SPI_processed;
	w.roots = palloc(sizeof(Oid) * Max(w.nroots, 1));
	for (i = 0; i < w.nroots; i++)
	{
		bool		isnull;

		w.roots[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}

	/* the partitioned tables: the walk goes down into them */
	parted = palloc(sizeof(Parted) * sparted);
	rel = table_open(PartitionedRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_partitioned_table pt = (Form_pg_partitioned_table) GETSTRUCT(tup);

		if (nparted == sparted)
			parted = repalloc_huge(parted, sizeof(Parted) * (sparted *= 2));
		parted[nparted].relid = pt->partrelid;
		parted[nparted++].deflt = pt->partdefid;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (nparted > 0)
		qsort(parted, nparted, sizeof(Parted), oid_cmp);

	w.n = 0;
	w.size = 1024;
	w.leaves = palloc(sizeof(LeafFigures) * w.size);
	rel = table_open(InheritsRelationId, AccessShareLock);
	for (i = 0; i < w.nroots; i++)
		walk_below(&w, rel, parted, nparted, i, w.roots[i]);
	table_close(rel, AccessShareLock);
	if (w.n == 0)
		return w;
	qsort(w.leaves, w.n, sizeof(LeafFigures), leaf_cmp);

	/* the leaves' indexes */
	owned = palloc(sizeof(Owned) * sowned);
	rel = table_open(IndexRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_index ix = (Form_pg_index) GETSTRUCT(tup);
		LeafFigures *l = find_leaf(&w, ix->indrelid);

		if (l == NULL)
			continue;
		if (nowned == sowned)
			owned = repalloc_huge(owned, sizeof(Owned) * (sowned *= 2));
		owned[nowned].relid = ix->indexrelid;
		owned[nowned++].n = (int32) (l - w.leaves);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (nowned > 0)
		qsort(owned, nowned, sizeof(Owned), oid_cmp);

	/* pg_class: the leaves' own figures, their indexes' pages, TOAST tables */
	toasts = palloc(sizeof(Owned) * stoasts);
	rel = table_open(RelationRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_class c = (Form_pg_class) GETSTRUCT(tup);

		if (c->relkind == RELKIND_RELATION)
		{
			LeafFigures *l = find_leaf(&w, c->oid);

			if (l == NULL)
				continue;
			l->plain = true;
			l->toast = c->reltoastrelid;
			l->reltuples = Max((float8) c->reltuples, 0);
			l->pages += (float8) c->relpages;
		}
		else if (c->relkind == RELKIND_TOASTVALUE)
		{
			if (ntoasts == stoasts)
				toasts = repalloc_huge(toasts, sizeof(Owned) * (stoasts *= 2));
			toasts[ntoasts].relid = c->oid;
			toasts[ntoasts++].n = c->relpages;
		}
		else if (nowned > 0)
		{
			Owned	   *o = bsearch(&c->oid, owned, nowned, sizeof(Owned), oid_cmp);

			if (o != NULL)
				w.leaves[o->n].pages += (float8) c->relpages;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (ntoasts > 0)
		qsort(toasts, ntoasts, sizeof(Owned), oid_cmp);

	/* keep the plain tables (in OID order), with their TOAST tables' pages */
	for (i = 0, k = 0; i < w.n; i++)
	{
		LeafFigures *l = &w.leaves[i];

		if (!l->plain)
			continue;
		if (OidIsValid(l->toast) && ntoasts > 0)
		{
			Owned	   *t = bsearch(&l->toast, toasts, ntoasts, sizeof(Owned), oid_cmp);

			if (t != NULL)
				l->pages += (float8) t->n;
		}
		w.leaves[k++] = *l;
	}
	w.n = k;
	read_leaf_statistics(&w);
	return w;
}

/*
 * Read a state table (capacity_leaf_inserts or capacity_leaf_deletes) into
 * the walk's leaves, with a snapshot taken now, as the statement that then
 * writes it would: the caller holds its lock, so it is what the previous
 * sampler committed.  Returns its rows that match no leaf (deletes: no
 * leaf but a default partition): only such a row can be of a leaf that is
 * gone.
 */
static List *
read_leaf_state(LeafWalk *w, const char *table, bool deletes)
{
	Oid			relid = capacity_relid(table);
	AttrNumber	a_leaf = get_attnum(relid, "leaf");
	AttrNumber	a_count = get_attnum(relid, deletes ? "deleted" : "inserted");
	AttrNumber	a_reset = deletes ? InvalidAttrNumber : get_attnum(relid, "reset");
	Snapshot	snap;
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;
	List	   *outside = NIL;

	CommandCounterIncrement();
	snap = RegisterSnapshot(GetTransactionSnapshot());
	rel = table_open(relid, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, snap, 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Oid			leaf = DatumGetObjectId(slot_getattr(slot, a_leaf, &isnull));
		LeafFigures *l = find_leaf(w, leaf);

		if (l != NULL && !(deletes && l->is_default))
		{
			if (deletes)
			{
				l->has_dprev = true;
				l->dprev = DatumGetFloat8(slot_getattr(slot, a_count, &isnull));
			}
			else
			{
				l->has_prev = true;
				l->prev = DatumGetFloat8(slot_getattr(slot, a_count, &isnull));
				l->was_reset = DatumGetBool(slot_getattr(slot, a_reset, &isnull));
			}
		}
		else
			outside = lappend_oid(outside, leaf);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);
	UnregisterSnapshot(snap);
	return outside;
}

static Datum
oid_array(Datum *d, int n)
{
	return PointerGetDatum(construct_array(d, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
}

static Datum
float8_array(Datum *d, int n)
{
	return PointerGetDatum(construct_array(d, n, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

static Datum
bool_array(Datum *d, int n)
{
	return PointerGetDatum(construct_array(d, n, BOOLOID, sizeof(bool), true, TYPALIGN_CHAR));
}

static Datum
oid_list_array(List *oids)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(list_length(oids), 1));
	ListCell   *lc;
	int			i = 0;

	foreach(lc, oids)
		d[i++] = ObjectIdGetDatum(lfirst_oid(lc));
	return oid_array(d, i);
}

/*
 * Advance every table's insert counter (and, when count_deletes, its
 * delete counter) and read the table figures (COUNT_LEAVES_SQL); false,
 * having done nothing, when another sampler is counting inserts: a second
 * one (a manual call while the worker samples, or one left open in a
 * transaction) does not wait; its samples repeat the counters as they
 * are, and the next sampling counts what it left.  The deletes are counted
 * only under capacity_leaf_deletes' lock (*deletes_counted says whether
 * they were).  The statistics are read afresh after the lock (not from the
 * snapshot the sampling took before), so no sampler sees counts older than
 * those the previous one stored.  Only the extension's owner can lock
 * these tables: no other role can hold the counting up.
 *
 * The per-leaf part is done here in C: the walk (walk_leaves), the state
 * rows read into it, each leaf's gain and reset, and the sums per table;
 * the statement gets one row per table and the leaves whose state changed.
 * At 50,000 partitions the same in SQL (the walk, two state-table joins
 * per leaf, then 50,000 rows aggregated and scanned four more times) took
 * some 200 ms.  Per leaf: a gain is the count less the stored one (all of
 * it for a new leaf or a count that went back); a reset (the count went
 * back, or was remembered so) lasts while no ANALYZE or VACUUM is
 * recorded, and the leaf's rows are then reltuples plus n_live_tup.
 */
static bool
count_leaves(TimestampTz as_of, bool count_inserts, bool count_deletes, bool *deletes_counted)
{
	Oid			types[17] = {TIMESTAMPTZOID, BOOLOID, BOOLOID,
		OIDARRAYOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID,
		OIDARRAYOID, FLOAT8ARRAYOID, BOOLARRAYOID, OIDARRAYOID,
	OIDARRAYOID, FLOAT8ARRAYOID, OIDARRAYOID};
	Datum		values[17];
	LeafWalk	w;
	List	   *gone = NIL,
			   *dgone = NIL;
	float8	   *sums[6];		/* per table: total, gain, live, pages, dtotal, dgain */
	Datum	   *rootd,
			   *rcol[6],
			   *ins_leaf,
			   *ins_n,
			   *ins_reset,
			   *del_leaf,
			   *del_n;
	int			nins = 0,
				ndel = 0;
	int			i,
				k;

	*deletes_counted = false;
	if (count_inserts &&
		!ConditionalLockRelationOid(capacity_relid("capacity_leaf_inserts"), ShareRowExclusiveLock))
		return false;
	if (count_deletes)
		count_deletes = ConditionalLockRelationOid(capacity_relid("capacity_leaf_deletes"), ShareRowExclusiveLock);
	if (!count_inserts && !count_deletes)
		return false;

	w = walk_leaves();
	if (count_inserts)
		gone = read_leaf_state(&w, "capacity_leaf_inserts", false);
	if (count_deletes)
		dgone = read_leaf_state(&w, "capacity_leaf_deletes", true);

	for (k = 0; k < 6; k++)
		sums[k] = palloc0(sizeof(float8) * Max(w.nroots, 1));
	ins_leaf = palloc(sizeof(Datum) * Max(w.n, 1));
	ins_n = palloc(sizeof(Datum) * Max(w.n, 1));
	ins_reset = palloc(sizeof(Datum) * Max(w.n, 1));
	del_leaf = palloc(sizeof(Datum) * Max(w.n, 1));
	del_n = palloc(sizeof(Datum) * Max(w.n, 1));
	for (i = 0; i < w.n; i++)
	{
		LeafFigures *l = &w.leaves[i];
		bool		reset = l->has_prev && (l->n < l->prev || l->was_reset) && l->unmaintained;

		sums[0][l->root] += l->n;
		sums[1][l->root] += (!l->has_prev || l->n < l->prev) ? l->n : l->n - l->prev;
		sums[2][l->root] += reset ? l->reltuples + l->live : l->live;
		sums[3][l->root] += l->pages;
		if (count_inserts && (!l->has_prev || l->prev != l->n || l->was_reset != reset))
		{
			ins_leaf[nins] = ObjectIdGetDatum(l->leaf);
			ins_n[nins] = Float8GetDatum(l->n);
			ins_reset[nins++] = BoolGetDatum(reset);
		}
		if (count_deletes && !l->is_default)
		{
			sums[4][l->root] += l->dn;
			sums[5][l->root] += (!l->has_dprev || l->dn < l->dprev) ? l->dn : l->dn - l->dprev;
			if (!l->has_dprev || l->dprev != l->dn)
			{
				del_leaf[ndel] = ObjectIdGetDatum(l->leaf);
				del_n[ndel++] = Float8GetDatum(l->dn);
			}
		}
	}
	rootd = palloc(sizeof(Datum) * Max(w.nroots, 1));
	for (k = 0; k < 6; k++)
		rcol[k] = palloc(sizeof(Datum) * Max(w.nroots, 1));
	for (i = 0; i < w.nroots; i++)
	{
		rootd[i] = ObjectIdGetDatum(w.roots[i]);
		for (k = 0; k < 6; k++)
			rcol[k][i] = Float8GetDatum(sums[k][i]);
	}

	values[0] = TimestampTzGetDatum(as_of);
	values[1] = BoolGetDatum(count_inserts);
	values[2] = BoolGetDatum(count_deletes);
	values[3] = oid_array(rootd, w.nroots);
	for (k = 0; k < 6; k++)
		values[4 + k] = float8_array(rcol[k], w.nroots);
	values[10] = oid_array(ins_leaf, nins);
	values[11] = float8_array(ins_n, nins);
	values[12] = bool_array(ins_reset, nins);
	values[13] = oid_list_array(gone);
	values[14] = oid_array(del_leaf, ndel);
	values[15] = float8_array(del_n, ndel);
	values[16] = oid_list_array(dgone);
	catalog_execute(with_schema(COUNT_LEAVES_SQL), 17, types, values, NULL, false);
	*deletes_counted = count_deletes;
	return true;
}

/*
 * The three table figures without counting (TABLE_STATS_SQL), from the
 * same walk: table_rows_inserted as stored (stored_counter) or the 1.0 sum
 * of the leaves' counts.
 */
static void
table_figures(bool stored_counter)
{
	Oid			types[4] = {OIDARRAYOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID};
	Datum		values[4];
	LeafWalk	w = walk_leaves();
	Datum	   *col[4];
	int			i,
				k;

	for (k = 0; k < 4; k++)
		col[k] = palloc0(sizeof(Datum) * Max(w.nroots, 1));
	for (i = 0; i < w.nroots; i++)
	{
		col[0][i] = ObjectIdGetDatum(w.roots[i]);
		for (k = 1; k < 4; k++)
			col[k][i] = Float8GetDatum(0);
	}
	for (i = 0; i < w.n; i++)
	{
		LeafFigures *l = &w.leaves[i];

		col[1][l->root] = Float8GetDatum(DatumGetFloat8(col[1][l->root]) + l->live);
		col[2][l->root] = Float8GetDatum(DatumGetFloat8(col[2][l->root]) + l->n);
		col[3][l->root] = Float8GetDatum(DatumGetFloat8(col[3][l->root]) + l->pages);
	}
	values[0] = oid_array(col[0], w.nroots);
	for (k = 1; k < 4; k++)
		values[k] = float8_array(col[k], w.nroots);
	catalog_execute(with_schema(psprintf(TABLE_STATS_SQL, stored_counter ? INSERTED_COUNTER : INSERTED_SUM)),
					4, types, values, NULL, false);
}

/*
 * table_rows_deleted of this sampling (labels, value) as a write_samples
 * source, made by the walk of sample_table_stats when it counted the
 * deletes too (NULL otherwise); measures.c takes it (table_rows_deleted
 * sorts after table_rows, so runs after it), or has the leaves walked for
 * the deletes alone.  Lives in the sampling's SPI context.
 */
static char *walked_deletes = NULL;
static bool deletes_wanted = false;

/* (labels, value) rows of SPI_tuptable, columns lcol and vcol, as a VALUES source */
char *
spi_values_source(int lcol, int vcol)
{
	StringInfoData src;
	uint64		i;

	if (SPI_processed == 0)
		return NULL;
	initStringInfo(&src);
	appendStringInfoString(&src, "SELECT l::pg_catalog.jsonb, v::pg_catalog.float8 FROM (VALUES ");
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *l = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, lcol);
		char	   *v = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, vcol);

		appendStringInfo(&src, "%s(%s, %s)", i ? ", " : "", quote_literal_cstr(l),
						 v ? quote_literal_cstr(v) : "NULL");
	}
	appendStringInfoString(&src, ") AS s(l, v)");
	return src.data;
}

/*
 * table_rows_deleted for measures.c: the figures the sampling's walk
 * counted, or a walk for the deletes alone, or, when another sampler is
 * counting, the counters as stored.  NULL: no table.
 */
char *
table_deletes_source(TimestampTz as_of)
{
	char	   *src = walked_deletes;
	bool		counted;

	walked_deletes = NULL;
	if (src != NULL)
		return src;
	if (!count_leaves(as_of, false, true, &counted))
		catalog_execute(with_schema(STORED_DELETES_SQL), 0, NULL, NULL, NULL, true);
	return spi_values_source(1, counted ? 5 : 2);
}

/*
 * Rows our own engine inserted into a table (the rescue out of the default
 * partition; the conversion's backfill records its copies in SQL): not
 * growth, so the next samples take them out of table_rows_inserted.
 * Called in the transaction that inserts them.  Our own tables (the
 * sample table) are not sampled and not recorded.
 */
void
record_engine_inserts(Oid relid, int64 rows)
{
	Oid			types[2] = {INT8OID, FLOAT8OID};
	Datum		values[2] = {Int64GetDatum((int64) relid), Float8GetDatum((double) rows)};

	if (rows <= 0)
		return;
	catalog_execute(psprintf("INSERT INTO %s AS e (name, labels, value, observed_at) "
							 "SELECT 'engine_rows_inserted', pg_catalog.jsonb_build_object('relid', $1), $2, pg_catalog.now() "
							 "WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d "
							 "  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass "
							 "  AND d.objid = $1::pg_catalog.oid AND d.deptype = 'e') "
							 "ON CONFLICT (name, labels) DO UPDATE "
							 "SET value = e.value OPERATOR(pg_catalog.+) EXCLUDED.value, observed_at = EXCLUDED.observed_at",
							 capacity_object("capacity_counter")),
					2, types, values, NULL, false);
}

/* The three per-table figures from one pass; records the run of each. */
static int
sample_table_stats(TimestampTz as_of)
{
	StringInfoData src[3];
	uint64		i,
				n;
	int			k,
				total = 0;
	SPITupleTable *tt;
	char	   *deletes;
	bool		deletes_counted = false;

	walked_deletes = NULL;
	catalog_execute(psprintf("SELECT pg_catalog.to_regclass(%s) IS NOT NULL",
							 quote_literal_cstr(capacity_object("capacity_leaf_inserts"))),
					0, NULL, NULL, NULL, false);
	if (strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "t") == 0)
	{
		if (!count_leaves(as_of, true, deletes_wanted, &deletes_counted))
			table_figures(true);
	}
	else
		table_figures(false);
	deletes = deletes_counted ? spi_values_source(1, 5) : NULL;
	n = SPI_processed;
	tt = SPI_tuptable;
	for (k = 0; k < 3; k++)
	{
		initStringInfo(&src[k]);
		appendStringInfoString(&src[k], "SELECT l::jsonb, v::float8 FROM (VALUES ");
	}
	for (i = 0; i < n; i++)
	{
		char	   *labels = quote_literal_cstr(SPI_getvalue(tt->vals[i], tt->tupdesc, 1));

		for (k = 0; k < 3; k++)
		{
			char	   *v = SPI_getvalue(tt->vals[i], tt->tupdesc, k + 2);

			appendStringInfo(&src[k], "%s(%s, %s)", i ? ", " : "", labels, v ? v : "NULL");
		}
	}
	for (k = 0; k < 3; k++)
	{
		int			written = 0;

		appendStringInfoString(&src[k], ") AS s(l, v)");
		if (n > 0)
			written = write_samples(table_stat_indicators[k], src[k].data, as_of);
		total += written;
		if (k > 0)
			record_run(table_stat_indicators[k], as_of, written, NULL);
	}
	/* nothing after this can fail in this indicator's subtransaction */
	walked_deletes = deletes;
	return total;
}

/*
 * Default-partition rows need one count per table: dynamic SQL.  Another
 * session's temporary tables are not ours to read (an error) and any role
 * may create one and hold its lock: they are skipped (TOP_TABLES).  Only a
 * default partition that is a plain table is counted: counting a foreign
 * one would run its wrapper (a remote query, with the extension owner's
 * user mapping) and a partitioned one may have foreign leaves; a count of
 * a plain table runs no code of its owner's.  A default partition
 * someone holds a strong lock on is skipped too (as
 * capacity_partition_horizon does), and the count runs under
 * matter_capacity.lock_timeout, so no other role can stall the sampler.
 */
static int
sample_default_rows(TimestampTz as_of)
{
	StringInfoData src;
	uint64		i,
				n;
	int			taken = 0;
	int			nest;
	int			written;
	SPITupleTable *tt;

	catalog_execute("SELECT p.oid::regclass::text, pt.partdefid::regclass::text, pt.partdefid "
					TOP_TABLES "AND pt.partdefid <> 0 "
					"AND EXISTS (SELECT 1 FROM pg_class d WHERE d.oid = pt.partdefid AND d.relkind = 'r') "
					"ORDER BY 1",
					0, NULL, NULL, NULL, true);
	n = SPI_processed;
	tt = SPI_tuptable;
	if (n == 0)
		return 0;
	initStringInfo(&src);
	for (i = 0; i < n; i++)
	{
		char	   *table = SPI_getvalue(tt->vals[i], tt->tupdesc, 1);
		char	   *deflt = SPI_getvalue(tt->vals[i], tt->tupdesc, 2);
		bool		isnull;
		Oid			defid = DatumGetObjectId(SPI_getbinval(tt->vals[i], tt->tupdesc, 3, &isnull));

		if (!ConditionalLockRelationOid(defid, AccessShareLock))
			continue;
		appendStringInfo(&src, "%sSELECT jsonb_build_object('table', %s), "
						 "(SELECT count(*) FROM %s)::float8",
						 taken++ ? " UNION ALL " : "", quote_literal_cstr(table), deflt);
	}
	if (taken == 0)
		return 0;
	nest = NewGUCNestLevel();
	(void) set_config_option("lock_timeout", psprintf("%d", Max(mc_lock_timeout_ms, 1)),
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	written = write_samples("default_partition_rows", src.data, as_of);
	AtEOXact_GUC(false, nest);
	return written;
}

/*
 * Run a probe as its owner (usercode.c: its own rights, read-only, under
 * matter_capacity.probe_timeout, everything it did rolled back, at most
 * matter_capacity.probe_max_rows rows); returns samples written.
 */
static int
run_probe(const char *indicator, const char *query, Oid owner,
		  const char *search_path, TimestampTz as_of)
{
	UserCode	uc;
	StringInfoData src;
	volatile uint64 nrows = 0;
	char	   *what = psprintf("probe %s", indicator);

	probe_check_select(indicator, query);
	initStringInfo(&src);
	appendStringInfoString(&src, "SELECT l::jsonb, v::float8 FROM (VALUES ");
	usercode_begin(&uc, what, owner, search_path, mc_probe_timeout_ms);
	PG_TRY();
	{
		TupleDesc	td;
		uint64		i;
		int			rc;

		/*
		 * not SPI's read_only (its refusals name 'a non-volatile function'):
		 * transaction_read_only, set by usercode_begin, refuses every write
		 * with a message that says so, volatile functions' included
		 */
		rc = SPI_execute(query, false, (long) mc_probe_max_rows + 1);
		if (rc != SPI_OK_SELECT)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("probe %s did not run a SELECT", indicator)));
		td = SPI_tuptable->tupdesc;
		if (!((td->natts == 1 && is_numeric_type(SPI_gettypeid(td, 1))) ||
			  (td->natts == 2 && SPI_gettypeid(td, 1) == JSONBOID && is_numeric_type(SPI_gettypeid(td, 2)))))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("probe %s must return one numeric column or (labels jsonb, value numeric)", indicator)));
		if (SPI_processed > (uint64) mc_probe_max_rows)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("matter_capacity: probe %s returned more than %d rows (matter_capacity.probe_max_rows)",
							indicator, mc_probe_max_rows),
					 errhint("Aggregate in the probe (one row per series), or raise matter_capacity.probe_max_rows.")));

		/* copy the owner's result out as literals, written as the extension owner */
		for (i = 0; i < SPI_processed; i++)
		{
			char	   *labels = td->natts == 2 ? SPI_getvalue(SPI_tuptable->vals[i], td, 1) : NULL;
			char	   *value = SPI_getvalue(SPI_tuptable->vals[i], td, td->natts);

			appendStringInfo(&src, "%s(%s, %s)", i ? ", " : "",
							 quote_literal_cstr(labels ? labels : "{}"),
							 value ? quote_literal_cstr(value) : "NULL");
		}
		nrows = SPI_processed;
	}
	PG_CATCH();
	{
		ReThrowError(usercode_fail(&uc));
	}
	PG_END_TRY();
	usercode_finish(&uc);
	if (nrows == 0)
		return 0;
	appendStringInfoString(&src, ") AS s(l, v)");
	return write_samples(indicator, src.data, as_of);
}

/*
 * read/write rates and latency percentiles since the previous sampling,
 * from the executor hooks' histograms.  Uses real elapsed time, not as_of:
 * a rate is about what happened on the server.
 */
static int
sample_latency(TimestampTz as_of)
{
	LatencyInterval iv[LATENCY_CLASSES];
	const char *cls[LATENCY_CLASSES] = {"read", "write"};
	int			n = 0;
	int			c;

	take_latency_interval(GetCurrentTimestamp(), iv);
	for (c = 0; c < LATENCY_CLASSES; c++)
	{
		if (!iv[c].valid || iv[c].seconds <= 0)
			continue;
		n += write_samples(psprintf("%s_qps", cls[c]),
						   psprintf("SELECT '{}'::jsonb, %.17g::float8", iv[c].count / iv[c].seconds),
						   as_of);
		if (iv[c].count == 0)
			continue;
		n += write_samples(psprintf("%s_latency_p50_ms", cls[c]),
						   psprintf("SELECT '{}'::jsonb, %.17g::float8", iv[c].p50_ms), as_of);
		n += write_samples(psprintf("%s_latency_p95_ms", cls[c]),
						   psprintf("SELECT '{}'::jsonb, %.17g::float8", iv[c].p95_ms), as_of);
		n += write_samples(psprintf("%s_latency_p99_ms", cls[c]),
						   psprintf("SELECT '{}'::jsonb, %.17g::float8", iv[c].p99_ms), as_of);
	}
	return n;
}

typedef enum SampleKind
{
	SAMPLE_BUILTIN_QUERY,
	SAMPLE_TABLE_STATS,
	SAMPLE_DEFAULT_ROWS,
	SAMPLE_DATABASE_BYTES,
	SAMPLE_CACHE,
	SAMPLE_CPU,
	SAMPLE_LATENCY,
	SAMPLE_PROBE,
	SAMPLE_MEASURE				/* measures.c */
} SampleKind;

/* One indicator's sampling, the work run_guarded undoes on an error. */
typedef struct SampleStep
{
	const char *indicator;
	SampleKind	kind;
	const char *sql;
	Oid			owner;
	const char *search_path;
	TimestampTz as_of;
	int			n;
} SampleStep;

static bool
sample_step(void *arg)
{
	SampleStep *st = arg;

	switch (st->kind)
	{
		case SAMPLE_BUILTIN_QUERY:
			st->n = write_samples(st->indicator, with_schema(st->sql), st->as_of);
			break;
		case SAMPLE_TABLE_STATS:
			st->n = sample_table_stats(st->as_of);
			break;
		case SAMPLE_DEFAULT_ROWS:
			st->n = sample_default_rows(st->as_of);
			break;
		case SAMPLE_DATABASE_BYTES:
			st->n = sample_database_bytes(st->as_of);
			break;
		case SAMPLE_CACHE:
			st->n = sample_cache_hit_ratio(st->as_of);
			break;
		case SAMPLE_CPU:
			st->n = sample_cpu(st->as_of);
			break;
		case SAMPLE_LATENCY:
			st->n = sample_latency(st->as_of);
			break;
		case SAMPLE_PROBE:
			st->n = run_probe(st->indicator, st->sql, st->owner, st->search_path, st->as_of);
			break;
		case SAMPLE_MEASURE:
			st->n = sample_measure(st->indicator, st->as_of);
			break;
	}
	return true;
}

/* Run one indicator in a subtransaction; record ok or the error. */
static int
sample_one(const char *indicator, SampleKind kind, const char *sql, Oid owner,
		   const char *search_path, TimestampTz as_of)
{
	SampleStep	st = {indicator, kind, sql, owner, search_path, as_of, 0};
	int			n;
	char	   *error = NULL;
	TimestampTz started = GetCurrentTimestamp();
	ErrorData  *edata = run_guarded(sample_step, &st, NULL);

	n = st.n;
	if (edata)
	{
		/* a real cancel or shutdown is not a probe failure (ours is 54000) */
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		error = pstrdup(edata->message);
		ereport(WARNING,
				(errmsg("matter_capacity: indicator %s failed: %s", indicator, error),
				 errhint("See capacity_indicator_status; the other indicators were sampled.")));
		n = 0;
	}
	record_run(indicator, as_of, n, error);

	/*
	 * A probe that kept running well past its timeout (its code reached no
	 * interrupt check for a while) would cost every round as much: it is
	 * disabled, with the reason, until its owner registers it again.
	 */
	if (kind == SAMPLE_PROBE &&
		TimestampDifferenceExceeds(started, GetCurrentTimestamp(), mc_probe_timeout_ms + 1000))
	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(indicator)};
		long		secs;
		int			usecs;

		TimestampDifference(started, GetCurrentTimestamp(), &secs, &usecs);
		catalog_execute(psprintf("UPDATE %s SET enabled = false WHERE name = $1",
								 capacity_object("capacity_indicator")),
						1, types, values, NULL, false);
		record_run(indicator, as_of, 0,
				   psprintf("disabled: ran %ld ms, past matter_capacity.probe_timeout (%d ms); register it again to re-enable it",
							secs * 1000 + usecs / 1000, mc_probe_timeout_ms));
		ereport(WARNING,
				(errmsg("matter_capacity: probe %s ran past matter_capacity.probe_timeout and was disabled", indicator)));
	}
	return n;
}

/*
 * Index the day partitions of capacity_sample that have no index yet.  The
 * parent has none of its own: pg_dump dumps these partitions (made at run
 * time, so not members of the extension) with their indexes, and an index
 * on the parent would make pg_restore create each of them twice.
 */
static void
index_sample_partitions(Oid parent)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(parent)};
	List	   *stmts = NIL;
	ListCell   *lc;
	uint64		i;

	catalog_execute("SELECT pg_catalog.format('CREATE INDEX ON %s (indicator, sampled_at)', "
					"c.oid::pg_catalog.regclass) "
					"FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid "
					"WHERE i.inhparent = $1 AND NOT EXISTS "
					"(SELECT 1 FROM pg_catalog.pg_index x WHERE x.indrelid = c.oid)",
					1, types, values, NULL, false);	/* new snapshot: see this round's drops */
	for (i = 0; i < SPI_processed; i++)
		stmts = lappend(stmts, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	foreach(lc, stmts)
		catalog_execute(lfirst(lc), 0, NULL, NULL, NULL, false);
}

/* Keep the sample table's day partitions and its history bounded. */
static void
maintain_history(TimestampTz as_of)
{
	Policy		pol = {0};
	ActionSink	sink = {0};
	Interval	retention = {0};
	Oid			types[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		values[2] = {TimestampTzGetDatum(as_of), Int32GetDatum(mc_rollup_retention_days)};

	pol.relid = capacity_relid("capacity_sample");
	pol.time_column = "sampled_at";
	pol.gran = GRAN_DAY;
	pol.premake = 2;
	retention.day = mc_sample_retention_days;
	pol.retention = &retention;
	pol.retention_drop = true;
	pol.default_partition = true;
	sink.as_of = as_of;
	sink.quiet = true;
	rollover_table(&pol, &sink, 0);
	index_sample_partitions(pol.relid);

	catalog_execute(psprintf("DELETE FROM %s WHERE hour < $1 - make_interval(days => $2)",
							 capacity_object("capacity_sample_hourly")),
					2, types, values, NULL, false);
	/* series (label sets) not seen for the raw retention: their history is gone too */
	values[1] = Int32GetDatum(mc_sample_retention_days);
	catalog_execute(psprintf("DELETE FROM %s WHERE sampled_at < $1 - make_interval(days => $2)",
							 capacity_object("capacity_latest_sample")),
					2, types, values, NULL, false);
	values[1] = Int32GetDatum(mc_rollup_retention_days);
	catalog_execute(psprintf("DELETE FROM %s WHERE day < $1 - make_interval(days => $2)",
							 capacity_object("capacity_sample_daily")),
					2, types, values, NULL, false);
	catalog_execute(psprintf("DELETE FROM %s WHERE logged_at < $1 - make_interval(days => $2)",
							 capacity_object("capacity_rollover_history")),
					2, types, values, NULL, false);
}

/*
 * Sample every enabled indicator at as_of; returns samples written.  The
 * caller has connected SPI.
 */
int
sample_all(TimestampTz as_of)
{
	int			total = 0;
	TimestampTz rollup_from;
	uint64		i,
				n;
	SPITupleTable *tt;
	MemoryContext cxt = CurrentMemoryContext;
	List	   *names = NIL,
			   *sources = NIL,
			   *queries = NIL,
			   *paths = NIL,
			   *owners = NIL;
	ListCell   *a,
			   *b,
			   *c,
			   *d,
			   *e;

	rollup_from = roll_up_from(as_of);
	maintain_history(as_of);

	/*
	 * one stable view of each statistics entry for the whole sampling:
	 * "cache" keeps what is read, where "snapshot" copied every table's
	 * entry on the first read (some 30 ms at 50,000 partitions); the table
	 * figures read their entries afresh anyway (count_leaves)
	 */
	(void) set_config_option("stats_fetch_consistency", "cache", PGC_SUSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	catalog_execute(psprintf("SELECT name, source, query, owner::oid, search_path FROM %s "
							 "WHERE enabled AND source IN ('builtin', 'sql') ORDER BY name",
							 capacity_object("capacity_indicator")),
					0, NULL, NULL, NULL, true);
	n = SPI_processed;
	tt = SPI_tuptable;
	for (i = 0; i < n; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);
		bool		isnull;
		Datum		o = SPI_getbinval(tt->vals[i], tt->tupdesc, 4, &isnull);

		names = lappend(names, SPI_getvalue(tt->vals[i], tt->tupdesc, 1));
		sources = lappend(sources, SPI_getvalue(tt->vals[i], tt->tupdesc, 2));
		queries = lappend(queries, SPI_getvalue(tt->vals[i], tt->tupdesc, 3));
		paths = lappend(paths, SPI_getvalue(tt->vals[i], tt->tupdesc, 5));
		owners = lappend_oid(owners, isnull ? InvalidOid : DatumGetObjectId(o));
		MemoryContextSwitchTo(old);
	}

	/* counted in table_rows' walk of the leaves when it is sampled too */
	walked_deletes = NULL;
	deletes_wanted = false;
	foreach(a, names)
		if (strcmp(lfirst(a), "table_rows_deleted") == 0)
			deletes_wanted = true;

	forfive(a, names, b, sources, c, queries, d, owners, e, paths)
	{
		const char *name = lfirst(a);
		const char *source = lfirst(b);
		int			k;

		if (strcmp(source, "sql") == 0)
		{
			if (!role_exists(lfirst_oid(d)))
			{
				/* its owner was dropped (roles are global: no dependency) */
				Oid			types[1] = {TEXTOID};
				Datum		values[1] = {CStringGetTextDatum(name)};

				catalog_execute(psprintf("UPDATE %s SET enabled = false WHERE name = $1",
										 capacity_object("capacity_indicator")),
								1, types, values, NULL, false);
				record_run(name, as_of, 0,
						   psprintf("disabled: the role that registered probe %s (oid %u) no longer exists",
									name, lfirst_oid(d)));
				continue;
			}
			total += sample_one(name, SAMPLE_PROBE, lfirst(c), lfirst_oid(d), lfirst(e), as_of);
			continue;
		}
		for (k = 0; k < lengthof(builtin_queries); k++)
			if (strcmp(builtin_queries[k].indicator, name) == 0)
				total += sample_one(name, SAMPLE_BUILTIN_QUERY, builtin_queries[k].sql, InvalidOid, NULL, as_of);
		if (strcmp(name, "table_rows") == 0)
			total += sample_one(name, SAMPLE_TABLE_STATS, NULL, InvalidOid, NULL, as_of);
		else if (strcmp(name, "default_partition_rows") == 0)
			total += sample_one(name, SAMPLE_DEFAULT_ROWS, NULL, InvalidOid, NULL, as_of);
		else if (strcmp(name, "database_bytes") == 0)
			total += sample_one(name, SAMPLE_DATABASE_BYTES, NULL, InvalidOid, NULL, as_of);
		else if (strcmp(name, "cache_hit_ratio") == 0)
			total += sample_one(name, SAMPLE_CACHE, NULL, InvalidOid, NULL, as_of);
		else if (strcmp(name, "cpu_utilization") == 0)
			total += sample_one(name, SAMPLE_CPU, NULL, InvalidOid, NULL, as_of);
		else if (measure_known(name))
			total += sample_one(name, SAMPLE_MEASURE, NULL, InvalidOid, NULL, as_of);
	}
	/* read/write rates and latencies: only with the hooks (preload) */
	if (latency_tracking_available())
		total += sample_one("read_qps", SAMPLE_LATENCY, NULL, InvalidOid, NULL, as_of);
	/* the fleet's members, labels {member} (fleet.c; never raises for a member) */
	total += fleet_sample(as_of);
	walked_deletes = NULL;
	roll_up_hours(rollup_from, as_of);
	return total;
}

/*
 * capacity_sample_now(as_of timestamptz) RETURNS integer
 */
Datum
capacity_sample_now(PG_FUNCTION_ARGS)
{
	TimestampTz as_of;
	int			n;
	int			nest;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matter_capacity: as_of must not be NULL"),
				 errhint("Omit it to use now().")));
	as_of = PG_GETARG_TIMESTAMPTZ(0);
	check_time_in_range(as_of, "as_of");
	require_not_in_recovery("write samples");
	SPI_connect();
	nest = pin_search_path();
	n = sample_all(as_of);
	AtEOXact_GUC(false, nest);
	SPI_finish();
	PG_RETURN_INT32(n);
}
