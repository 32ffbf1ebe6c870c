/*-------------------------------------------------------------------------
 * rollover.c
 *		The rollover engine and its SQL entry points.
 *
 * Owns: deciding which periods a managed table needs at as_of, building
 * them as standalone tables, rescuing rows from the default partition,
 * attaching, applying retention, and reporting each action.
 *
 * The order of work is chosen so the application never waits long:
 *	1. Periods are built standalone (their hash leaves and a CHECK
 *	   constraint proving their bounds included): nobody else can see them,
 *	   so this takes no lock that matters.  Rows of those periods that sit
 *	   in the default partition are moved into them (ROW EXCLUSIVE only).
 *	2. In one short burst under the lock timeout: SHARE UPDATE EXCLUSIVE on
 *	   the parent, ACCESS EXCLUSIVE on the default partition (PostgreSQL
 *	   needs it to prove the default holds no row of the new ranges), move
 *	   the few rows that arrived meanwhile, ATTACH each period.  If the
 *	   locks cannot be had, everything of step 1 is rolled back and the
 *	   periods are reported skipped_locked; no row ever stays in a table
 *	   that is not attached.
 *	3. Retention detaches (or detaches and drops) whole old periods, one
 *	   bounded step each.
 * A transaction-level advisory lock per table makes a concurrent second
 * caller report skipped_busy instead of doing the same DDL.
 *
 * Must not compute periods (periods.c) or build SQL text (partitions.c).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "matter_capacity.h"
#include "catalog.h"
#include "locks.h"
#include "loopback.h"
#include "partitions.h"
#include "periods.h"
#include "rollover.h"

/* advisory lock class for "this table is being rolled over": 'MC' */
#define ROLLOVER_LOCK_CLASS 0x4D43

PG_FUNCTION_INFO_V1(capacity_rollover);
PG_FUNCTION_INFO_V1(capacity_rollover_proc);

/* A period this rollover will add. */
typedef struct NewPeriod
{
	Period		p;
	char	   *relname;
	int64		default_rows;	/* rows of it waiting in the default partition */
	int64		moved;
} NewPeriod;

/* A default-partition bucket: rows of one period (or NULL times). */
typedef struct Bucket
{
	bool		is_null;		/* NULL or infinite time: can never move */
	int64		start;
	int64		rows;
} Bucket;

static double
elapsed_ms(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_MILLISEC(now);
}

/* Report one action: a result row (or NOTICE), and a log row unless dry run. */
static void
emit(ActionSink *sink, TableLayout *layout, const char *action,
	 const char *partition, const char *detail, instr_time started)
{
	double		ms = elapsed_ms(started) - sink->reported_ms;

	sink->reported_ms += ms;

	if (sink->store)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, partition == NULL, detail == NULL};

		values[0] = ObjectIdGetDatum(layout->relid);
		values[1] = CStringGetTextDatum(action);
		values[2] = partition ? CStringGetTextDatum(partition) : (Datum) 0;
		values[3] = detail ? CStringGetTextDatum(detail) : (Datum) 0;
		tuplestore_putvalues(sink->store, sink->desc, values, nulls);
	}
	else if (!sink->quiet)
		ereport(NOTICE,
				(errmsg("%s: %s %s%s%s", layout->qualname, action,
						partition ? partition : "",
						detail ? ": " : "", detail ? detail : "")));
	if (!sink->dry_run)
		log_action(layout->relid, layout->qualname, sink->as_of, action,
				   partition, detail, ms);
}

static List *
read_default_buckets(TableLayout *layout, Granularity g)
{
	List	   *buckets = NIL;
	uint64		i;

	if (layout->deflt == NULL)
		return NIL;
	exec_sql(sql_default_buckets(layout, g), SPI_OK_SELECT);
	for (i = 0; i < SPI_processed; i++)
	{
		Bucket	   *b = palloc0(sizeof(Bucket));
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);

		b->is_null = isnull || TIMESTAMP_NOT_FINITE(DatumGetTimestamp(d));
		b->start = b->is_null ? 0 : DatumGetTimestamp(d);
		b->rows = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		buckets = lappend(buckets, b);
	}
	return buckets;
}

static char *
rows_from_default(int64 n)
{
	return psprintf(INT64_FORMAT " %s from the default partition", n, n == 1 ? "row" : "rows");
}

static NewPeriod *
find_new_period(List *periods, int64 start)
{
	ListCell   *lc;

	foreach(lc, periods)
	{
		NewPeriod  *np = lfirst(lc);

		if (np->p.from == start)
			return np;
	}
	return NULL;
}

static int
cmp_new_periods(const ListCell *a, const ListCell *b)
{
	NewPeriod  *pa = lfirst(a);
	NewPeriod  *pb = lfirst(b);

	return (pa->p.from > pb->p.from) - (pa->p.from < pb->p.from);
}

static NewPeriod *
add_new_period(List **periods, TableLayout *layout, Policy *pol, int64 start)
{
	NewPeriod  *np = palloc0(sizeof(NewPeriod));

	np->p.from = start;
	np->p.to = period_advance(start, pol->gran, 1);
	np->relname = partition_relname(layout->relname, period_suffix(start, pol->gran));
	*periods = lappend(*periods, np);
	return np;
}

/* Argument of attach_burst, the step run under the lock timeout. */
typedef struct AttachBurst
{
	TableLayout *layout;
	Policy	   *pol;
	List	   *periods;
} AttachBurst;

/*
 * Step 2: take the strong locks, move the rows that reached the default
 * partition since step 1, attach every new period.
 */
static void
attach_burst(void *arg)
{
	AttachBurst *b = arg;
	TableLayout *layout = b->layout;
	ListCell   *lc;

	LockRelationOid(layout->relid, ShareUpdateExclusiveLock);
	if (layout->deflt)
	{
		List	   *buckets;

		LockRelationOid(layout->deflt->relid, AccessExclusiveLock);
		buckets = read_default_buckets(layout, b->pol->gran);
		foreach(lc, buckets)
		{
			Bucket	   *bk = lfirst(lc);
			NewPeriod  *np = bk->is_null ? NULL : find_new_period(b->periods, bk->start);

			if (np)
			{
				exec_sql(sql_move_rows(layout, np->relname, np->p), SPI_OK_INSERT);
				np->moved += SPI_processed;
			}
		}
	}
	foreach(lc, b->periods)
	{
		NewPeriod  *np = lfirst(lc);

		exec_sql(sql_attach_period(layout, np->relname, np->p), SPI_OK_UTILITY);
	}
}

static void
build_standalone(TableLayout *layout, Policy *pol, NewPeriod *np)
{
	char	   *hashcol = pol->hash_column ? pstrdup(quote_identifier(pol->hash_column)) : NULL;
	int			r;

	exec_sql(sql_create_period(layout, np->relname, np->p, hashcol), SPI_OK_UTILITY);
	for (r = 0; hashcol && r < pol->hash_partitions; r++)
	{
		char	   *suffix = psprintf("%s_%s", period_suffix(np->p.from, pol->gran),
									  hash_leaf_suffix(r, pol->hash_partitions));

		exec_sql(sql_create_leaf(layout, np->relname,
								 partition_relname(layout->relname, suffix),
								 pol->hash_partitions, r),
				 SPI_OK_UTILITY);
	}
	if (np->default_rows > 0)
	{
		exec_sql(sql_move_rows(layout, np->relname, np->p), SPI_OK_INSERT);
		np->moved = SPI_processed;
	}
}

static char *
period_detail(Policy *pol, NewPeriod *np)
{
	char	   *range = psprintf("[%s, %s)", utc_label(np->p.from), utc_label(np->p.to));

	if (pol->hash_column)
		return psprintf("%s, %d hash partitions", range, pol->hash_partitions);
	return range;
}

/* Argument of detach_step. */
typedef struct DetachStep
{
	const char *parent_q;
	const char *part_q;
	bool		drop;
	Oid			part_relid;
} DetachStep;

/* Is relid a partition whose DETACH ... CONCURRENTLY was interrupted? */
static bool
detach_pending(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};

	catalog_execute("SELECT 1 FROM pg_catalog.pg_inherits i "
					"WHERE i.inhrelid OPERATOR(pg_catalog.=) $1 AND i.inhdetachpending",
					1, types, values, NULL, true);
	return SPI_processed > 0;
}

static void
forget_pending_drop(Oid part_relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(part_relid)};

	catalog_execute(psprintf("DELETE FROM %s WHERE partition_oid OPERATOR(pg_catalog.=) $1",
							 capacity_object("capacity_pending_drop")),
					1, types, values, NULL, false);
}

/*
 * DROP of a partition already detached (only its own lock is needed), with
 * its record in capacity_pending_drop if it has one.
 */
static void
drop_step(void *arg)
{
	DetachStep *d = arg;

	exec_sql(psprintf("DROP TABLE %s", d->part_q), SPI_OK_UTILITY);
	forget_pending_drop(d->part_relid);
}

/*
 * Plain DETACH: ACCESS EXCLUSIVE on the parent, so run under run_bounded.
 * A detach left pending by an interrupted DETACH ... CONCURRENTLY refuses a
 * plain DETACH; FINALIZE completes it (and may run in a transaction).
 */
static void
detach_step(void *arg)
{
	DetachStep *d = arg;

	exec_sql(psprintf("ALTER TABLE %s DETACH PARTITION %s%s", d->parent_q, d->part_q,
					  detach_pending(d->part_relid) ? " FINALIZE" : ""),
			 SPI_OK_UTILITY);
	if (d->drop)
		drop_step(d);
}

/*
 * Record the drops the deferred detaches are to finish, in the transaction
 * that commits before them: a crash or a lock timeout between the detach
 * and the drop then leaves a row finish_pending_drops() acts on.
 */
static void
record_pending_drops(ActionSink *sink)
{
	ListCell   *lc;

	foreach(lc, sink->deferred)
	{
		DeferredDetach *dd = lfirst(lc);
		Oid			types[3] = {OIDOID, OIDOID, TEXTOID};
		Datum		values[3];

		if (!dd->drop)
			continue;
		values[0] = ObjectIdGetDatum(dd->part_relid);
		values[1] = ObjectIdGetDatum(dd->relid);
		values[2] = CStringGetTextDatum(dd->part_name);
		catalog_execute(psprintf("INSERT INTO %s (partition_oid, table_oid, partition_name) "
								 "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
								 capacity_object("capacity_pending_drop")),
						3, types, values, NULL, false);
	}
}

/*
 * Drops an earlier run recorded but did not finish: the partition was
 * detached and then the server crashed or the DROP's lock timed out.  A
 * recorded table that is a partition again (or still) is left to retention;
 * one that is gone is forgotten.  Runs under the advisory lock.
 */
static int
finish_pending_drops(ActionSink *sink, TableLayout *layout, instr_time started)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(layout->relid)};
	List	   *oids = NIL;
	ListCell   *lc;
	uint64		i;
	int			done = 0;

	catalog_execute(psprintf("SELECT partition_oid FROM %s WHERE table_oid OPERATOR(pg_catalog.=) $1",
							 capacity_object("capacity_pending_drop")),
					1, types, values, NULL, true);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		oids = lappend_oid(oids, DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
																SPI_tuptable->tupdesc, 1, &isnull)));
	}
	foreach(lc, oids)
	{
		Oid			part = lfirst_oid(lc);
		char	   *relname = get_rel_name(part);
		DetachStep	d = {NULL, NULL, true, part};

		if (relname == NULL)
		{
			forget_pending_drop(part);	/* gone: only the record is left */
			continue;
		}
		if (get_rel_relispartition(part))
			continue;
		d.part_q = qualified_name(part);
		if (run_bounded(drop_step, &d, NULL))
		{
			emit(sink, layout, "dropped", relname,
				 "detached by an earlier retention run that did not finish its drop", started);
			done++;
		}
		else
			emit(sink, layout, "skipped_locked", relname,
				 "detached earlier, to be dropped: lock not available", started);
	}
	return done;
}

static void
defer_detach(ActionSink *sink, TableLayout *layout, DetachStep *d,
			 const char *relname, const char *detail)
{
	MemoryContext old;
	DeferredDetach *dd;
	ListCell   *lc;

	foreach(lc, sink->deferred)
	{
		if (strcmp(((DeferredDetach *) lfirst(lc))->part_q, d->part_q) == 0)
			return;
	}
	old = MemoryContextSwitchTo(sink->defer_cxt);
	dd = palloc0(sizeof(DeferredDetach));
	dd->relid = layout->relid;
	dd->part_relid = d->part_relid;
	dd->parent_q = pstrdup(d->parent_q);
	dd->part_q = pstrdup(d->part_q);
	dd->part_name = pstrdup(relname);
	dd->detail = pstrdup(detail);
	dd->drop = d->drop;
	sink->deferred = lappend(sink->deferred, dd);
	MemoryContextSwitchTo(old);
}

/*
 * Procedure mode, after a commit (so this backend holds no lock on the
 * parent): DETACH ... CONCURRENTLY through the loopback connection, which
 * never makes the application wait.  If the loopback cannot be used, fall
 * back to the bounded plain DETACH and say why.
 */
void
run_deferred_detaches(ActionSink *sink)
{
	ListCell   *lc;

	foreach(lc, sink->deferred)
	{
		DeferredDetach *dd = lfirst(lc);
		const char *action = dd->drop ? "dropped" : "detached";
		char	   *error = NULL;
		instr_time	started;
		TableLayout table_only = {0};
		DetachStep	d = {dd->parent_q, dd->part_q, dd->drop, dd->part_relid};

		INSTR_TIME_SET_CURRENT(started);
		sink->reported_ms = 0;
		table_only.relid = dd->relid;
		table_only.qualname = dd->parent_q;

		if (detach_concurrently(dd->parent_q, dd->part_q, &error))
		{
			/* detached; the drop is ours, bounded, and recorded if it fails */
			if (!dd->drop || run_bounded(drop_step, &d, NULL))
				emit(sink, &table_only, action, dd->part_name,
					 psprintf("%s (DETACH CONCURRENTLY)", dd->detail), started);
			else
				emit(sink, &table_only, "skipped_locked", dd->part_name,
					 "detached; the drop is left to the next rollover (lock not available)", started);
		}
		else
		{
			ereport(WARNING,
					(errmsg("matter_capacity: DETACH CONCURRENTLY of %s failed: %s",
							dd->part_q, error ? error : "unknown error"),
					 errhint("Set matter_capacity.loopback_conninfo so this server accepts its own connection; plain DETACH is used meanwhile.")));
			if (run_bounded(detach_step, &d, NULL))
				emit(sink, &table_only, action, dd->part_name,
					 psprintf("%s (plain DETACH: loopback unavailable)", dd->detail), started);
			else
				emit(sink, &table_only, "skipped_locked", dd->part_name,
					 "retention: lock not available", started);
		}
	}
	sink->deferred = NIL;
}

static void
create_default_step(void *arg)
{
	AttachBurst *b = arg;
	char	   *name = partition_relname(b->layout->relname, "default");

	exec_sql(sql_create_default(b->layout, name), SPI_OK_UTILITY);
	exec_sql(sql_attach_default(b->layout, name), SPI_OK_UTILITY);
}

/*
 * Retention: detach (or drop) each expired period under run_bounded.
 * Returns the units done; with step_limit > 0, stops once steps (done
 * before) plus these reach it.
 */
static int
retire_expired(ActionSink *sink, TableLayout *layout, Policy *pol, List *expired,
			   int64 cutoff, int steps, int step_limit, instr_time started)
{
	ListCell   *lc;
	int			done = 0;

	foreach(lc, expired)
	{
		PartInfo   *pi = lfirst(lc);
		DetachStep	d = {layout->qualname, qualified_name(pi->relid), pol->retention_drop, pi->relid};
		char	   *relname = get_rel_name(pi->relid);
		char	   *detail = psprintf("ended %s, before the retention cutoff %s",
									  utc_label(pi->to), utc_label(cutoff));

		if (sink->defer_detach && !pol->default_partition && !sink->dry_run)
		{
			defer_detach(sink, layout, &d, relname, detail);
			continue;
		}
		if (step_limit > 0 && steps + done >= step_limit)
			break;
		done++;
		if (sink->dry_run)
			emit(sink, layout, d.drop ? "dropped" : "detached", relname, detail, started);
		else if (run_bounded(detach_step, &d, NULL))
			emit(sink, layout, d.drop ? "dropped" : "detached", relname, detail, started);
		else
			emit(sink, layout, "skipped_locked", relname,
				 psprintf("retention: lock on %s not available", layout->qualname), started);
	}
	return done;
}

/*
 * Roll one table over at sink->as_of.  Does at most step_limit units of
 * work (a period attached, a partition detached) when step_limit > 0, so
 * the procedure can commit between them.  Returns the units done.  The
 * caller has connected SPI, pinned search_path and checked ownership; DDL
 * runs as the table's owner so new partitions belong to it.
 */
int
rollover_table(Policy *pol, ActionSink *sink, int step_limit)
{
	instr_time	started;
	TableLayout *layout;
	Period		cur;
	int64		horizon_end;
	int64		cutoff = 0;
	int64		lower;
	int64		t;
	List	   *buckets;
	List	   *periods = NIL;
	List	   *expired = NIL;
	ListCell   *lc;
	int64		kept_rows = 0;
	int			steps = 0;
	Oid			save_userid;
	int			save_sec;

	INSTR_TIME_SET_CURRENT(started);
	sink->reported_ms = 0;

	if (!sink->dry_run &&
		!DatumGetBool(DirectFunctionCall2(pg_try_advisory_xact_lock_int4,
										  Int32GetDatum(ROLLOVER_LOCK_CLASS),
										  Int32GetDatum((int32) pol->relid))))
	{
		TableLayout table_only = {0};

		table_only.relid = pol->relid;
		table_only.qualname = qualified_name(pol->relid);
		emit(sink, &table_only, "skipped_busy", NULL,
			 "another session is rolling this table over", started);
		return 0;
	}
	/* see what the session that held the lock committed */
	AcceptInvalidationMessages();

	layout = read_table_layout(pol->relid, pol->time_column);

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(layout->owner,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);

	if (!sink->dry_run)
		steps += finish_pending_drops(sink, layout, started);

	/* The default partition first: without it, out-of-range rows fail. */
	if (pol->default_partition && layout->deflt == NULL)
	{
		char	   *name = partition_relname(layout->relname, "default");
		AttachBurst b = {layout, pol, NIL};

		if (sink->dry_run)
			emit(sink, layout, "created", name, "default partition", started);
		else if (run_bounded(create_default_step, &b, NULL))
		{
			emit(sink, layout, "created", name, "default partition", started);
			layout = read_table_layout(pol->relid, pol->time_column);
			steps++;
		}
		else
			emit(sink, layout, "skipped_locked", name, "default partition: lock not available", started);
	}

	/* What is wanted: current period and premake ahead ... */
	cur = period_containing(sink->as_of, pol->gran);
	horizon_end = period_advance(cur.from, pol->gran, pol->premake + 1);
	check_time_in_range(horizon_end, "as_of plus premake periods");
	for (t = cur.from; t < horizon_end; t = period_advance(t, pol->gran, 1))
	{
		Period		p = {t, period_advance(t, pol->gran, 1)};

		if (find_overlapping(layout, p) == NULL)
			add_new_period(&periods, layout, pol, t);
	}

	/* ... and past periods the policy covers that have rows waiting. */
	if (pol->retention)
	{
		cutoff = DatumGetTimestamp(DirectFunctionCall2(timestamp_mi_interval,
													   TimestampGetDatum(sink->as_of),
													   IntervalPGetDatum(pol->retention)));
		lower = period_floor(cutoff, pol->gran);
	}
	else
	{
		lower = cur.from;
		foreach(lc, layout->parts)
		{
			PartInfo   *pi = lfirst(lc);

			if (!pi->from_unbounded && pi->from < lower)
				lower = pi->from;
		}
	}
	buckets = read_default_buckets(layout, pol->gran);
	foreach(lc, buckets)
	{
		Bucket	   *b = lfirst(lc);
		NewPeriod  *np = NULL;

		if (!b->is_null && b->start >= lower && b->start < horizon_end)
		{
			Period		p = period_containing(b->start, pol->gran);

			np = find_new_period(periods, p.from);
			if (np == NULL && find_overlapping(layout, p) == NULL)
				np = add_new_period(&periods, layout, pol, p.from);
		}
		if (np)
			np->default_rows += b->rows;
		else
			kept_rows += b->rows;
	}
	list_sort(periods, cmp_new_periods);
	if (step_limit > 0 && list_length(periods) > step_limit - steps)
		periods = list_truncate(periods, Max(step_limit - steps, 0));
	steps += list_length(periods);

	/* Retention: whole periods older than the cutoff, never the current. */
	if (pol->retention)
	{
		foreach(lc, layout->parts)
		{
			PartInfo   *pi = lfirst(lc);

			/* a historical partition left by a conversion is never retired */
			if (!pi->from_unbounded && !pi->to_unbounded &&
				pi->to <= cutoff && pi->to <= cur.from)
				expired = lappend(expired, pi);
		}
	}

	/*
	 * In one transaction (the function form) retention goes first.  A
	 * DETACH needs ACCESS EXCLUSIVE on the parent, and the attach burst
	 * holds the default partition until commit: detaching after the burst
	 * inverted the application's lock order (parent, then partitions), so
	 * readers queued on the default partition while holding the parent,
	 * every DETACH attempt timed out behind them, and the pauses between
	 * attempts kept the default locked (4.8 s stalls in load.sh).  Parent
	 * first, nothing strong is held while we pause, and once the parent is
	 * ours the burst waits for nobody.  Per-step callers commit between
	 * units, so their order (new periods first) carries no lock over.
	 */
	if (step_limit == 0)
	{
		retire_expired(sink, layout, pol, expired, cutoff, 0, 0, started);
		expired = NIL;
	}

	if (sink->dry_run)
	{
		foreach(lc, periods)
		{
			NewPeriod  *np = lfirst(lc);

			emit(sink, layout, "created", np->relname, period_detail(pol, np), started);
			if (np->default_rows > 0)
				emit(sink, layout, "moved_rows", np->relname,
					 rows_from_default(np->default_rows),
					 started);
		}
	}
	else if (periods != NIL)
	{
		AttachBurst burst = {layout, pol, periods};
		MemoryContext oldcxt = CurrentMemoryContext;
		ResourceOwner oldowner = CurrentResourceOwner;
		int			attempts = 0;
		bool		attached;

		/* Steps 1 and 2 in a subtransaction, undone whole if locks fail. */
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(oldcxt);
		foreach(lc, periods)
			build_standalone(layout, pol, lfirst(lc));
		attached = run_bounded(attach_burst, &burst, &attempts);
		if (attached)
			ReleaseCurrentSubTransaction();
		else
			RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;

		foreach(lc, periods)
		{
			NewPeriod  *np = lfirst(lc);

			if (!attached)
			{
				emit(sink, layout, "skipped_locked", np->relname,
					 psprintf("locks on %s not available after %d attempts of %d ms",
							  layout->qualname, attempts, mc_lock_timeout_ms),
					 started);
				continue;
			}
			emit(sink, layout, "created", np->relname, period_detail(pol, np), started);
			if (np->moved > 0)
				emit(sink, layout, "moved_rows", np->relname,
					 rows_from_default(np->moved),
					 started);
		}
	}

	steps += retire_expired(sink, layout, pol, expired, cutoff, steps, step_limit, started);

	if (kept_rows > 0 && (step_limit == 0 || steps < step_limit))
		emit(sink, layout, "kept_in_default", get_rel_name(layout->deflt->relid),
			 psprintf(INT64_FORMAT " rows outside the policy's range stay in the default partition",
					  kept_rows),
			 started);

	SetUserIdAndSecContext(save_userid, save_sec);
	return steps;
}

/* (tbl, as_of, dry_run) of both entry points; returns tbl or InvalidOid. */
static Oid
rollover_args(FunctionCallInfo fcinfo, ActionSink *sink)
{
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matter_capacity: as_of must not be NULL"),
				 errhint("Omit it to use now().")));
	sink->as_of = PG_GETARG_TIMESTAMPTZ(1);
	sink->dry_run = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	check_time_in_range(sink->as_of, "as_of");
	if (!sink->dry_run)
		require_not_in_recovery("roll partitions over");
	return PG_ARGISNULL(0) ? InvalidOid : PG_GETARG_OID(0);
}

/* Policies the call covers; a named table must be managed and owned. */
static List *
policies_for_call(Oid relid, MemoryContext mcxt)
{
	List	   *pols = load_policies(relid, mcxt);

	if (OidIsValid(relid) && pols == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("matter_capacity: table %s is not managed", qualified_name(relid)),
				 errhint("Register it first with capacity_manage().")));
	if (OidIsValid(relid))
		require_table_owner(relid);
	return pols;
}

/*
 * capacity_rollover(tbl regclass, as_of timestamptz, dry_run boolean)
 *		RETURNS TABLE(table_name regclass, action text, partition_name text, detail text)
 */
Datum
capacity_rollover(PG_FUNCTION_ARGS)
{
	Oid			relid;
	ActionSink	sink = {0};
	List	   *pols;
	ListCell   *lc;
	int			nest;
	MemoryContext mcxt = CurrentMemoryContext;

	relid = rollover_args(fcinfo, &sink);
	init_materialized(fcinfo, &sink.store, &sink.desc);

	SPI_connect();
	nest = pin_search_path();
	pols = policies_for_call(relid, mcxt);
	foreach(lc, pols)
	{
		Policy	   *pol = lfirst(lc);

		/* with no table named, roll over only what the caller owns */
		if (!OidIsValid(relid) && !caller_owns_table(pol->relid))
			continue;
		rollover_table(pol, &sink, 0);
	}
	AtEOXact_GUC(true, nest);
	SPI_finish();
	return (Datum) 0;
}

static void
spi_commit_step(void)
{
	SPI_commit();
	SPI_start_transaction();
}

/*
 * Roll over relid (or every table the caller owns) one unit of work per
 * transaction when nonatomic, committing through SPI between units, then
 * retire no-default periods with DETACH CONCURRENTLY once this backend holds
 * no lock.  commit ends the transaction and starts the next (NULL: one
 * transaction, no per-step commits); the caller connected SPI and mcxt
 * outlives the commits.  Used by the procedure and the worker.
 */
void
rollover_per_step(Oid relid, ActionSink *sink, CommitStep commit, MemoryContext mcxt)
{
	List	   *pols;
	ListCell   *lc;
	bool		nonatomic = (commit != NULL);

	sink->defer_detach = nonatomic && !sink->dry_run;
	sink->defer_cxt = mcxt;
	pols = policies_for_call(relid, mcxt);
	foreach(lc, pols)
	{
		Policy	   *pol = lfirst(lc);

		if (!OidIsValid(relid) && !caller_owns_table(pol->relid))
			continue;
		for (;;)
		{
			int			nest = pin_search_path();
			int			done;

			done = rollover_table(pol, sink, (nonatomic && !sink->dry_run) ? 1 : 0);
			AtEOXact_GUC(true, nest);
			if (!nonatomic || sink->dry_run || done == 0)
				break;
			commit();
		}
		if (sink->deferred != NIL)
		{
			/* release every lock this backend holds, then detach */
			record_pending_drops(sink);
			commit();
			run_deferred_detaches(sink);
			commit();
		}
	}
}

/*
 * CALL capacity_rollover_proc(tbl, as_of, dry_run): the same work, one
 * unit per transaction, so locks are held only for one period at a time.
 * Actions are reported as NOTICEs and in capacity_rollover_log.
 */
Datum
capacity_rollover_proc(PG_FUNCTION_ARGS)
{
	Oid			relid;
	ActionSink	sink = {0};
	bool		nonatomic = fcinfo->context && IsA(fcinfo->context, CallContext) &&
		!castNode(CallContext, fcinfo->context)->atomic;
	MemoryContext mcxt = AllocSetContextCreate(TopMemoryContext, "matter_capacity rollover",
											   ALLOCSET_DEFAULT_SIZES);

	relid = rollover_args(fcinfo, &sink);

	SPI_connect_ext(nonatomic ? SPI_OPT_NONATOMIC : 0);
	PG_TRY();
	{
		rollover_per_step(relid, &sink, nonatomic ? spi_commit_step : NULL, mcxt);
	}
	PG_FINALLY();
	{
		MemoryContextDelete(mcxt);
	}
	PG_END_TRY();
	SPI_finish();
	PG_RETURN_VOID();
}
