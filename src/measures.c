/*-------------------------------------------------------------------------
 * measures.c
 *		Indicators added for the presets (issue 14), sampled through the
 *		sampler's own path: sampler.c's loop calls sample_measure() for the
 *		names measure_known() accepts, inside its per-indicator
 *		subtransaction, and the values are written with write_samples().
 *
 * Owns: writing table_rows_deleted (a per-table counter advanced by each
 * leaf's gain in n_tup_del, counted with table_rows_inserted in the
 * sampler's one walk of the leaves), statement_top_share (from
 * pg_stat_statements when it is installed and preloaded), the dispatch to
 * the tenant shares (shares.c), and the note an indicator leaves in
 * capacity_indicator_run.note (why there is no sample).
 *
 * Must not touch the sampler's probe running, its insert counting or its
 * history maintenance (sampler.c), nor user tables (shares.c reads those).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "measures.h"
#include "sampler.h"

bool
measure_known(const char *indicator)
{
	return strcmp(indicator, "table_rows_deleted") == 0 ||
		strcmp(indicator, "tenant_top_share") == 0 ||
		strcmp(indicator, "statement_top_share") == 0;
}

/*
 * Why an indicator wrote nothing (NULL: it did): capacity_indicator_run.
 * note, shown by capacity_indicator_status.  samples >= 0 also records a
 * run of an indicator the sampler's loop does not record itself (the
 * companions of tenant_top_share).
 */
void
indicator_ran(const char *indicator, TimestampTz as_of, int samples, const char *note)
{
	Oid			types[4] = {TEXTOID, TIMESTAMPTZOID, TEXTOID, INT4OID};
	Datum		values[4] = {CStringGetTextDatum(indicator), TimestampTzGetDatum(as_of),
	note ? CStringGetTextDatum(note) : (Datum) 0, Int32GetDatum(samples)};
	char		nulls[4] = {' ', ' ', note ? ' ' : 'n', ' '};

	catalog_execute(psprintf("INSERT INTO %s AS r (indicator, last_run, last_ok, samples, note) "
							 "VALUES ($1, $2, CASE WHEN $4 OPERATOR(pg_catalog.>=) 0 THEN $2 END, "
							 "  greatest($4, 0), $3) "
							 "ON CONFLICT (indicator) DO UPDATE SET note = $3, "
							 "last_run = CASE WHEN $4 OPERATOR(pg_catalog.>=) 0 THEN $2 ELSE r.last_run END, "
							 "last_ok = CASE WHEN $4 OPERATOR(pg_catalog.>=) 0 THEN $2 ELSE r.last_ok END, "
							 "samples = CASE WHEN $4 OPERATOR(pg_catalog.>=) 0 THEN $4 ELSE r.samples END",
							 capacity_object("capacity_indicator_run")),
					4, types, values, nulls, false);
}

void
note_indicator(const char *indicator, TimestampTz as_of, const char *note)
{
	indicator_ran(indicator, as_of, -1, note);
}

/*
 * table_rows_deleted: rows deleted from each partitioned table, as a
 * counter that only grows, kept like table_rows_inserted and counted in
 * the same walk of the leaves (sampler.c, COUNT_LEAVES_SQL: capacity_counter
 * ('table_rows_deleted', {table}) advances by what each leaf's n_tup_del
 * gained since the previous sampling, capacity_leaf_deletes by OID; default
 * partitions left out).  One sampler counts at a time (the lock on
 * capacity_leaf_deletes); one that finds it busy repeats the stored
 * counters.
 */
static int
sample_table_deletes(TimestampTz as_of)
{
	char	   *src = table_deletes_source(as_of);

	return src ? write_samples("table_rows_deleted", src, as_of) : 0;
}

/*
 * statement_top_share{queryid}: the share of execution time between two
 * samples taken by the statement that took most, from pg_stat_statements
 * (top-level statements of this database, all roles).  Each statement's
 * total_exec_time at the previous sample is kept in
 * capacity_statement_time; a statement new since then (or evicted and
 * seen again) counts from zero, one gone is ignored.  A reset of
 * pg_stat_statements (its stats_reset) skips that interval.  Without the
 * extension in this database, or without the library preloaded, there is
 * no sample and the note says why.
 */
static int
sample_statement_share(TimestampTz as_of)
{
	char	   *nsp;
	char	   *libs;
	Oid			types[2] = {TIMESTAMPTZOID, TEXTOID};
	Datum		values[2];
	char	   *epoch;
	bool		same_epoch;
	char	   *src;

	catalog_execute("SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e "
					"JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace "
					"WHERE e.extname OPERATOR(pg_catalog.=) 'pg_stat_statements'",
					0, NULL, NULL, NULL, true);
	if (SPI_processed == 0)
	{
		note_indicator("statement_top_share", as_of,
					   "pg_stat_statements is not installed in this database: CREATE EXTENSION pg_stat_statements "
					   "(the library must be in shared_preload_libraries)");
		return 0;
	}
	nsp = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	libs = GetConfigOptionByName("shared_preload_libraries", NULL, false);
	if (libs == NULL || strstr(libs, "pg_stat_statements") == NULL)
	{
		note_indicator("statement_top_share", as_of,
					   "pg_stat_statements is installed but not loaded: add it to shared_preload_libraries and restart");
		return 0;
	}

	/* the epoch: a reset makes the interval meaningless */
	catalog_execute(psprintf("SELECT coalesce(i.stats_reset::pg_catalog.text, '') "
							 "OPERATOR(pg_catalog.||) '/' OPERATOR(pg_catalog.||) pg_catalog.pg_postmaster_start_time()::pg_catalog.text "
							 "FROM %s.pg_stat_statements_info i", nsp),
					0, NULL, NULL, NULL, true);
	epoch = SPI_processed == 1 ? SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1) : "";
	values[0] = TimestampTzGetDatum(as_of);
	values[1] = CStringGetTextDatum(epoch ? epoch : "");
	catalog_execute(psprintf("SELECT coalesce((SELECT k.epoch OPERATOR(pg_catalog.=) $2 FROM %s k "
							 "WHERE k.name OPERATOR(pg_catalog.=) 'statement_exec_time' AND k.labels OPERATOR(pg_catalog.=) '{}'), false)",
							 capacity_object("capacity_counter")),
					2, types, values, NULL, true);
	same_epoch = strcmp(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), "t") == 0;

	/*
	 * Deltas since the previous sample, the top one's share, and the new
	 * totals kept, in one statement.  Labels: the queryid as text (a
	 * bigint does not fit a JSON number exactly).
	 */
	catalog_execute(psprintf("WITH now_t AS MATERIALIZED (SELECT s.queryid, pg_catalog.sum(s.total_exec_time)::pg_catalog.float8 AS ms "
							 "  FROM %s.pg_stat_statements(false) s "
							 "  WHERE s.dbid OPERATOR(pg_catalog.=) (SELECT d.oid FROM pg_catalog.pg_database d "
							 "    WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()) "
							 "  AND s.toplevel AND s.queryid IS NOT NULL GROUP BY s.queryid), "
							 "delta AS MATERIALIZED (SELECT n.queryid, CASE WHEN p.total_ms IS NULL OR n.ms OPERATOR(pg_catalog.<) p.total_ms "
							 "  THEN n.ms ELSE n.ms OPERATOR(pg_catalog.-) p.total_ms END AS d "
							 "  FROM now_t n LEFT JOIN %s p ON p.queryid OPERATOR(pg_catalog.=) n.queryid), "
							 "kept AS (INSERT INTO %s AS p (queryid, total_ms, observed_at) SELECT n.queryid, n.ms, $1 FROM now_t n "
							 "  ON CONFLICT (queryid) DO UPDATE SET total_ms = EXCLUDED.total_ms, observed_at = EXCLUDED.observed_at), "
							 "gone AS (DELETE FROM %s p WHERE NOT EXISTS (SELECT 1 FROM now_t n WHERE n.queryid OPERATOR(pg_catalog.=) p.queryid)), "
							 "ep AS (INSERT INTO %s (name, labels, value, observed_at, epoch) "
							 "  VALUES ('statement_exec_time', '{}', (SELECT coalesce(pg_catalog.sum(n.ms), 0) FROM now_t n), $1, $2) "
							 "  ON CONFLICT (name, labels) DO UPDATE SET value = EXCLUDED.value, observed_at = EXCLUDED.observed_at, epoch = EXCLUDED.epoch) "
							 "SELECT pg_catalog.jsonb_build_object('queryid', d.queryid::pg_catalog.text)::pg_catalog.text, "
							 "  d.d OPERATOR(pg_catalog./) t.total FROM (SELECT d.queryid, d.d FROM delta d "
							 "    ORDER BY d.d DESC, d.queryid LIMIT 1) d, "
							 "  (SELECT pg_catalog.sum(x.d) AS total FROM delta x) t WHERE t.total OPERATOR(pg_catalog.>) 0",
							 nsp, capacity_object("capacity_statement_time"), capacity_object("capacity_statement_time"),
							 capacity_object("capacity_statement_time"), capacity_object("capacity_counter")),
					2, types, values, NULL, false);
	if (!same_epoch)
	{
		note_indicator("statement_top_share", as_of,
					   "first sample since pg_stat_statements was installed, reset or the server restarted: the share is measured between two samples");
		return 0;
	}
	src = spi_values_source(1, 2);
	if (src == NULL)
	{
		note_indicator("statement_top_share", as_of, "no statement ran since the previous sample");
		return 0;
	}
	note_indicator("statement_top_share", as_of, NULL);
	return write_samples("statement_top_share", src, as_of);
}

int
sample_measure(const char *indicator, TimestampTz as_of)
{
	if (strcmp(indicator, "table_rows_deleted") == 0)
		return sample_table_deletes(as_of);
	if (strcmp(indicator, "tenant_top_share") == 0)
		return sample_tenant_shares(as_of);
	if (strcmp(indicator, "statement_top_share") == 0)
		return sample_statement_share(as_of);
	return 0;
}
