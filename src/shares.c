/*-------------------------------------------------------------------------
 * shares.c
 *		Tenant shares of each managed table with a tenant (hash) column,
 *		estimated from a bounded sample of its recent partitions.
 *
 * Owns: tenant_top_share, tenant_top10_share, their standard errors
 * (tenant_top_share_stderr, tenant_top10_share_stderr), tenant_count,
 * tenant_rows_p50 and tenant_rows_p99, all labelled {table}.  The window
 * is the table's current period and the one before it (its level-1
 * partitions overlapping [start of the previous period, as_of]); the rows
 * read are a TABLESAMPLE SYSTEM sample of their leaves sized to
 * matter_capacity.tenant_sample_rows (the whole window when it fits),
 * never a full scan of a big table.
 *
 * Safety: each table is read in its own subtransaction that is rolled
 * back once its figures are copied out, so the ACCESS SHARE locks taken
 * on its leaves are released at once; the read runs as the table's owner
 * (SECURITY_RESTRICTED_OPERATION, search_path pinned), so no user code
 * (RLS policies, operators and casts of the tenant column's type) runs
 * with the extension owner's rights; every lock wait is bounded by
 * matter_capacity.lock_timeout and the read by
 * matter_capacity.probe_timeout.  A table that cannot be read in time is
 * skipped and named in capacity_indicator_status.note; the others are
 * sampled.
 *
 * Must not write to user tables, take locks stronger than ACCESS SHARE,
 * or touch the sampler's other indicators (sampler.c).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"

#include "matter_capacity.h"
#include "catalog.h"
#include "locks.h"
#include "measures.h"
#include "partitions.h"
#include "sampler.h"

#define N_SHARE_INDICATORS 7
static const char *const share_indicators[N_SHARE_INDICATORS] = {
	"tenant_top_share", "tenant_top10_share", "tenant_top_share_stderr",
	"tenant_top10_share_stderr", "tenant_count", "tenant_rows_p50", "tenant_rows_p99"
};

static TimeoutId share_timeout_id = MAX_TIMEOUTS;
static volatile bool share_timed_out = false;

static void
share_timeout_handler(void)
{
	share_timed_out = true;
	QueryCancelPending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

typedef struct TableShares
{
	bool		have;
	double		v[N_SHARE_INDICATORS];
	bool		isnull[N_SHARE_INDICATORS];
} TableShares;

/*
 * The analysis, run as the table's owner over the sample `s(rel, page,
 * tenant)`: per-tenant counts, the top tenant and the top ten, and the
 * ratio estimator's standard error with pages as clusters (SYSTEM
 * sampling picks whole pages, and a tenant's rows cluster on pages):
 * se = sqrt(k/(k-1) * sum_i (y_i - p m_i)^2) / sum_i m_i over the k pages
 * read, m_i rows and y_i top rows on page i.  0 when the whole window was
 * read.  tenant_count: exact when the whole window was read, else the
 * tenants seen plus Chao1's estimate of those unseen
 * (f1 (f1 - 1) / (2 (f2 + 1)), f1 and f2 the tenants seen once and twice).
 * Percentiles of the rows per tenant: exact (percentile_cont) when the
 * window was read whole.  From a sample, the tenants seen are not a fair
 * sample of the tenants: the larger a tenant, the likelier one of its
 * pages is drawn, so the small ones are missing from the bottom of the
 * ranking and the percentiles of the tenants seen read high.  So the
 * quantile q is taken by rank among all the tenants estimated (tenant_count,
 * the unseen ones ranked below every tenant seen): the seen tenant at
 * rank ceil((1 - q) * N) from the top (the smallest seen when that rank
 * falls among the unseen: an upper bound), its rows scaled by the window's
 * rows over the rows read.  %1$s: the sample's SELECT, %2$s: the fraction
 * aimed at (0..1; 1: read whole), %3$s: the window's estimated rows.
 */
#define SHARES_SQL \
	"WITH s AS MATERIALIZED (%1$s), " \
	"per_tenant AS MATERIALIZED (SELECT s.tenant, pg_catalog.count(*)::pg_catalog.float8 AS n FROM s GROUP BY s.tenant), " \
	"ranked AS MATERIALIZED (SELECT t.tenant, t.n, pg_catalog.row_number() OVER (ORDER BY t.n DESC, t.tenant COLLATE \"C\") AS r FROM per_tenant t), " \
	"pages AS MATERIALIZED (SELECT s.rel, s.page, pg_catalog.count(*)::pg_catalog.float8 AS m, " \
	"  pg_catalog.count(*) FILTER (WHERE r.r OPERATOR(pg_catalog.=) 1)::pg_catalog.float8 AS y1, " \
	"  pg_catalog.count(*) FILTER (WHERE r.r OPERATOR(pg_catalog.<=) 10)::pg_catalog.float8 AS y10 " \
	"  FROM s JOIN ranked r ON r.tenant OPERATOR(pg_catalog.=) s.tenant GROUP BY 1, 2), " \
	"tot AS (SELECT pg_catalog.sum(p.m) AS n, pg_catalog.count(*)::pg_catalog.float8 AS k, " \
	"  pg_catalog.sum(p.y1) OPERATOR(pg_catalog./) pg_catalog.sum(p.m) AS p1, " \
	"  pg_catalog.sum(p.y10) OPERATOR(pg_catalog./) pg_catalog.sum(p.m) AS p10 FROM pages p), " \
	"est AS (SELECT pg_catalog.count(*)::pg_catalog.float8 AS seen, " \
	"  pg_catalog.count(*)::pg_catalog.float8 OPERATOR(pg_catalog.+) CASE WHEN %2$s::pg_catalog.float8 OPERATOR(pg_catalog.>=) 1 THEN 0 ELSE " \
	"     pg_catalog.count(*) FILTER (WHERE x.n OPERATOR(pg_catalog.=) 1)::pg_catalog.float8 " \
	"     OPERATOR(pg_catalog.*) greatest(pg_catalog.count(*) FILTER (WHERE x.n OPERATOR(pg_catalog.=) 1) OPERATOR(pg_catalog.-) 1, 0)::pg_catalog.float8 " \
	"     OPERATOR(pg_catalog./) (2 OPERATOR(pg_catalog.*) (pg_catalog.count(*) FILTER (WHERE x.n OPERATOR(pg_catalog.=) 2) OPERATOR(pg_catalog.+) 1))::pg_catalog.float8 END AS n " \
	"   FROM per_tenant x) " \
	"SELECT t.p1, t.p10, " \
	"  CASE WHEN %2$s::pg_catalog.float8 OPERATOR(pg_catalog.>=) 1 THEN 0 WHEN t.k OPERATOR(pg_catalog.>) 1 THEN " \
	"    pg_catalog.sqrt((t.k OPERATOR(pg_catalog./) (t.k OPERATOR(pg_catalog.-) 1)) OPERATOR(pg_catalog.*) " \
	"      (SELECT pg_catalog.sum((p.y1 OPERATOR(pg_catalog.-) (t.p1 OPERATOR(pg_catalog.*) p.m)) OPERATOR(pg_catalog.^) 2) FROM pages p)) " \
	"    OPERATOR(pg_catalog./) t.n END, " \
	"  CASE WHEN %2$s::pg_catalog.float8 OPERATOR(pg_catalog.>=) 1 THEN 0 WHEN t.k OPERATOR(pg_catalog.>) 1 THEN " \
	"    pg_catalog.sqrt((t.k OPERATOR(pg_catalog./) (t.k OPERATOR(pg_catalog.-) 1)) OPERATOR(pg_catalog.*) " \
	"      (SELECT pg_catalog.sum((p.y10 OPERATOR(pg_catalog.-) (t.p10 OPERATOR(pg_catalog.*) p.m)) OPERATOR(pg_catalog.^) 2) FROM pages p)) " \
	"    OPERATOR(pg_catalog./) t.n END, " \
	"  e.n, " \
	"  CASE WHEN %2$s::pg_catalog.float8 OPERATOR(pg_catalog.>=) 1 " \
	"    THEN (SELECT pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY x.n) FROM per_tenant x) " \
	"    ELSE (SELECT r.n FROM ranked r WHERE r.r OPERATOR(pg_catalog.=) " \
	"          greatest(1, least(e.seen, pg_catalog.ceil(0.5 OPERATOR(pg_catalog.*) e.n)))::pg_catalog.int8) " \
	"         OPERATOR(pg_catalog.*) %3$s::pg_catalog.float8 OPERATOR(pg_catalog./) t.n END, " \
	"  CASE WHEN %2$s::pg_catalog.float8 OPERATOR(pg_catalog.>=) 1 " \
	"    THEN (SELECT pg_catalog.percentile_cont(0.99) WITHIN GROUP (ORDER BY x.n) FROM per_tenant x) " \
	"    ELSE (SELECT r.n FROM ranked r WHERE r.r OPERATOR(pg_catalog.=) " \
	"          greatest(1, least(e.seen, pg_catalog.ceil(0.01 OPERATOR(pg_catalog.*) e.n)))::pg_catalog.int8) " \
	"         OPERATOR(pg_catalog.*) %3$s::pg_catalog.float8 OPERATOR(pg_catalog./) t.n END " \
	"FROM tot t, est e WHERE t.n OPERATOR(pg_catalog.>) 0"

/*
 * Read one table's window; true with the figures in *out, false with a
 * note in *why.  Runs in a subtransaction the caller rolls back.
 */
static bool
read_table_shares(Oid relid, const char *granularity, const char *hash_column,
				  TimestampTz as_of, TableShares *out, char **why)
{
	Oid			types[2] = {OIDOID, TIMESTAMPTZOID};
	Datum		values[2] = {ObjectIdGetDatum(relid), TimestampTzGetDatum(as_of)};
	StringInfoData sample;
	double		est = 0,
				fraction;
	uint64		i,
				nleaves;
	Oid			save_userid;
	int			save_sec;
	int			k;
	char	   *pct;
	List	   *leaves = NIL;
	ListCell   *lc;
	MemoryContext cxt = CurrentMemoryContext;

	/*
	 * The leaves of the window and their rows now: pages on disk (real,
	 * even where statistics are stale) times rows per page at the last
	 * ANALYZE or VACUUM (100 when unknown, which errs toward reading fewer
	 * rows).  pg_relation_size takes ACCESS SHARE: under the lock timeout.
	 */
	catalog_execute(psprintf("SELECT l.relid, (pg_catalog.pg_relation_size(l.relid) OPERATOR(pg_catalog./) "
							 "  pg_catalog.current_setting('block_size')::pg_catalog.int8)::pg_catalog.float8 "
							 "  OPERATOR(pg_catalog.*) CASE WHEN c.relpages OPERATOR(pg_catalog.>) 0 AND c.reltuples OPERATOR(pg_catalog.>) 0 "
							 "  THEN c.reltuples::pg_catalog.float8 OPERATOR(pg_catalog./) c.relpages ELSE 100 END "
							 "FROM %s($1) t, pg_catalog.pg_partition_tree(t.partition_name) l "
							 "JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) l.relid AND c.relkind OPERATOR(pg_catalog.=) 'r' "
							 "WHERE t.level OPERATOR(pg_catalog.=) 1 AND NOT t.is_default "
							 "AND t.range_from OPERATOR(pg_catalog.<=) $2 "
							 "AND t.range_to OPERATOR(pg_catalog.>) %s($2, %s, -1) ORDER BY 1",
							 capacity_object("capacity_partition_tree"), capacity_object("capacity_period_start"),
							 quote_literal_cstr(granularity)),
					2, types, values, NULL, false);
	nleaves = SPI_processed;
	for (i = 0; i < nleaves; i++)
	{
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(cxt);

		leaves = lappend_oid(leaves, DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)));
		MemoryContextSwitchTo(old);
		est += DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	if (leaves == NIL)
	{
		*why = "no partition for the current or the previous period";
		return false;
	}
	fraction = (est <= mc_tenant_sample_rows) ? 1.0 : (double) mc_tenant_sample_rows / est;
	pct = psprintf("%.9f", 100.0 * fraction);

	initStringInfo(&sample);
	foreach(lc, leaves)
	{
		Oid			leaf = lfirst_oid(lc);

		appendStringInfo(&sample, "%sSELECT x.tableoid AS rel, (x.ctid::pg_catalog.text::pg_catalog.point)[0] AS page, "
						 "x.%s::pg_catalog.text AS tenant FROM ONLY %s x",
						 foreach_current_index(lc) ? " UNION ALL " : "",
						 quote_identifier(hash_column), qualified_name(leaf));
		if (fraction < 1.0)
		{
			appendStringInfo(&sample, " TABLESAMPLE SYSTEM (%s)", pct);
			/* a seed per leaf: the same seed would pick the same page numbers in every leaf */
			if (mc_tenant_sample_seed >= 0)
				appendStringInfo(&sample, " REPEATABLE (%d)", mc_tenant_sample_seed + foreach_current_index(lc));
		}
	}

	/* as the owner: whatever user code reading the table runs is its own */
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(get_rel_owner_oid(relid),
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	if (SPI_execute(psprintf(SHARES_SQL, sample.data, psprintf("%.17g", fraction), psprintf("%.17g", est)), true, 0) != SPI_OK_SELECT)
		elog(ERROR, "matter_capacity: reading the tenant sample failed");
	SetUserIdAndSecContext(save_userid, save_sec);
	if (SPI_processed == 0)
	{
		*why = "no rows in the current or the previous period";
		return false;
	}
	for (k = 0; k < N_SHARE_INDICATORS; k++)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, k + 1, &out->isnull[k]);

		out->v[k] = out->isnull[k] ? 0 : DatumGetFloat8(d);
	}
	out->have = true;
	return true;
}

/* One table's shares, read under the probe timeout and the lock timeout. */
typedef struct ShareRead
{
	Oid			relid;
	char	   *granularity;
	char	   *tenant_column;
	TimestampTz as_of;
	TableShares *one;
	char	  **why;
} ShareRead;

static bool
share_read_step(void *arg)
{
	ShareRead  *sr = arg;
	int			nest = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("lock_timeout", psprintf("%d", mc_lock_timeout_ms), PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	share_timed_out = false;
	enable_timeout_after(share_timeout_id, mc_probe_timeout_ms);
	if (!read_table_shares(sr->relid, sr->granularity, sr->tenant_column, sr->as_of, sr->one, sr->why))
		sr->one->have = false;
	disable_timeout(share_timeout_id, false);
	AtEOXact_GUC(true, nest);
	/* read-only: roll back, which releases the leaves' locks at once */
	return false;
}

/*
 * Every managed table with a tenant column, one at a time; samples of the
 * seven indicators for those read, a note naming those skipped and why.
 */
int
sample_tenant_shares(TimestampTz as_of)
{
	List	   *relids = NIL,
			   *grans = NIL,
			   *cols = NIL;
	ListCell   *a,
			   *b,
			   *c;
	TableShares *res;
	int			ntables,
				t = 0,
				k,
				total = 0;
	uint64		i;
	StringInfoData notes;
	MemoryContext cxt = CurrentMemoryContext;

	catalog_execute(psprintf("SELECT p.table_name::pg_catalog.oid, p.granularity, p.hash_column::pg_catalog.text FROM %s p "
							 "WHERE p.hash_column IS NOT NULL ORDER BY p.table_name::pg_catalog.regclass::pg_catalog.text",
							 capacity_object("capacity_policy")),
					0, NULL, NULL, NULL, true);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(cxt);
		Oid			relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));

		if (get_rel_name(relid) != NULL)
		{
			relids = lappend_oid(relids, relid);
			grans = lappend(grans, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2));
			cols = lappend(cols, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 3));
		}
		MemoryContextSwitchTo(old);
	}
	ntables = list_length(relids);
	if (ntables == 0)
	{
		note_indicator("tenant_top_share", as_of, "no managed table has a tenant (hash) column");
		return 0;
	}
	res = palloc0(sizeof(TableShares) * ntables);
	initStringInfo(&notes);
	if (share_timeout_id == MAX_TIMEOUTS)
		share_timeout_id = RegisterTimeout(USER_TIMEOUT, share_timeout_handler);

	forthree(a, relids, b, grans, c, cols)
	{
		Oid			relid = lfirst_oid(a);
		char	  **why = palloc0(sizeof(char *));
		char	   *name = qualified_name(relid);
		TableShares *one = palloc0(sizeof(TableShares));
		ShareRead	sr = {relid, lfirst(b), lfirst(c), as_of, one, why};
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = run_guarded(share_read_step, &sr, NULL);
		if (edata)
		{
			disable_timeout(share_timeout_id, false);
			if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED && !share_timed_out)
				ReThrowError(edata);
			*why = share_timed_out
				? psprintf("timed out after %d ms (matter_capacity.probe_timeout)", mc_probe_timeout_ms)
				: edata->sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE
				? psprintf("lock not available within %d ms (matter_capacity.lock_timeout)", mc_lock_timeout_ms)
				: pstrdup(edata->message);
			share_timed_out = false;
			one->have = false;
		}
		res[t] = *one;
		if (!one->have)
			appendStringInfo(&notes, "%s%s skipped: %s", notes.len ? "; " : "", name, *why ? *why : "no sample");
		t++;
	}

	/* write what was read, as the extension owner, like every sample */
	for (k = 0; k < N_SHARE_INDICATORS; k++)
	{
		StringInfoData src;
		int			n = 0,
					written = 0;

		initStringInfo(&src);
		appendStringInfoString(&src, "SELECT pg_catalog.jsonb_build_object('table', l::pg_catalog.regclass::pg_catalog.text), "
							   "v::pg_catalog.float8 FROM (VALUES ");
		t = 0;
		foreach(a, relids)
		{
			if (res[t].have && !res[t].isnull[k])
				appendStringInfo(&src, "%s(%u::pg_catalog.oid, %.17g)", n++ ? ", " : "", lfirst_oid(a), res[t].v[k]);
			t++;
		}
		appendStringInfoString(&src, ") AS s(l, v)");
		if (n > 0)
			written = write_samples(share_indicators[k], src.data, as_of);
		total += written;
		if (k > 0)
			indicator_ran(share_indicators[k], as_of, written, notes.len ? notes.data : NULL);
	}
	note_indicator("tenant_top_share", as_of, notes.len ? notes.data : NULL);
	return total;
}
