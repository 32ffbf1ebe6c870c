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
 *	   in the default partition are moved into them (ROW EXCLUSIVE only),
 *	   waiting at most the lock timeout for a row another session holds,
 *	   and in the worker running the owner's code it fires for at most one
 *	   sample interval (step1_move).
 *	2. In one short burst under the lock timeout: SHARE on the parent
 *	   (SHARE UPDATE EXCLUSIVE without a default partition; see
 *	   attach_burst), ACCESS EXCLUSIVE on the default partition (PostgreSQL
 *	   needs it to prove the default holds no row of the new ranges), move
 *	   the few rows that arrived meanwhile, ATTACH each period.  The moves
 *	   fire the table owner's triggers on the default partition, so they
 *	   run under a time limit of what is left of the lock timeout
 *	   (moves_within_lock_timeout); running out of it counts as a lock
 *	   not had.  If the locks cannot be had, everything of step 1 is
 *	   rolled back and the periods are reported skipped_locked; no row
 *	   ever stays in a table that is not attached.
 *	3. Retention detaches (or detaches and drops) whole old periods, one
 *	   bounded step each, waiting only for the parent (lock_for_detach).
 *	   The procedure and the worker retire a table that has no default
 *	   partition with DETACH ... CONCURRENTLY through the loopback, after a
 *	   commit and each in a transaction of its own, so the loopback never
 *	   waits for a lock of ours (run_deferred_detaches); a table that keeps
 *	   a default partition (PostgreSQL refuses the concurrent form then)
 *	   uses the bounded plain DETACH.  A drop, recorded in
 *	   capacity_pending_drop until done, is carried out only while the
 *	   policy in force still says drop (policy_still_drops).
 * The procedure and the worker commit each unit (a period, a retention
 * step) on its own.  The function form is one transaction, where a lock
 * lasts until the caller commits: it does step 1 of every table first,
 * then moves what arrived meanwhile (still under weak locks), then
 * retention and step 2 of every table back to back
 * (rollover_one_transaction), so writers of one table never wait for
 * another table's builds, bulk moves or triggers there.  A failed step 2
 * there undoes the whole round, which is done again without that table.
 * An autovacuum holding what a step needs is made to give way
 * (bounded_yielding).  Periods follow the policy's grid; after a change of
 * granularity the first new one is the free span up to the next boundary
 * of the new grid (free_spans).
 * A default partition too big for step 2 (its scan under ACCESS EXCLUSIVE
 * grows with every row it holds: 0.6-0.9 s at 5,000,000 rows) is not
 * rescued period by period in the procedure and the worker: above
 * matter_capacity.rescue_backfill_rows rows it is handed, through the
 * loopback, to capacity_empty_default() (60_convert.sql), which makes it a
 * historical partition in one short transaction and moves its rows with the
 * conversion's backfill (empty_large_default).  Refused, the rescue goes on.
 * A table with nothing to do is recognised without reading its layout
 * (nothing_to_do: its next periods by name, an empty default partition),
 * so a no-op costs a few catalog lookups, not a parse of every bound.
 * A transaction-level lock per table (try_busy_guard, in a lock key space
 * no SQL function reaches) makes a concurrent second caller report
 * skipped_busy instead of doing the same DDL.
 * A table a tenant move replicates (not yet cut over) keeps its
 * default-partition rows: their periods are reported skipped_moving
 * (keep_waiting_rows), as the rescue's INSERT into a table not yet attached
 * would not be replicated; so does a table a foreign key references (the
 * move's DELETE would fire the key's ON DELETE action), reported failed.
 *
 * Nothing that goes wrong with one table escapes: each phase runs in a
 * subtransaction (run_reported), an error rolls it back and becomes a row
 * with action 'failed', and the other tables go on.
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
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "access/table.h"
#include "access/twophase.h"
#include "catalog/partition.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_inherits.h"
#include "commands/comment.h"
#include "commands/trigger.h"
#include "lib/stringinfo.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
#include "utils/acl.h"
#include "utils/array.h"
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
#include "sampler.h"
#include "tenant_move.h"
#include "usercode.h"

PG_FUNCTION_INFO_V1(capacity_rollover);
PG_FUNCTION_INFO_V1(capacity_rollover_proc);

/* A period this rollover will add. */
typedef struct NewPeriod
{
	Period		p;
	char	   *suffix;			/* "p20260603", or "p20260603_v2" (see choose_names) */
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

/* An action reported inside a guarded section, shown once it succeeded. */
typedef struct Emitted
{
	Oid			relid;
	char	   *qualname;
	char	   *action;
	char	   *partition;
	char	   *detail;
} Emitted;

/* Show one action: a result row, or a NOTICE (held back while buffering). */
static void
emit_output(ActionSink *sink, Oid relid, const char *qualname, const char *action,
			const char *partition, const char *detail)
{
	if (sink->buffering)
	{
		MemoryContext old = MemoryContextSwitchTo(sink->buffer_cxt);
		Emitted    *e = palloc0(sizeof(Emitted));

		e->relid = relid;
		e->qualname = pstrdup(qualname);
		e->action = pstrdup(action);
		e->partition = partition ? pstrdup(partition) : NULL;
		e->detail = detail ? pstrdup(detail) : NULL;
		sink->buffered = lappend(sink->buffered, e);
		MemoryContextSwitchTo(old);
		return;
	}
	if (!sink->store && strcmp(action, "failed") == 0)
		return;					/* the WARNING of report_failure said it */
	if (sink->store)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, partition == NULL, detail == NULL};

		values[0] = ObjectIdGetDatum(relid);
		values[1] = CStringGetTextDatum(action);
		values[2] = partition ? CStringGetTextDatum(partition) : (Datum) 0;
		values[3] = detail ? CStringGetTextDatum(detail) : (Datum) 0;
		tuplestore_putvalues(sink->store, sink->desc, values, nulls);
	}
	else if (!sink->quiet)
		ereport(NOTICE,
				(errmsg("%s: %s %s%s%s", qualname, action,
						partition ? partition : "",
						detail ? ": " : "", detail ? detail : "")));
}

/*
 * Report one action: a result row (or NOTICE), and a log row unless dry
 * run.  The log row is written in the current (sub)transaction, so it goes
 * when the action is rolled back.
 */
static void
emit(ActionSink *sink, TableLayout *layout, const char *action,
	 const char *partition, const char *detail, instr_time started)
{
	double		ms = elapsed_ms(started) - sink->reported_ms;

	sink->reported_ms += ms;
	emit_output(sink, layout->relid, layout->qualname, action, partition, detail);
	if (!sink->dry_run)
		log_action(layout->relid, layout->qualname, sink->as_of, action,
				   partition, detail, ms);
	if (sink->per_step && strcmp(action, "skipped_locked") == 0)
		sink->stop_table = true;	/* the locks will not come in this call */
}

/*
 * Report what could not be done as a row with action 'failed' (the reason
 * and a hint in detail), a log row, and a WARNING in the server log.
 */
static void
report_failure(ActionSink *sink, Oid relid, const char *qualname, const char *partition,
			   int sqlerrcode, const char *message, const char *errdetail_text,
			   const char *hint)
{
	char	   *detail = psprintf("%s%s%s%s (SQLSTATE %s); hint: %s", message,
								  errdetail_text ? " (" : "",
								  errdetail_text ? errdetail_text : "",
								  errdetail_text ? ")" : "",
								  unpack_sql_state(sqlerrcode), hint);

	ereport(WARNING,
			(errcode(sqlerrcode),
			 errmsg("matter_capacity: rollover of %s%s%s failed: %s", qualname,
					partition ? ", partition " : "", partition ? partition : "", message),
			 errdetail_text ? errdetail("%s", errdetail_text) : 0,
			 errhint("%s", hint)));
	emit_output(sink, relid, qualname, "failed", partition, detail);
	if (!sink->dry_run)
		log_action(relid, qualname, sink->as_of, "failed", partition, detail, 0);
}

/* A hint for an error that came without one. */
static const char *
hint_for(int sqlerrcode)
{
	switch (sqlerrcode)
	{
		case ERRCODE_DUPLICATE_TABLE:
		case ERRCODE_DUPLICATE_OBJECT:
			return "Another object holds a name the rollover needs: rename or drop it, then run the rollover again.";
		case ERRCODE_INSUFFICIENT_PRIVILEGE:
			return "Partitions are created as the table's owner: give that role CREATE on the table's schema.";
		case ERRCODE_T_R_SERIALIZATION_FAILURE:
		case ERRCODE_T_R_DEADLOCK_DETECTED:
			return "A concurrent transaction changed rows this step was moving; the step was undone and no row moved. The next rollover tries again: nothing to fix.";
		case ERRCODE_OUT_OF_MEMORY:
			return "Too many locks for one transaction: lower premake, raise max_locks_per_transaction, or use CALL capacity_rollover_proc(), which commits period by period.";
		default:
			return "Fix the cause named above and run the rollover again; the other tables and actions went on.";
	}
}

typedef void (*GuardedFn) (void *arg);

typedef struct ReportedStep
{
	GuardedFn	fn;
	void	   *arg;
} ReportedStep;

static bool
reported_step(void *arg)
{
	ReportedStep *rs = arg;

	rs->fn(rs->arg);
	return true;
}

/*
 * Run fn(arg) in a subtransaction (run_guarded).  On an error the subtransaction is
 * rolled back whole (with it the user id and security context, GUC nest
 * levels and SPI state of fn), the actions fn reported are withdrawn and
 * the error is reported as a 'failed' row; returns false.  A cancel or a
 * statement timeout is not swallowed: it is re-thrown once the
 * subtransaction is gone, so the caller's transaction ends cleanly.
 */
static bool
run_reported(ActionSink *sink, Oid relid, const char *qualname, const char *partition,
			 GuardedFn fn, void *arg)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	bool		outer_buffering = sink->buffering;
	List	   *outer_buffered = sink->buffered;
	MemoryContext outer_cxt = sink->buffer_cxt;
	List	   *mine;
	ListCell   *lc;
	Oid			save_userid;
	int			save_sec;
	ReportedStep rs = {fn, arg};
	ErrorData  *edata;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	sink->buffering = true;
	sink->buffered = NIL;
	sink->buffer_cxt = oldcxt;

	edata = run_guarded(reported_step, &rs, NULL);
	if (edata)
		SetUserIdAndSecContext(save_userid, save_sec);

	mine = sink->buffered;
	sink->buffering = outer_buffering;
	sink->buffered = outer_buffered;
	sink->buffer_cxt = outer_cxt;

	if (edata == NULL)
	{
		foreach(lc, mine)
		{
			Emitted    *e = lfirst(lc);

			emit_output(sink, e->relid, e->qualname, e->action, e->partition, e->detail);
		}
		return true;
	}
	if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(edata);
	report_failure(sink, relid, qualname, partition, edata->sqlerrcode, edata->message,
				   edata->detail, edata->hint ? edata->hint : hint_for(edata->sqlerrcode));
	FreeErrorData(edata);
	if (sink->per_step)
		sink->stop_table = true;
	return false;
}

/*
 * Has a relation never held a row?  True when it has no pages: every row,
 * committed or not, lives on one.  Saves planning and running a query on
 * an empty default partition (what a rollover with nothing to do meets).
 */
static bool
has_no_pages(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	bool		empty = RelationGetNumberOfBlocks(rel) == 0;

	table_close(rel, NoLock);
	return empty;
}

static List *
read_default_buckets(TableLayout *layout, Granularity g)
{
	List	   *buckets = NIL;
	uint64		i;

	if (layout->deflt == NULL || has_no_pages(layout->deflt->relid))
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

/*
 * A new period: a free span of one period of the policy's grid (the whole
 * period but at the seam after a change of granularity, see free_spans).
 * It is named after the grid period it lies in.
 */
static NewPeriod *
add_new_period(List **periods, TableLayout *layout, Policy *pol, Period span)
{
	NewPeriod  *np = palloc0(sizeof(NewPeriod));

	np->p = span;
	np->suffix = period_suffix(span.from, pol->gran);
	np->relname = partition_relname(layout->relname, np->suffix);
	*periods = lappend(*periods, np);
	return np;
}

/*
 * The order periods are made in: the current one and those ahead first
 * (rows being written now stop landing in the default partition at the
 * first commit), then periods of the past, newest first.  The procedure
 * and the worker commit one period at a time in this order.
 */
static List *
current_first(List *periods, int64 cur_from)
{
	List	   *ahead = NIL;
	List	   *past = NIL;
	ListCell   *lc;

	list_sort(periods, cmp_new_periods);
	foreach(lc, periods)
	{
		NewPeriod  *np = lfirst(lc);

		if (np->p.to > cur_from)
			ahead = lappend(ahead, np);
		else
			past = lcons(np, past);
	}
	return list_concat(ahead, past);
}

/*
 * For the next lock of a bounded step: lock_timeout is set to what is left
 * of matter_capacity.lock_timeout since started (at least 1 ms), so the
 * step's waits add up to one timeout, not one timeout per lock.
 */
static void
wait_within_lock_timeout(instr_time started)
{
	char		left[32];

	snprintf(left, sizeof(left), "%d", Max(1, mc_lock_timeout_ms - (int) elapsed_ms(started)));
	(void) set_config_option("lock_timeout", left, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

/*
 * A foreign key that references the default partition (one referencing the
 * table has a copy on each partition): "fk of table r", or NULL.  Moving a
 * row out of the default partition is a DELETE there, which fires the key's
 * ON DELETE action on the referencing rows: CASCADE would delete them, SET
 * NULL would cut them loose, though the row itself only moved.
 */
static char *
default_referenced(TableLayout *layout)
{
	Oid			types[2] = {OIDOID, OIDOID};
	Datum		values[2];
	bool		isnull;

	if (layout->deflt == NULL)
		return NULL;
	values[0] = ObjectIdGetDatum(layout->relid);
	values[1] = ObjectIdGetDatum(layout->deflt->relid);
	/* the key as its owner made it, not its copy on a partition */
	catalog_execute("SELECT pg_catalog.format('%I of table %s', c.conname, c.conrelid::pg_catalog.regclass) "
					"FROM pg_catalog.pg_constraint c "
					"WHERE c.contype OPERATOR(pg_catalog.=) 'f' AND c.conparentid OPERATOR(pg_catalog.=) 0 "
					"AND (c.confrelid OPERATOR(pg_catalog.=) $1 OR c.confrelid OPERATOR(pg_catalog.=) $2) "
					"ORDER BY 1 LIMIT 1",
					2, types, values, NULL, true);
	if (SPI_processed == 0)
		return NULL;
	return TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * deadlock_timeout of the attach burst's own lock waits (see attach_burst):
 * well under any application's, so that in a deadlock with the
 * application the burst is the one to give way.
 */
#define BURST_DEADLOCK_TIMEOUT "10ms"

/* Argument of attach_burst, the step run under the lock timeout. */
typedef struct AttachBurst
{
	TableLayout *layout;
	Policy	   *pol;
	List	   *periods;
	char	   *moving;			/* tenant of a move not cut over, or NULL */
	char	   *why;			/* set when the moves ran out of time */
	bool		referenced;		/* a foreign key references the default */
	bool		locks_first;	/* step 1 moved nothing: move every row here */
} AttachBurst;

/*
 * The triggers of the default partition that fire when the rescue moves
 * rows out of it (its own and those cloned from the parent), for messages:
 * audit, "Slow", ... or NULL when it has none.
 */
static char *
default_triggers(TableLayout *layout)
{
	Relation	rel = table_open(layout->deflt->relid, NoLock);
	StringInfoData names;
	int			i;

	initStringInfo(&names);
	for (i = 0; rel->trigdesc && i < rel->trigdesc->numtriggers; i++)
	{
		Trigger    *tg = &rel->trigdesc->triggers[i];

		if (tg->tgisinternal || tg->tgenabled == TRIGGER_DISABLED)
			continue;
		appendStringInfo(&names, "%s%s", names.len ? ", " : "", quote_identifier(tg->tgname));
	}
	table_close(rel, NoLock);
	return names.len ? names.data : NULL;
}

/*
 * Moves of the burst, under a time limit of what is left of the lock
 * timeout (usercode_limit_begin).  They fire the table owner's triggers on
 * the default partition, user code that runs while the application waits
 * for our locks; when the limit expires, they fail with 55P03 like a lock
 * that could not be had (b->why says why), run_bounded undoes the burst,
 * pauses and retries, and the periods end skipped_locked.
 */
static void burst_moves(AttachBurst *b);

static void
moves_within_lock_timeout(AttachBurst *b, instr_time started)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			left = Max(1, mc_lock_timeout_ms - (int) elapsed_ms(started));
	char	   *triggers = default_triggers(b->layout);

	usercode_limit_begin(left);
	PG_TRY();
	{
		burst_moves(b);
	}
	PG_CATCH();
	{
		if (!usercode_limit_end())
			PG_RE_THROW();
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		b->why = psprintf("moving the rows that reached the default partition %s since the period was built "
						  "took longer than the %d ms left of the lock timeout while writers waited (%s%s%s)",
						  get_rel_name(b->layout->deflt->relid), left,
						  triggers ? "its triggers fire for each row moved: " : "",
						  triggers ? triggers : "an index on the time column lets the move find its rows",
						  triggers ? "; make them fast or raise matter_capacity.lock_timeout" :
						  ", or raise matter_capacity.lock_timeout");
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("matter_capacity: %s", b->why)));
	}
	PG_END_TRY();
	(void) usercode_limit_end();
}

/*
 * The moves of attach_burst: rows that arrived since step 1 (and, during a
 * tenant move, the check that there are none).
 */
static void
burst_moves(AttachBurst *b)
{
	TableLayout *layout = b->layout;
	List	   *buckets;
	ListCell   *lc;

	/*
	 * A default partition a foreign key references: nothing is moved
	 * (keep_waiting_rows); a row of a new period that arrived meanwhile
	 * makes the ATTACH fail and stays.
	 */
	if (b->referenced)
		return;

	/* during a tenant move, a row that arrived since the plan stays */
	foreach(lc, b->moving ? b->periods : NIL)
	{
		NewPeriod  *np = lfirst(lc);

		exec_sql(sql_default_has_rows(layout, np->p), SPI_OK_SELECT);
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("tenant move of %s in progress: rows of %s reached the default partition of %s",
							b->moving, np->relname, layout->qualname),
					 errhint("The rows stay in the default partition; the rollover after the move's cutover or abort places them.")));
	}

	/*
	 * Rows that arrived since step 1.  One period (the procedure's unit), or
	 * every period when step 1 moved nothing (locks first: each has rows to
	 * move): its range is deleted directly, an index scan where the table
	 * has one, so writers do not wait for a count of the whole default
	 * partition.
	 */
	if (list_length(b->periods) == 1 || b->locks_first)
	{
		foreach(lc, b->periods)
		{
			NewPeriod  *np = lfirst(lc);

			exec_sql(sql_move_rows(layout, np->relname, np->p), SPI_OK_INSERT);
			np->moved += SPI_processed;
		}
		buckets = NIL;
	}
	else
		buckets = read_default_buckets(layout, b->pol->gran);
	foreach(lc, buckets)
	{
		Bucket	   *bk = lfirst(lc);
		ListCell   *lp;

		if (bk->is_null)
			continue;
		/* a bucket is a grid period; new periods are spans of one */
		foreach(lp, b->periods)
		{
			NewPeriod  *np = lfirst(lp);

			if (period_floor(np->p.from, b->pol->gran) != bk->start)
				continue;
			exec_sql(sql_move_rows(layout, np->relname, np->p), SPI_OK_INSERT);
			np->moved += SPI_processed;
		}
	}
}

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

	/*
	 * With a default partition, SHARE on the parent (ATTACH itself needs
	 * only SHARE UPDATE EXCLUSIVE): a writer routes a row with the
	 * partition bounds it read when it locked the parent.  One that routed
	 * a row of a new period to the default partition and queued behind our
	 * lock on it would, once we commit, find the default's constraint
	 * changed and fail with 23514.  Writers now queue on the parent instead
	 * (no longer than the lock timeout: this burst is short) and read the
	 * new bounds when they get it; readers are not held.
	 */
	instr_time	started;

	INSTR_TIME_SET_CURRENT(started);
	if (layout->deflt)
	{
		/*
		 * An application transaction that updates a row step 1 moved
		 * waits for us while holding the parent, which we now wait for: a
		 * deadlock.  It began waiting first, so with equal
		 * deadlock_timeouts its check would find the cycle first and it
		 * would be the one to fail (40P01).  Ours looks early, so we are the
		 * victim: the burst gives up, step 1 is undone, the application
		 * goes on (locks.c does not retry a deadlock).  Restored with the
		 * lock timeout when the step ends.
		 */
		(void) set_config_option("deadlock_timeout", BURST_DEADLOCK_TIMEOUT, PGC_SUSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	}
	LockRelationOid(layout->relid, layout->deflt ? ShareLock : ShareUpdateExclusiveLock);
	if (layout->deflt)
	{
		/*
		 * Readers that hold the default partition do not conflict with
		 * SHARE on the parent, so the default's lock can make us wait too,
		 * with writers queued behind our parent lock: both waits together
		 * stay within one lock timeout, and so do the moves (the table
		 * owner's triggers fire in them).
		 */
		wait_within_lock_timeout(started);
		LockRelationOid(layout->deflt->relid, AccessExclusiveLock);
		moves_within_lock_timeout(b, started);
	}
	foreach(lc, b->periods)
	{
		NewPeriod  *np = lfirst(lc);

		exec_sql(sql_attach_period(layout, np->relname, np->p), SPI_OK_UTILITY);
	}
}

/*
 * Step 1 of one period: built standalone and, unless the rows are to move
 * under the burst's locks (locks_first), filled from the default partition.
 */
/*
 * Step 1's move of a period's rows out of the default partition, under
 * weak locks.  It waits for a row another session holds locked (an
 * application's UPDATE, a transaction left idle) at most
 * matter_capacity.lock_timeout: the rows it already moved stay locked by
 * us meanwhile, and their writers would wait as long (review 4 F14).
 * limit_ms > 0 (the worker) also bounds the table owner's code the move
 * fires (triggers on the default partition, index expressions): the worker
 * samples between units of work, and one table's slow trigger must not
 * stop it (F10).  Either way the move is undone with an error naming the
 * cause, reported as the table's 'failed' row; no row leaves the default.
 */
static void
step1_move(TableLayout *layout, NewPeriod *np, int limit_ms)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			nest = NewGUCNestLevel();
	char		ms[32];

	/* what an error names, read before: no catalog access once it failed */
	char	   *deflt = get_rel_name(layout->deflt->relid);
	char	   *volatile triggers = NULL;

	snprintf(ms, sizeof(ms), "%d", mc_lock_timeout_ms);
	(void) set_config_option("lock_timeout", ms, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (limit_ms > 0)
		usercode_limit_begin(limit_ms);
	PG_TRY();
	{
		/* the move's own lock, taken first so the triggers can be read */
		LockRelationOid(layout->deflt->relid, RowExclusiveLock);
		if (limit_ms > 0)
			triggers = default_triggers(layout);
		exec_sql(sql_move_rows(layout, np->relname, np->p), SPI_OK_INSERT);
	}
	PG_CATCH();
	{
		bool		expired = limit_ms > 0 && usercode_limit_end();
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (!expired && edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			PG_RE_THROW();
		FlushErrorState();
		if (!expired)
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("matter_capacity: moving the rows of %s out of the default partition %s waited longer than matter_capacity.lock_timeout (%d ms) for a row (or the partition) another session holds locked",
							np->relname, deflt, mc_lock_timeout_ms),
					 errhint("A transaction holds rows of the default partition locked (pg_stat_activity shows one idle in transaction?). Nothing moved: the rows stay in the default partition and the next rollover tries again.")));
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("matter_capacity: moving the rows of %s out of the default partition %s took longer than the worker's limit of %d ms (matter_capacity.sample_interval)",
						np->relname, deflt, limit_ms),
				 errdetail("%s%s", triggers ? "Its triggers fire for each row moved: " : "The table owner's code the move runs (index expressions, constraints) or the number of rows made it slow.",
						   triggers ? triggers : ""),
				 errhint("Nothing moved; the worker samples between steps and does not wait for the table's code. CALL capacity_rollover_proc(%s), which has no such limit, or make that code fast.",
						 quote_literal_cstr(layout->qualname))));
	}
	PG_END_TRY();
	if (limit_ms > 0)
		(void) usercode_limit_end();
	np->moved += SPI_processed;
	AtEOXact_GUC(true, nest);
}

static void
build_standalone(TableLayout *layout, Policy *pol, NewPeriod *np, bool locks_first,
				 int limit_ms)
{
	ListCell   *lc;

	foreach(lc, sql_build_period(layout, np->suffix, np->p, pol->hash_column, pol->hash_partitions))
		exec_sql(lfirst(lc), SPI_OK_UTILITY);
	np->moved = 0;
	if (np->default_rows > 0 && !locks_first)
		step1_move(layout, np, limit_ms);
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

/*
 * Is relid a partition whose DETACH ... CONCURRENTLY was interrupted?  Read
 * with a new snapshot: the loopback may have committed its first step since
 * this transaction's.
 */
static bool
detach_pending(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};

	catalog_execute("SELECT 1 FROM pg_catalog.pg_inherits i "
					"WHERE i.inhrelid OPERATOR(pg_catalog.=) $1 AND i.inhdetachpending",
					1, types, values, NULL, false);
	return SPI_processed > 0;
}

/* Is another partition of parent than part pending detach? */
static bool
other_detach_pending(Oid parent, Oid part)
{
	Oid			types[2] = {OIDOID, OIDOID};
	Datum		values[2] = {ObjectIdGetDatum(parent), ObjectIdGetDatum(part)};

	catalog_execute("SELECT 1 FROM pg_catalog.pg_inherits i "
					"WHERE i.inhparent OPERATOR(pg_catalog.=) $1 AND i.inhrelid OPERATOR(pg_catalog.<>) $2 "
					"AND i.inhdetachpending",
					2, types, values, NULL, false);
	return SPI_processed > 0;
}

/*
 * Does the policy in force (read now, not when the run was planned) still
 * drop retired periods?  A detach through the loopback may wait minutes for
 * readers, and a drop recorded by a run that never finished may be days
 * old: the DBA may have switched to retention_action 'detach' meanwhile
 * (a legal hold), and then nothing is dropped (review 4 F18).
 */
static bool
policy_still_drops(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};

	catalog_execute(psprintf("SELECT 1 FROM %s p WHERE p.table_name OPERATOR(pg_catalog.=) $1::pg_catalog.regclass "
							 "AND p.retention_action OPERATOR(pg_catalog.=) 'drop' AND p.retention IS NOT NULL",
							 capacity_object("capacity_policy")),
					1, types, values, NULL, true);
	return SPI_processed > 0;
}

#define DROP_CANCELLED_DETAIL \
	"the policy no longer drops retired periods (retention_action is not 'drop'): the drop an earlier run recorded is not carried out and the table is kept"

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
 * The locks a plain DETACH takes, in its order: ACCESS EXCLUSIVE on the
 * parent (waiting up to the lock timeout), then on the partition, its
 * leaves and the default partition without waiting.  DETACH itself waited
 * up to the timeout for each, and the application queued behind our
 * parent lock meanwhile: up to about two timeouts.  Once we hold the
 * parent, nobody reaching the partition through it can be in our way;
 * whoever else is (a session using the partition directly, an
 * autovacuum) makes this attempt fail at once, and run_bounded retries.
 */
static void
lock_for_detach(const char *parent_q, Oid part_relid)
{
	Oid			parent = get_partition_parent(part_relid, true);
	List	   *rels;
	ListCell   *lc;
	Oid			deflt;

	LockRelationOid(parent, AccessExclusiveLock);
	rels = find_all_inheritors(part_relid, NoLock, NULL);
	deflt = get_default_partition_oid(parent);
	if (OidIsValid(deflt) && deflt != part_relid)
		rels = lappend_oid(rels, deflt);
	foreach(lc, rels)
	{
		if (!ConditionalLockRelationOid(lfirst_oid(lc), AccessExclusiveLock))
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("matter_capacity: lock on %s of %s not available",
							qualified_name(lfirst_oid(lc)), parent_q)));
	}
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

	lock_for_detach(d->parent_q, d->part_relid);
	exec_sql(psprintf("ALTER TABLE %s DETACH PARTITION %s%s", d->parent_q, d->part_q,
					  detach_pending(d->part_relid) ? " FINALIZE" : ""),
			 SPI_OK_UTILITY);
	if (d->drop)
		drop_step(d);
	else
		forget_pending_drop(d->part_relid); /* kept: no earlier drop applies */
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
finish_pending_drops(ActionSink *sink, TableLayout *layout, Policy *pol, instr_time started)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(layout->relid)};
	List	   *oids = NIL;
	ListCell   *lc;
	uint64		i;
	int			done = 0;

	if (has_no_pages(capacity_relid("capacity_pending_drop")))
		return 0;
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
		if (!pol->retention_drop || pol->retention == NULL)
		{
			forget_pending_drop(part);
			emit(sink, layout, "drop_cancelled", relname, DROP_CANCELLED_DETAIL, started);
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

typedef struct DeferredArg
{
	ActionSink *sink;
	DeferredDetach *dd;
} DeferredArg;

static void
deferred_one(void *arg)
{
	ActionSink *sink = ((DeferredArg *) arg)->sink;
	DeferredDetach *dd = ((DeferredArg *) arg)->dd;
	const char *action = dd->drop ? "dropped" : "detached";
	char	   *error = NULL;
	LoopbackFailure why = LOOPBACK_OK;
	const char *fallback;
	instr_time	started;
	TableLayout table_only = {0};
	DetachStep	d = {dd->parent_q, dd->part_q, dd->drop, dd->part_relid};

	INSTR_TIME_SET_CURRENT(started);
	sink->reported_ms = 0;
	table_only.relid = dd->relid;
	table_only.qualname = dd->parent_q;

	/*
	 * PostgreSQL refuses DETACH ... CONCURRENTLY while the table has a
	 * default partition (one was attached since the plan, or kept for its
	 * rows): the bounded plain DETACH, and say why.
	 */
	if (OidIsValid(get_default_partition_oid(dd->relid)))
		fallback = "plain DETACH: the table has a default partition, which DETACH CONCURRENTLY refuses";
	else if (detach_pending(dd->part_relid))
	{
		/*
		 * An interrupted DETACH CONCURRENTLY: FINALIZE waits for every
		 * snapshot older than its own, and this session's (a procedure's
		 * portal snapshot, the worker's) is one, so through the loopback
		 * each would wait for the other.  Here, under the lock timeout, it
		 * waits for nobody of ours (detach_step).
		 */
		fallback = "DETACH ... FINALIZE of an interrupted DETACH CONCURRENTLY";
	}
	else if (other_detach_pending(dd->relid, dd->part_relid))
	{
		/* PostgreSQL allows one pending detach per table: that one first */
		emit(sink, &table_only, "skipped_locked", dd->part_name,
			 "retention: another partition's DETACH CONCURRENTLY is pending; the next rollover finishes it first",
			 started);
		return;
	}
	else if (detach_concurrently(dd->relid, dd->part_relid, dd->parent_q, dd->part_q, &error, &why))
	{
		/* detached; the drop is ours, bounded, and recorded if it fails */
		if (dd->drop && !policy_still_drops(dd->relid))
		{
			forget_pending_drop(dd->part_relid);
			emit(sink, &table_only, "drop_cancelled", dd->part_name,
				 psprintf("detached (DETACH CONCURRENTLY); %s", DROP_CANCELLED_DETAIL), started);
		}
		else if (!dd->drop || run_bounded(drop_step, &d, NULL))
			emit(sink, &table_only, action, dd->part_name,
				 psprintf("%s (DETACH CONCURRENTLY)", dd->detail), started);
		else
			emit(sink, &table_only, "skipped_locked", dd->part_name,
				 "detached; the drop is left to the next rollover (lock not available)", started);
		return;
	}
	else if (detach_pending(dd->part_relid))
	{
		/*
		 * It was cancelled while waiting for readers of the table
		 * (matter_capacity.loopback_statement_timeout): the partition is
		 * already out of new queries' sight, and a plain DETACH would be
		 * refused; the next rollover finishes it with FINALIZE.
		 */
		emit(sink, &table_only, "skipped_locked", dd->part_name,
			 psprintf("DETACH CONCURRENTLY is pending: %s; the next rollover finishes it (DETACH ... FINALIZE)",
					  error ? error : "it did not finish"), started);
		return;
	}
	else
	{
		/* the hint says what failed: the connection, or the statement */
		ereport(WARNING,
				(errmsg("matter_capacity: DETACH CONCURRENTLY of %s failed: %s",
						dd->part_q, error ? error : "unknown error"),
				 why == LOOPBACK_NO_CONNECTION ?
				 errhint("Set matter_capacity.loopback_conninfo so this server accepts its own connection; plain DETACH under matter_capacity.lock_timeout is used meanwhile.") :
				 errhint("The loopback connection worked; the statement itself failed. Plain DETACH under matter_capacity.lock_timeout is used instead.")));
		fallback = why == LOOPBACK_NO_CONNECTION ? "plain DETACH: loopback unavailable" :
			"plain DETACH: DETACH CONCURRENTLY failed";
	}
	if (d.drop && !policy_still_drops(dd->relid))
	{
		d.drop = false;			/* detach_step forgets the recorded drop */
		action = "drop_cancelled";
		fallback = psprintf("%s; %s", fallback, DROP_CANCELLED_DETAIL);
	}
	if (run_bounded(detach_step, &d, NULL))
		emit(sink, &table_only, action, dd->part_name,
			 psprintf("%s (%s)", dd->detail, fallback), started);
	else
		emit(sink, &table_only, "skipped_locked", dd->part_name,
			 "retention: lock not available", started);
}

/*
 * Procedure mode, after a commit (so this backend holds no lock on the
 * parent): DETACH ... CONCURRENTLY through the loopback connection, which
 * never makes the application wait.  If the loopback cannot be used, fall
 * back to the bounded plain DETACH and say why.  Each is guarded: a failure
 * is a 'failed' row and the others go on.  Each ends with commit(): a
 * plain DETACH's ACCESS EXCLUSIVE locks are released before the next
 * DETACH goes through the loopback, which would wait for them for ever
 * (detach_concurrently refuses to, review 4 F13).
 */
void
run_deferred_detaches(ActionSink *sink, CommitStep commit)
{
	ListCell   *lc;

	foreach(lc, sink->deferred)
	{
		DeferredArg a = {sink, lfirst(lc)};

		(void) run_reported(sink, a.dd->relid, a.dd->parent_q, a.dd->part_name, deferred_one, &a);
		commit();
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

/* The comment capacity_empty_default (60_convert.sql) puts on its bound constraint. */
#define DEFAULT_BOUND_COMMENT "matter_capacity: capacity_empty_default's bound, removed once the default partition is the historical partition"

/* Argument of drop_bound_step. */
typedef struct LeftoverBound
{
	TableLayout *layout;
	char	   *conname;
} LeftoverBound;

static void
drop_bound_step(void *arg)
{
	LeftoverBound *lb = arg;

	exec_sql(psprintf("ALTER TABLE %s DROP CONSTRAINT IF EXISTS %s", qualified_name(lb->layout->deflt->relid),
					  quote_identifier(lb->conname)), SPI_OK_UTILITY);
}

/* State of one table's rollover, shared by its guarded phases. */
typedef struct Rollover
{
	Policy	   *pol;
	ActionSink *sink;
	int			step_limit;
	instr_time	started;
	TableLayout *layout;		/* NULL until read */
	Period		cur;
	int64		cutoff;
	List	   *expired;		/* PartInfo * retention retires */
	int			steps;			/* units of work attempted */
	int			done;			/* units of work completed */
	int64		kept_rows;
	int64		kept_old;		/* of them, older than the retention cutoff */
	bool		locks_first;	/* rows move in the burst, under its locks */
	Oid			save_userid;
	int			save_sec;
} Rollover;

static void retire_expired(Rollover *r);
static bool bounded_yielding(Rollover *r, BoundedStep step, void *arg, int *attempts);

/*
 * The bound constraint capacity_empty_default() adds to the default
 * partition before it becomes the historical partition refuses every row
 * the default partition should take before the last partition's end.  A
 * call cancelled, killed or unable to undo it (its lock not had) leaves it
 * behind; every form of the rollover removes it, under the lock timeout,
 * while no capacity_empty_default holds the table (its claim,
 * capacity_convert_claim's advisory lock, is free), and reports it.
 */
static void
drop_leftover_bound(Rollover *r)
{
	TableLayout *layout = r->layout;
	LeftoverBound lb = {layout, partition_relname(layout->relname, "default_bound")};
	bool		claimed;
	bool		isnull;
	char	   *claim;
	Oid			conoid;
	char	   *comment;

	if (layout->deflt == NULL ||
		!OidIsValid(conoid = get_relation_constraint_oid(layout->deflt->relid, lb.conname, true)))
		return;
	/* ours by its comment: a constraint of the DBA's of that name stays */
	comment = GetComment(conoid, ConstraintRelationId, 0);
	if (comment == NULL || strcmp(comment, DEFAULT_BOUND_COMMENT) != 0)
		return;
	/* to the end of the transaction: no call can claim the table meanwhile */
	claim = psprintf("SELECT pg_catalog.pg_try_advisory_xact_lock(1835230000, %d)", (int32) layout->relid);
	exec_sql(claim, SPI_OK_SELECT);
	claimed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (!claimed)
		return;					/* a call is under way: the constraint is its */
	if (bounded_yielding(r, drop_bound_step, &lb, NULL))
		emit(r->sink, layout, "dropped_bound", get_rel_name(layout->deflt->relid),
			 psprintf("constraint %s, left by an interrupted capacity_empty_default: it refused rows of the default partition",
					  quote_identifier(lb.conname)), r->started);
}

/* DDL runs as the table's owner, so new partitions belong to it. */
static void
become_owner(Rollover *r)
{
	SetUserIdAndSecContext(r->layout->owner,
						   r->save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
}

static void
become_caller(Rollover *r)
{
	SetUserIdAndSecContext(r->save_userid, r->save_sec);
}

/*
 * run_bounded, and after a lock timeout while an autovacuum worker
 * held the table or one of its partitions: have that worker give way as
 * the conversion does (locks.c's autovacuum_yield over
 * capacity_autovacuum_yield: cancelled when not preventing wraparound and
 * the caller may signal it, else waited for, queueing no lock), and try
 * again at once.  PostgreSQL cancels
 * an autovacuum that blocks a lock request only after deadlock_timeout,
 * longer than our lock timeout, so without this a vacuum of a big default
 * partition made every rollover of the table skip.  The yield runs as the
 * caller (the table's owner usually may not signal it).
 */
typedef struct RolloverYield
{
	Rollover   *r;
	AutovacuumYield y;
} RolloverYield;

static bool
rollover_yield(void *arg)
{
	RolloverYield *ry = arg;
	Oid			userid;
	int			sec;
	bool		yielded;

	GetUserIdAndSecContext(&userid, &sec);
	become_caller(ry->r);
	yielded = autovacuum_yield(&ry->y);
	SetUserIdAndSecContext(userid, sec);
	return yielded;
}

static bool
bounded_yielding(Rollover *r, BoundedStep step, void *arg, int *attempts)
{
	RolloverYield ry;
	Datum		rel = ObjectIdGetDatum(r->pol->relid);

	ry.r = r;
	ry.y.rels = PointerGetDatum(construct_array(&rel, 1, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT));
	ry.y.what = CStringGetTextDatum(psprintf("rollover of %s", qualified_name(r->pol->relid)));
	return run_bounded_yielding(step, arg, rollover_yield, &ry, attempts);
}

/*
 * The busy guard: "this table is being rolled over", held to the end of
 * the transaction.  A lock on an object tag (database, class = our
 * capacity_policy table, object = the managed table): no SQL function can
 * take a lock in that key space, so unlike an advisory lock no other role
 * can hold it to stop the rollover; as a transaction lock it goes with the
 * transaction's end, whatever ended it (commit, error, cancel).
 */
static bool
try_busy_guard(Oid relid)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, capacity_relid("capacity_policy"), relid, 0);
	return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL;
}

/*
 * Columns of a policy follow RENAME COLUMN: the time column is the table's
 * partition key, the hash column the key of its hash-partitioned periods.
 * A stale stored name is replaced (and the policy row corrected).
 */
static void
resolve_columns(Rollover *r)
{
	Policy	   *pol = r->pol;
	bool		changed = false;
	TableLayout *layout;

	if (get_attnum(pol->relid, pol->time_column) == InvalidAttrNumber)
	{
		char	   *key = partition_key_column(pol->relid);

		if (key)
		{
			/* a policy read from the catalog lives in the caller's long-lived context */
			pol->time_column = MemoryContextStrdup(GetMemoryChunkContext(pol), key);
			changed = true;
		}
	}
	layout = read_table_layout(pol->relid, pol->time_column);
	if (pol->hash_column && get_attnum(pol->relid, pol->hash_column) == InvalidAttrNumber)
	{
		char	   *key = hash_key_column(layout);

		if (key == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("matter_capacity: hash column %s of table %s does not exist",
							quote_identifier(pol->hash_column), layout->qualname),
					 errhint("Name the column again with capacity_manage(%s, ..., hash_column => ...).",
							 quote_literal_cstr(layout->qualname))));
		pol->hash_column = MemoryContextStrdup(GetMemoryChunkContext(pol), key);
		changed = true;
	}
	if (changed && !r->sink->dry_run)
	{
		Oid			types[3] = {OIDOID, NAMEOID, NAMEOID};
		Datum		values[3];
		char		nulls[3] = {' ', ' ', pol->hash_column ? ' ' : 'n'};

		values[0] = ObjectIdGetDatum(pol->relid);
		values[1] = DirectFunctionCall1(namein, CStringGetDatum(pol->time_column));
		values[2] = pol->hash_column ? DirectFunctionCall1(namein, CStringGetDatum(pol->hash_column)) : (Datum) 0;
		catalog_execute(psprintf("UPDATE %s SET time_column = $2, hash_column = $3, updated_at = pg_catalog.now() "
								 "WHERE table_name OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
								 capacity_object("capacity_policy")),
						3, types, values, nulls, false);
	}
	r->layout = layout;			/* only once the table is readable as a policy */
}

/* Did this policy's retention detach a partition of this name? */
static bool
detached_by_retention(Oid relid, const char *name)
{
	Oid			types[3] = {OIDOID, TEXTOID, TEXTOID};
	Datum		values[3] = {ObjectIdGetDatum(relid), CStringGetTextDatum(name),
	CStringGetTextDatum(qualified_name(relid))};

	/*
	 * By the table's OID or its name: pg_dump keeps the history rows, with
	 * the OIDs of the dumped cluster, and a restored table has another one
	 * (its own archives were then taken for strangers' tables, review 4a F6).
	 */
	catalog_execute(psprintf("SELECT 1 FROM %s WHERE (table_oid OPERATOR(pg_catalog.=) $1 "
							 "OR table_name OPERATOR(pg_catalog.=) $3) "
							 "AND action OPERATOR(pg_catalog.=) 'detached' "
							 "AND partition_name OPERATOR(pg_catalog.=) $2 LIMIT 1",
							 capacity_object("capacity_rollover_history")),
					3, types, values, NULL, true);
	return SPI_processed > 0;
}

/*
 * A leftover this policy owns: a partition its retention detached (or a
 * hash leaf of one), still there because retention_action is 'detach'.
 */
static bool
is_own_leftover(TableLayout *layout, Oid holder, char kind)
{
	if (kind == 'T' || !OidIsValid(holder))
		return false;
	if (get_rel_relispartition(holder))
	{
		Oid			parent = get_partition_parent(holder, true);

		if (!OidIsValid(parent) || get_rel_relispartition(parent))
			return false;
		holder = parent;
	}
	return detached_by_retention(layout->relid, get_rel_name(holder));
}

/* The first name of a period (or of its leaves) already held, or NULL. */
static const char *
taken_name(TableLayout *layout, Policy *pol, const char *suffix, Oid *holder, char *kind)
{
	char	   *name = partition_relname(layout->relname, suffix);
	int			r;

	*holder = name_holder(layout->nspid, name, kind);
	if (OidIsValid(*holder))
		return name;
	for (r = 0; pol->hash_column && r < pol->hash_partitions; r++)
	{
		name = partition_relname(layout->relname,
								 psprintf("%s_%s", suffix, hash_leaf_suffix(r, pol->hash_partitions)));
		*holder = name_holder(layout->nspid, name, kind);
		if (OidIsValid(*holder))
			return name;
	}
	return NULL;
}

#define MAX_NAME_VERSIONS 9

/*
 * Name a new period before anything is built.  Its own name when free;
 * when a partition this policy's retention detached still holds it (a late
 * row for a detached period), the next free version "<name>_v2" ...; when
 * any other relation or type holds a name, nothing is built for the period:
 * it is reported failed with a hint naming the holder, and its rows wait in
 * the default partition.  Returns false then.
 */
static bool
name_planned(List *named, const char *relname)
{
	ListCell   *lc;

	foreach(lc, named)
	{
		if (strcmp(((NewPeriod *) lfirst(lc))->relname, relname) == 0)
			return true;
	}
	return false;
}

static bool
choose_names(Rollover *r, NewPeriod *np, List *named)
{
	TableLayout *layout = r->layout;
	Policy	   *pol = r->pol;
	char	   *base = period_suffix(np->p.from, pol->gran);
	int			v;

	for (v = 1; v <= MAX_NAME_VERSIONS; v++)
	{
		char	   *suffix = (v == 1) ? base : psprintf("%s_v%d", base, v);
		Oid			holder;
		char		kind;
		const char *name = taken_name(layout, pol, suffix, &holder, &kind);
		char	   *holder_q;

		if (name == NULL &&
			name_planned(named, partition_relname(layout->relname, suffix)))
			continue;			/* two free spans of one grid period */
		if (name == NULL)
		{
			np->suffix = suffix;
			np->relname = partition_relname(layout->relname, suffix);
			return true;
		}
		if (is_own_leftover(layout, holder, kind))
			continue;
		holder_q = kind == 'T' ? format_type_be_qualified(holder) : qualified_name(holder);
		report_failure(r->sink, layout->relid, layout->qualname, np->relname,
					   ERRCODE_DUPLICATE_TABLE,
					   psprintf("period [%s, %s): %s %s already holds the name %s and is not a partition of %s",
								utc_label(np->p.from), utc_label(np->p.to),
								kind == 'T' ? "type" : "relation", holder_q,
								quote_identifier(name), layout->qualname),
					   NULL,
					   psprintf("Rename or drop %s (it is not managed by matter_capacity); rows of this period wait in the default partition until then.",
								holder_q));
		return false;
	}
	report_failure(r->sink, layout->relid, layout->qualname, np->relname,
				   ERRCODE_DUPLICATE_TABLE,
				   psprintf("period [%s, %s): %d earlier versions of it, detached by retention, hold its names",
							utc_label(np->p.from), utc_label(np->p.to), MAX_NAME_VERSIONS),
				   NULL, "Drop or archive the detached tables of this period.");
	return false;
}

/*
 * For capacity_manage: refuse a policy whose default partition or next
 * periods (at as_of) would need a name another relation or type holds.
 */
void
check_policy_names(Policy *pol, int64 as_of)
{
	TableLayout *layout = read_table_layout(pol->relid, pol->time_column);
	Period		cur = period_containing(as_of, pol->gran);
	int64		t;
	int64		horizon_end = period_advance(cur.from, pol->gran, pol->premake + 1);
	Oid			holder;
	char		kind;
	const char *name;
	int			checked = 0;

	if (pol->default_partition && layout->deflt == NULL)
	{
		name = partition_relname(layout->relname, "default");
		holder = name_holder(layout->nspid, name, &kind);
		if (OidIsValid(holder))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_TABLE),
					 errmsg("matter_capacity: %s %s already holds the name %s of the default partition of table %s",
							kind == 'T' ? "type" : "relation",
							kind == 'T' ? format_type_be_qualified(holder) : qualified_name(holder),
							quote_identifier(name), layout->qualname),
					 errhint("Rename or drop it, or attach a default partition of your own, then call capacity_manage() again.")));
	}
	check_time_in_range(horizon_end, "now plus premake periods");
	/* the first periods the next rollover makes; a bounded number of names */
	for (t = cur.from; t < horizon_end && checked < 10000; t = period_advance(t, pol->gran, 1))
	{
		Period		grid = {t, period_advance(t, pol->gran, 1)};
		ListCell   *lc;

		foreach(lc, free_spans(layout, grid))
		{
			Period		p = *(Period *) lfirst(lc);

			if (p.to <= as_of)
				continue;
			checked += 1 + (pol->hash_column ? pol->hash_partitions : 0);
			name = taken_name(layout, pol, period_suffix(p.from, pol->gran), &holder, &kind);
			if (name && !is_own_leftover(layout, holder, kind))
				ereport(ERROR,
						(errcode(ERRCODE_DUPLICATE_TABLE),
						 errmsg("matter_capacity: %s %s already holds the name %s of the period [%s, %s) of table %s",
								kind == 'T' ? "type" : "relation",
								kind == 'T' ? format_type_be_qualified(holder) : qualified_name(holder),
								quote_identifier(name), utc_label(p.from), utc_label(p.to), layout->qualname),
						 errhint("Rename or drop it, then call capacity_manage() again.")));
		}
	}
}

/* Was this period given up earlier in this call (per-step mode)? */
static bool
given_up(ActionSink *sink, Oid relid, int64 start)
{
	ListCell   *lc;

	foreach(lc, sink->given_up)
	{
		GivenUp    *g = lfirst(lc);

		if (g->relid == relid && g->start == start)
			return true;
	}
	return false;
}

static void
give_up(ActionSink *sink, Oid relid, int64 start)
{
	MemoryContext old;
	GivenUp    *g;

	if (!sink->per_step)
		return;
	old = MemoryContextSwitchTo(sink->defer_cxt);
	g = palloc(sizeof(GivenUp));
	g->relid = relid;
	g->start = start;
	sink->given_up = lappend(sink->given_up, g);
	MemoryContextSwitchTo(old);
}

/*
 * Locks one new period takes (the period, its leaves, their indexes and
 * TOAST tables, row types), estimated from the parent: what the lock
 * budget of a one-transaction rollover counts.
 */
int
rollover_locks_for_period(int hash_leaves, int nindexes)
{
	/* measured on PostgreSQL 15: about 5 + 2 per index for each table */
	return (1 + hash_leaves) * (6 + 2 * nindexes) + 4;
}

static int
locks_for_period(Policy *pol, int nindexes)
{
	return rollover_locks_for_period(pol->hash_column ? pol->hash_partitions : 0, nindexes);
}

static int
locks_per_period(TableLayout *layout, Policy *pol)
{
	Relation	rel = table_open(layout->relid, AccessShareLock);
	int			nindexes = list_length(RelationGetIndexList(rel));

	table_close(rel, NoLock);
	return locks_for_period(pol, nindexes);
}

/*
 * Locks the current period and the premake periods ahead of a table take
 * at most: what one_round keeps of the lock budget for each table not yet
 * planned.  Counted from the catalog, without locking the table (a table
 * with nothing to do is never locked).
 */
static int64
forward_locks(Policy *pol)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(pol->relid)};
	bool		isnull;
	int64		nindexes;

	catalog_execute("SELECT pg_catalog.count(*) FROM pg_catalog.pg_index i "
					"WHERE i.indrelid OPERATOR(pg_catalog.=) $1",
					1, types, values, NULL, true);
	nindexes = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	return (int64) locks_for_period(pol, (int) nindexes) * (pol->premake + 1);
}

/*
 * Locks a one-transaction rollover may take for new periods: half the
 * shared lock table (max_locks_per_transaction x (max_connections +
 * workers + prepared transactions)), so a big premake never ends in "out of
 * shared memory" and other sessions keep room for theirs.
 */
int64
rollover_lock_budget(void)
{
	return (int64) max_locks_per_xact * (MaxBackends + max_prepared_xacts) / 2;
}

/*
 * Why a burst failed, for the skipped_locked detail: why (its moves ran
 * out of time) or NULL (its locks were not had), after a deadlock it gave
 * way in (deadlocked), or after the retry with its locks taken first.
 */
static char *
gave_way(Rollover *r, char *why, bool deadlocked)
{
	char	   *first = psprintf("a transaction that holds %s waited for rows of its default partition this rescue was moving; "
								 "the rescue gave way to it (deadlock)", r->layout->qualname);

	if (deadlocked)
		return first;
	if (!r->locks_first)
		return why;
	return psprintf("%s; taking its locks first and moving the rows under them: %s", first,
					why ? why : psprintf("locks not available within %d ms", mc_lock_timeout_ms));
}

/*
 * Steps 1 and 2 in a subtransaction of their own, undone whole when the
 * locks cannot be had (false) or on an error (re-thrown after the undo).
 */
typedef struct BuildAndAttach
{
	Rollover   *r;
	List	   *periods;
	int		   *attempts;
	char	   *why;			/* the burst's moves ran out of time */
	bool		deadlocked;		/* the burst gave way in a deadlock */
} BuildAndAttach;

static bool
build_and_attach_step(void *arg)
{
	BuildAndAttach *ba = arg;
	AttachBurst burst = {ba->r->layout, ba->r->pol, ba->periods,
	tenant_move_in_progress(ba->r->layout->relid)};
	ListCell   *lc;
	volatile bool attached = false;

	burst.referenced = default_referenced(ba->r->layout) != NULL;
	burst.locks_first = ba->r->locks_first;

	/* rows of a tenant already cut over may move (tenant_move.c's guard) */
	tenant_move_allow_rescue(true);
	PG_TRY();
	{
		foreach(lc, ba->periods)
			build_standalone(ba->r->layout, ba->r->pol, lfirst(lc), ba->r->locks_first,
							 ba->r->sink->step1_limit_ms);
		attached = bounded_yielding(ba->r, attach_burst, &burst, ba->attempts);
		ba->deadlocked = !attached && run_bounded_deadlocked();
		burst.why = gave_way(ba->r, burst.why, ba->deadlocked);
	}
	PG_FINALLY();
	{
		tenant_move_allow_rescue(false);
	}
	PG_END_TRY();
	ba->why = burst.why;
	return attached;
}

/*
 * Steps 1 and 2 of the periods; when the burst gave way in a deadlock (an
 * application transaction updating a row step 1 moved waits for us while
 * holding the parent), once more at once with the locks taken first
 * (locks_first): nothing of ours is then waited for while we wait, and
 * the rows move under the locks, within what is left of the lock timeout.
 */
static bool
build_and_attach(Rollover *r, List *periods, int *attempts, char **why)
{
	BuildAndAttach ba = {r, periods, attempts, NULL, false};
	bool		attached;
	ErrorData  *edata = run_guarded(build_and_attach_step, &ba, &attached);

	if (edata)
		ReThrowError(edata);
	if (!attached && ba.deadlocked && !r->locks_first)
	{
		r->locks_first = true;
		ba.why = NULL;
		edata = run_guarded(build_and_attach_step, &ba, &attached);
		if (edata)
		{
			r->locks_first = false;
			ReThrowError(edata);
		}
	}
	*why = ba.why;
	return attached;
}

/* The detail of a period whose burst could not be done. */
static char *
burst_skipped(Rollover *r, int attempts, const char *why)
{
	if (why)
		return psprintf("%s, after %d %s; rows of the period stay in the default partition",
						why, attempts, attempts == 1 ? "attempt" : "attempts");
	return psprintf("locks on %s not available after %d attempts of %d ms",
					r->layout->qualname, attempts, mc_lock_timeout_ms);
}

/*
 * First phase, guarded: the policy's columns, drops an earlier run left,
 * and the default partition (without it, out-of-range rows fail).
 */
static void
prepare_table(void *arg)
{
	Rollover   *r = arg;
	Policy	   *pol = r->pol;
	ActionSink *sink = r->sink;
	TableLayout *layout;
	LockRequest req = {1, {pol->relid}, {AccessShareLock}};
	int			attempts = 0;

	/*
	 * Even reading the table waits for a session that holds it exclusively
	 * (an ALTER TABLE of a migration): bounded like every other lock.
	 */
	if (!run_bounded(lock_relation_step, &req, &attempts))
	{
		TableLayout table_only = {0};

		table_only.relid = pol->relid;
		table_only.qualname = qualified_name(pol->relid);
		emit(sink, &table_only, "skipped_locked", NULL,
			 psprintf("the table itself is locked by another session: not available after %d attempts of %d ms",
					  attempts, mc_lock_timeout_ms),
			 r->started);
		return;					/* r->layout stays NULL: nothing more for it */
	}
	resolve_columns(r);
	layout = r->layout;
	become_owner(r);

	if (!sink->dry_run)
	{
		r->done += finish_pending_drops(sink, layout, pol, r->started);
		drop_leftover_bound(r);
	}

	if (pol->default_partition && layout->deflt == NULL)
	{
		char	   *name = partition_relname(layout->relname, "default");
		AttachBurst b = {layout, pol, NIL};
		Oid			holder;
		char		kind;

		holder = name_holder(layout->nspid, name, &kind);
		if (OidIsValid(holder))
		{
			char	   *holder_q = kind == 'T' ? format_type_be_qualified(holder) : qualified_name(holder);

			report_failure(sink, layout->relid, layout->qualname, name, ERRCODE_DUPLICATE_TABLE,
						   psprintf("default partition: %s %s already holds the name %s",
									kind == 'T' ? "type" : "relation", holder_q, quote_identifier(name)),
						   NULL,
						   psprintf("Rename or drop %s, or attach a default partition of your own (ALTER TABLE %s ATTACH PARTITION ... DEFAULT).",
									holder_q, layout->qualname));
		}
		else if (sink->dry_run)
			emit(sink, layout, "created", name, "default partition", r->started);
		else if (bounded_yielding(r, create_default_step, &b, NULL))
		{
			emit(sink, layout, "created", name, "default partition", r->started);
			r->done++;
			r->steps++;
		}
		else
			emit(sink, layout, "skipped_locked", name, "default partition: lock not available", r->started);
	}
	become_caller(r);
}

/*
 * The function form empties a large default partition a bounded number of
 * rows per call (matter_capacity.rescue_rows_per_call): periods, in the
 * order current_first gives, are taken while their rows fit (at least the
 * first); the others are left for the next call and reported as one
 * 'deferred' row saying how many rows of how many periods are left.  A
 * period's rows move with its ATTACH in one transaction, so they are
 * never out of sight of queries.  Returns the periods taken, by start.
 */
static List *
within_rescue_budget(Rollover *r, List *periods)
{
	List	   *taken = NIL;
	int64		rows = 0;
	int64		left_rows = 0;
	int			left_periods = 0;
	NewPeriod  *first_left = NULL;
	ListCell   *lc;

	foreach(lc, periods)
	{
		NewPeriod  *np = lfirst(lc);

		if (np->default_rows > 0 && rows > 0 &&
			rows + np->default_rows > mc_rescue_rows_per_call)
		{
			left_rows += np->default_rows;
			left_periods++;
			if (first_left == NULL || np->p.from < first_left->p.from)
				first_left = np;
			continue;
		}
		rows += np->default_rows;
		taken = lappend(taken, np);
	}
	if (first_left)
		emit(r->sink, r->layout, "deferred", get_rel_name(r->layout->deflt->relid),
			 psprintf(INT64_FORMAT " %s of %d %s (the first from %s) left in the default partition for the next call: "
					  "one call moves at most matter_capacity.rescue_rows_per_call (%d) rows; "
					  "CALL capacity_rollover_proc() commits period by period, and above "
					  "matter_capacity.rescue_backfill_rows (%d) rows empties it by the backfill",
					  left_rows, left_rows == 1 ? "row" : "rows", left_periods,
					  left_periods == 1 ? "period" : "periods", utc_label(first_left->p.from),
					  mc_rescue_rows_per_call, mc_rescue_backfill_rows),
			 r->started);
	list_sort(taken, cmp_new_periods);
	return taken;
}

/*
 * Periods whose rows in the default partition must stay there are not
 * made; the others (no rows waiting) are made as usual.
 *  - A table a tenant move replicates keeps its default-partition rows
 *    until the move is cut over or aborted: rescuing them deletes them from
 *    the default (replicated) and inserts them into a table not yet
 *    attached (not replicated), so the member would lose them.  Reported
 *    skipped_moving.
 *  - A default partition a foreign key references (default_referenced):
 *    the DELETE of the move would fire the key's ON DELETE action.
 *    Reported failed with what to do.
 */
static void
keep_waiting_rows(Rollover *r, List **periods)
{
	char	   *tenant = NULL;
	char	   *fk = NULL;
	bool		looked = false;
	List	   *kept = NIL;
	ListCell   *lc;

	foreach(lc, *periods)
	{
		NewPeriod  *np = lfirst(lc);

		if (np->default_rows == 0)
		{
			kept = lappend(kept, np);
			continue;
		}
		if (!looked)
		{
			tenant = tenant_move_in_progress(r->pol->relid);
			fk = tenant ? NULL : default_referenced(r->layout);
			looked = true;
		}
		if (tenant == NULL && fk == NULL)
			return;
		if (tenant)
			emit(r->sink, r->layout, "skipped_moving", np->relname,
				 psprintf("tenant move of %s in progress: rows stay in the default partition until it ends", tenant),
				 r->started);
		else
			report_failure(r->sink, r->layout->relid, r->layout->qualname, np->relname,
						   ERRCODE_FEATURE_NOT_SUPPORTED,
						   psprintf("period [%s, %s): " INT64_FORMAT " rows wait in the default partition %s, "
									"which foreign key %s references: moving them would fire its ON DELETE action "
									"on the rows that reference them",
									utc_label(np->p.from), utc_label(np->p.to), np->default_rows,
									get_rel_name(r->layout->deflt->relid), fk),
						   NULL,
						   "The rows stay in the default partition. Move them yourself (for example: drop the foreign key, "
						   "create and attach the period, move the rows, add the key again), "
						   "then run the rollover again.");
	}
	*periods = kept;
}

/*
 * One table in a round of rollover_one_transaction: its step 1 is done in
 * the round's first pass, its step 2 (finish_table) in the second.
 */
typedef struct TableRound
{
	Rollover   *r;				/* NULL: nothing left for step 2 */
	List	   *periods;		/* built standalone and filled, to attach */
	List	   *out;			/* its actions (Emitted *), in order */
	int			attempts;
	char	   *why;
} TableRound;

/*
 * A table whose step 2 failed in an earlier round of
 * rollover_one_transaction: its error, or the skipped_locked detail.
 */
typedef struct Refused
{
	Oid			relid;
	ErrorData  *edata;
	char	   *detail;
} Refused;

static Refused *
refused_in(ActionSink *sink, Oid relid)
{
	ListCell   *lc;

	foreach(lc, sink->refused)
	{
		if (((Refused *) lfirst(lc))->relid == relid)
			return lfirst(lc);
	}
	return NULL;
}

/* Rows that stay in the default partition, said once per table. */
static void
report_kept(Rollover *r)
{
	TableLayout *layout = r->layout;

	if (r->kept_rows > 0 && layout->deflt && (r->step_limit == 0 || r->steps < r->step_limit))
		emit(r->sink, layout, "kept_in_default", get_rel_name(layout->deflt->relid),
			 psprintf(INT64_FORMAT " rows outside the policy's range stay in the default partition%s",
					  r->kept_rows,
					  r->kept_old == 0 ? "" :
					  psprintf("; " INT64_FORMAT " of them older than the retention cutoff %s stay for good "
							   "(retention never moves or drops them) and every ATTACH of a new period scans them "
							   "under its lock: move or delete them (docs/partitioning.md, \"Rows older than retention\")",
							   r->kept_old, utc_label(r->cutoff))),
			 r->started);
}

/* The periods of one burst are attached: say so. */
static void
report_attached(Rollover *r, List *periods)
{
	ListCell   *lc;

	foreach(lc, periods)
	{
		NewPeriod  *np = lfirst(lc);

		r->done++;
		emit(r->sink, r->layout, "created", np->relname, period_detail(r->pol, np), r->started);
		record_engine_inserts(r->layout->relid, np->moved); /* not growth */
		if (np->moved > 0)
			emit(r->sink, r->layout, "moved_rows", np->relname,
				 r->locks_first ?
				 psprintf("%s, moved under the attach's locks (the rescue had given way to a transaction waiting for them)",
						  rows_from_default(np->moved)) :
				 rows_from_default(np->moved), r->started);
	}
}

/* Step 1 alone: every period built standalone and filled (bursts_last). */
static void
build_periods(Rollover *r, List *periods)
{
	ListCell   *lc;

	tenant_move_allow_rescue(true);
	PG_TRY();
	{
		foreach(lc, periods)
			build_standalone(r->layout, r->pol, lfirst(lc), false, r->sink->step1_limit_ms);
	}
	PG_FINALLY();
	{
		tenant_move_allow_rescue(false);
	}
	PG_END_TRY();
}

/*
 * Second phase, guarded: the plan of new periods (names checked first),
 * build and attach; an error undoes all of it and is reported as 'failed'.
 * In one transaction (bursts_last) only step 1 is done here: the periods
 * are queued for step 2, or, when step 2 failed in an earlier round,
 * reported as it failed and not built.
 */
/*
 * At most matter_capacity.max_past_periods_per_call past periods a call, for
 * rows of the default partition (periods are current and coming first,
 * then past ones newest first: current_first): a client writing stray old
 * dates would otherwise have one call make a period for every stray row's
 * period (600 stray rows made some 5,400 tables, review 4a F8).  The rest
 * stay in the default partition for the next call, said in a deferred row.
 */
static List *
within_past_cap(Rollover *r, List *periods)
{
	ActionSink *sink = r->sink;
	List	   *kept = NIL;
	ListCell   *lc;
	int			allowed;
	int			left = 0;
	int64		left_rows = 0;
	NewPeriod  *newest_left = NULL;

	if (sink->past_relid != r->pol->relid)
	{
		sink->past_relid = r->pol->relid;
		sink->past_made = 0;
	}
	allowed = Max(mc_max_past_periods_per_call - sink->past_made, 0);
	foreach(lc, periods)
	{
		NewPeriod  *np = lfirst(lc);

		if (np->p.to > r->cur.from || allowed-- > 0)
			kept = lappend(kept, np);
		else
		{
			if (newest_left == NULL)
				newest_left = np;
			left++;
			left_rows += np->default_rows;
		}
	}
	/* the procedure plans again at every step: said once, at the last */
	if (left > 0 && (r->step_limit == 0 || kept == NIL))
		emit(sink, r->layout, "deferred", newest_left->relname,
			 psprintf("%d more past %s (" INT64_FORMAT " %s of the default partition, the newest from %s) left for the next call: "
					  "one call makes at most matter_capacity.max_past_periods_per_call (%d) past periods",
					  left, left == 1 ? "period" : "periods", left_rows, left_rows == 1 ? "row" : "rows",
					  utc_label(newest_left->p.from), mc_max_past_periods_per_call),
			 r->started);
	return kept;
}

static void
plan_and_build(void *arg)
{
	Rollover   *r = arg;
	Policy	   *pol = r->pol;
	ActionSink *sink = r->sink;
	TableLayout *layout;
	int64		horizon_end;
	int64		lower;
	int64		t;
	List	   *buckets;
	List	   *periods = NIL;
	List	   *named = NIL;
	ListCell   *lc;

	/* afresh: what the first phase made (or undid) */
	layout = r->layout = read_table_layout(pol->relid, pol->time_column);
	become_owner(r);

	/* What is wanted: current period and premake ahead ... */
	r->cur = period_containing(sink->as_of, pol->gran);
	horizon_end = period_advance(r->cur.from, pol->gran, pol->premake + 1);
	check_time_in_range(horizon_end, "as_of plus premake periods");
	for (t = r->cur.from; t < horizon_end; t = period_advance(t, pol->gran, 1))
	{
		Period		grid = {t, period_advance(t, pol->gran, 1)};

		foreach(lc, free_spans(layout, grid))
		{
			Period		span = *(Period *) lfirst(lc);

			/* a span already past (before periods of an earlier grid) waits for rows */
			if (span.to > sink->as_of)
				add_new_period(&periods, layout, pol, span);
		}
	}

	/*
	 * ... and past periods the policy covers that have rows waiting: back to
	 * the retention cutoff, or, for a table kept forever, any period (a late
	 * row older than the first period gets its period too, so no row stays
	 * in the default partition for good and later attaches need not scan it).
	 */
	if (pol->retention)
	{
		r->cutoff = DatumGetTimestamp(DirectFunctionCall2(timestamp_mi_interval,
														  TimestampGetDatum(sink->as_of),
														  IntervalPGetDatum(pol->retention)));
		lower = period_floor(r->cutoff, pol->gran);
	}
	else
		lower = PG_INT64_MIN;
	buckets = read_default_buckets(layout, pol->gran);
	foreach(lc, buckets)
	{
		Bucket	   *b = lfirst(lc);
		bool		placed = false;

		if (!b->is_null && b->start >= lower && b->start < horizon_end &&
			period_time_supported(b->start))
		{
			Period		p = period_containing(b->start, pol->gran);
			List	   *spans = free_spans(layout, p);
			ListCell   *ls;

			/*
			 * Its rows lie in the free spans of the grid period; when there
			 * are several (periods of an earlier grid in between), only
			 * those holding rows are made.
			 */
			foreach(ls, spans)
			{
				Period		span = *(Period *) lfirst(ls);
				NewPeriod  *np = find_new_period(periods, span.from);

				if (np == NULL && list_length(spans) > 1)
				{
					exec_sql(sql_default_has_rows(layout, span), SPI_OK_SELECT);
					if (SPI_processed == 0)
						continue;
				}
				if (np == NULL)
					np = add_new_period(&periods, layout, pol, span);
				np->default_rows += b->rows;
				placed = true;
			}
		}
		if (!placed)
			r->kept_rows += b->rows;
		if (!placed && !b->is_null && b->start < lower)
			r->kept_old += b->rows;
	}
	periods = current_first(periods, r->cur.from);
	keep_waiting_rows(r, &periods);
	periods = within_past_cap(r, periods);

	/* Retention: whole periods older than the cutoff, never the current. */
	if (pol->retention)
	{
		foreach(lc, layout->parts)
		{
			PartInfo   *pi = lfirst(lc);

			/* a historical partition left by a conversion is never retired */
			if (!pi->from_unbounded && !pi->to_unbounded &&
				pi->to <= r->cutoff && pi->to <= r->cur.from)
				r->expired = lappend(r->expired, pi);
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
	 * With bursts_last, finish_table keeps this order after every table's
	 * step 1 (a DETACH here would hold the parent through them).
	 */
	if (r->step_limit == 0 && !sink->bursts_last)
	{
		retire_expired(r);
		r->expired = NIL;
		become_owner(r);
	}

	/* Names first: a period whose name is held elsewhere is not built. */
	foreach(lc, periods)
	{
		NewPeriod  *np = lfirst(lc);

		if (given_up(sink, layout->relid, np->p.from))
			continue;
		if (r->step_limit > 0 && list_length(named) >= r->step_limit - r->steps)
			break;
		if (choose_names(r, np, named))
			named = lappend(named, np);
		else
		{
			give_up(sink, layout->relid, np->p.from);
			r->kept_rows += np->default_rows;
		}
	}
	periods = named;
	foreach(lc, periods)
		sink->past_made += ((NewPeriod *) lfirst(lc))->p.to <= r->cur.from ? 1 : 0;

	/*
	 * One transaction can hold only so many locks: beyond the budget, the
	 * periods are left to the next call (and said so).  The current and
	 * coming periods of every table come before any table's past periods
	 * (review 4 F17: one table's backlog took the whole budget and a later
	 * table without a default partition got not even today's period): past
	 * periods get only the room the tables not yet planned do not need for
	 * theirs (locks_reserved, one_round).
	 */
	if (r->step_limit == 0 && periods != NIL)
	{
		int			per = locks_per_period(layout, pol);
		int64		room = rollover_lock_budget() - sink->locks_used;
		int			ahead = 0;
		int			fit;
		bool		for_others = false;

		foreach(lc, periods)
		{
			if (((NewPeriod *) lfirst(lc))->p.to > r->cur.from)
				ahead++;
		}
		fit = (int) Max(Min(room / per, (int64) ahead), 0);
		if (fit == ahead)
		{
			int64		past_room = room - (int64) per * ahead - sink->locks_reserved;
			int			past = (int) Max(Min(past_room / per, (int64) (list_length(periods) - ahead)), 0);

			for_others = past < list_length(periods) - ahead &&
				(room - (int64) per * ahead) / per > past;
			fit += past;
		}
		if (fit < list_length(periods))
		{
			NewPeriod  *first_left = list_nth(periods, fit);
			int			left = list_length(periods) - fit;

			periods = list_truncate(periods, fit);
			emit(sink, layout, "deferred", first_left->relname,
				 for_others ?
				 psprintf("%d more %s from %s left for the next call: the lock budget of one transaction (about " INT64_FORMAT " locks) goes first to the current and coming periods of every table (about " INT64_FORMAT " locks of it still kept for the tables after this one); run the rollover again or CALL capacity_rollover_proc(), which commits period by period",
						  left, left == 1 ? "period" : "periods", utc_label(first_left->p.from),
						  rollover_lock_budget(), sink->locks_reserved) :
				 psprintf("%d more %s from %s left for the next call: one transaction may take about " INT64_FORMAT " locks (max_locks_per_transaction = %d) and each period takes about %d; run the rollover again or CALL capacity_rollover_proc(), which commits period by period",
						  left, left == 1 ? "period" : "periods", utc_label(first_left->p.from),
						  rollover_lock_budget(), max_locks_per_xact, per),
				 r->started);
		}
		sink->locks_used += (int64) per * list_length(periods);
	}
	if (r->step_limit == 0 && periods != NIL)
		periods = within_rescue_budget(r, periods);
	r->steps += list_length(periods);

	if (sink->dry_run)
	{
		foreach(lc, periods)
		{
			NewPeriod  *np = lfirst(lc);

			emit(sink, layout, "created", np->relname, period_detail(pol, np), r->started);
			if (np->default_rows > 0)
				emit(sink, layout, "moved_rows", np->relname,
					 rows_from_default(np->default_rows),
					 r->started);
		}
	}
	else if (periods != NIL && sink->bursts_last)
	{
		Refused    *rf = refused_in(sink, layout->relid);

		if (rf && rf->edata)
			report_failure(sink, layout->relid, layout->qualname, NULL, rf->edata->sqlerrcode,
						   rf->edata->message, rf->edata->detail,
						   rf->edata->hint ? rf->edata->hint : hint_for(rf->edata->sqlerrcode));
		foreach(lc, rf && !rf->edata ? periods : NIL)
			emit(sink, layout, "skipped_locked", ((NewPeriod *) lfirst(lc))->relname,
				 rf->detail, r->started);
		if (rf == NULL)
		{
			build_periods(r, periods);
			((TableRound *) sink->round_table)->periods = periods;
		}
	}
	else if (periods != NIL)
	{
		int			attempts = 0;
		char	   *why = NULL;
		bool		attached = build_and_attach(r, periods, &attempts, &why);

		if (attached)
			report_attached(r, periods);
		foreach(lc, attached ? NIL : periods)
			emit(sink, layout, "skipped_locked", ((NewPeriod *) lfirst(lc))->relname,
				 burst_skipped(r, attempts, why), r->started);
		r->locks_first = false;
	}
	become_caller(r);
}

/* Argument of retire_one. */
typedef struct Retire
{
	Rollover   *r;
	PartInfo   *pi;
} Retire;

/*
 * Is retention of this table left to DETACH ... CONCURRENTLY after the
 * commit (procedure and worker)?  Only when the table really has no default
 * partition: PostgreSQL refuses the concurrent form while one exists, and a
 * policy without one may still keep it for rows nothing else covers.
 */
static bool
detach_deferred(Rollover *r)
{
	return r->sink->defer_detach && !r->sink->dry_run && !r->pol->default_partition &&
		r->layout != NULL && r->layout->deflt == NULL;
}

/* Retention of one period, guarded on its own. */
static void
retire_one(void *arg)
{
	Retire	   *a = arg;
	Rollover   *r = a->r;
	ActionSink *sink = r->sink;
	TableLayout *layout = r->layout;
	PartInfo   *pi = a->pi;
	DetachStep	d = {layout->qualname, qualified_name(pi->relid), r->pol->retention_drop, pi->relid};
	char	   *relname = get_rel_name(pi->relid);
	char	   *detail = psprintf("ended %s, before the retention cutoff %s",
								  utc_label(pi->to), utc_label(r->cutoff));

	become_owner(r);
	if (detach_deferred(r))
		defer_detach(sink, layout, &d, relname, detail);
	else if (sink->dry_run)
		emit(sink, layout, d.drop ? "dropped" : "detached", relname, detail, r->started);
	else if (bounded_yielding(r, detach_step, &d, NULL))
	{
		emit(sink, layout, d.drop ? "dropped" : "detached", relname, detail, r->started);
		r->done++;
	}
	else
		emit(sink, layout, "skipped_locked", relname,
			 psprintf("retention: lock on %s not available", layout->qualname), r->started);
	become_caller(r);
}

/* Retention of each expired period, each guarded on its own. */
static void
retire_expired(Rollover *r)
{
	ActionSink *sink = r->sink;
	Policy	   *pol = r->pol;
	char	   *qualname = qualified_name(pol->relid);
	ListCell   *lc;

	foreach(lc, r->expired)
	{
		Retire		a = {r, lfirst(lc)};

		if (r->step_limit > 0 && r->steps >= r->step_limit)
			break;
		if (sink->stop_table)
			break;
		if (!detach_deferred(r))
			r->steps++;
		(void) run_reported(sink, pol->relid, qualname, get_rel_name(a.pi->relid), retire_one, &a);
	}
}

/*
 * Is there nothing to do for this table at as_of?  Answered without the
 * table's layout: in a fresh session (a cron job, the worker's first
 * round) building the partition descriptor reads and parses the bound of
 * every partition, most of a rollover with nothing to do (docs/
 * benchmarks.md).  True only when every period from the current one to
 * premake ahead is an attached partition found under the name the rollover
 * gives it with exactly the period's bounds, the default partition is as
 * the policy wants it (and has no pages), no retention and no pending drop
 * is to be looked at, and the policy's columns exist.  Anything else —
 * a seam after a change of granularity, a versioned name, a renamed
 * partition — says false, and the full path decides.
 */
static bool
nothing_to_do(Policy *pol, ActionSink *sink)
{
	Oid			relid = pol->relid;
	Oid			nspid = get_rel_namespace(relid);
	char	   *relname = get_rel_name(relid);
	Oid			deflt;
	Period		cur;
	int64		horizon_end;
	int64		t;
	bool		result = false;

	if (pol->retention != NULL || relname == NULL ||
		get_attnum(relid, pol->time_column) == InvalidAttrNumber ||
		(pol->hash_column && get_attnum(relid, pol->hash_column) == InvalidAttrNumber))
		return false;
	/* the table is not read while another session holds it exclusively */
	if (!ConditionalLockRelationOid(relid, AccessShareLock))
		return false;
	if (!sink->dry_run && !has_no_pages(capacity_relid("capacity_pending_drop")))
		goto done;
	deflt = get_default_partition_oid(relid);
	if (OidIsValid(deflt) != pol->default_partition)
		goto done;
	/* (a rollover attaching a period holds it: that one is for the full path) */
	if (OidIsValid(deflt) &&
		(!ConditionalLockRelationOid(deflt, AccessShareLock) || !has_no_pages(deflt)))
		goto done;
	/* a bound constraint left by capacity_empty_default: prepare_table removes it */
	if (OidIsValid(deflt) &&
		OidIsValid(get_relation_constraint_oid(deflt, partition_relname(relname, "default_bound"), true)))
		goto done;
	cur = period_containing(sink->as_of, pol->gran);
	horizon_end = period_advance(cur.from, pol->gran, pol->premake + 1);
	for (t = cur.from; t < horizon_end; t = period_advance(t, pol->gran, 1))
	{
		Oid			part = get_relname_relid(partition_relname(relname, period_suffix(t, pol->gran)), nspid);
		int64		from;
		int64		to;

		if (!OidIsValid(part) || !partition_range(part, relid, &from, &to) ||
			from != t || to != period_advance(t, pol->gran, 1))
			goto done;
	}
	result = true;
done:
	if (!result)
		UnlockRelationOid(relid, AccessShareLock);
	return result;
}

/*
 * Roll one table over at sink->as_of.  Does at most step_limit units of
 * work (a period attached, a partition detached) when step_limit > 0, so
 * the procedure can commit between them.  Returns the units done.  The
 * caller has connected SPI, pinned search_path and checked ownership; DDL
 * runs as the table's owner so new partitions belong to it.
 *
 * No error escapes (but a cancel): whatever fails is rolled back to where
 * it began and reported as a 'failed' row, and the caller goes on with the
 * next table.
 */
int
rollover_table(Policy *pol, ActionSink *sink, int step_limit)
{
	Rollover   *r = palloc0(sizeof(Rollover));
	char	   *qualname;

	/* this table's share of the lock budget is now its own (one_round) */
	if (step_limit == 0 && sink->locks_reserved > 0)
		sink->locks_reserved -= Min(sink->locks_reserved, forward_locks(pol));
	if (get_rel_name(pol->relid) == NULL)
		return 0;				/* dropped since the policies were read */
	qualname = qualified_name(pol->relid);
	INSTR_TIME_SET_CURRENT(r->started);
	sink->reported_ms = 0;
	r->pol = pol;
	r->sink = sink;
	r->step_limit = step_limit;
	GetUserIdAndSecContext(&r->save_userid, &r->save_sec);

	/* a bad as_of is the caller's error, not the table's */
	check_time_in_range(period_advance(period_floor(sink->as_of, pol->gran), pol->gran,
									   pol->premake + 1),
						"as_of plus premake periods");
	if (nothing_to_do(pol, sink))
		return 0;

	if (!sink->dry_run && !try_busy_guard(pol->relid))
	{
		TableLayout table_only = {0};

		table_only.relid = pol->relid;
		table_only.qualname = qualname;
		emit(sink, &table_only, "skipped_busy", NULL,
			 "another session is rolling this table over", r->started);
		return 0;
	}
	/* see what the session that held the guard committed */
	AcceptInvalidationMessages();

	(void) run_reported(sink, pol->relid, qualname, NULL, prepare_table, r);
	become_caller(r);
	if (r->layout == NULL)
		return r->done;			/* the table cannot even be read: reported */
	if (sink->per_step && sink->stop_table)
		return r->done;
	(void) run_reported(sink, pol->relid, qualname, NULL, plan_and_build, r);
	become_caller(r);

	if (sink->bursts_last)
	{
		/* retention and the attach burst come after every table's step 1 */
		((TableRound *) sink->round_table)->r = r;
		return r->done;
	}
	retire_expired(r);
	report_kept(r);
	return r->done;
}

/* The attach burst of a table's queued periods (finish_table). */
static bool
queued_burst_step(void *arg)
{
	TableRound *tr = arg;
	Rollover   *r = tr->r;
	AttachBurst burst = {r->layout, r->pol, tr->periods, tenant_move_in_progress(r->layout->relid)};
	volatile bool attached = false;

	burst.referenced = default_referenced(r->layout) != NULL;
	tenant_move_allow_rescue(true);
	PG_TRY();
	{
		attached = bounded_yielding(r, attach_burst, &burst, &tr->attempts);
		burst.why = gave_way(r, burst.why, !attached && run_bounded_deadlocked());
	}
	PG_FINALLY();
	{
		tenant_move_allow_rescue(false);
	}
	PG_END_TRY();
	tr->why = burst.why;
	return attached;
}

/*
 * Rows of the current period and those ahead that the application wrote
 * into the default partition while the other tables' step 1 ran (often
 * seconds): moved under weak locks, just before the bursts, so that each
 * burst moves only what arrived during the bursts before it.
 */
static bool
catch_up_step(void *arg)
{
	TableRound *tr = arg;
	Rollover   *r = tr->r;
	ListCell   *lc;

	tenant_move_allow_rescue(true);
	PG_TRY();
	{
		foreach(lc, r->layout->deflt && !tenant_move_in_progress(r->layout->relid) &&
				!default_referenced(r->layout) ? tr->periods : NIL)
		{
			NewPeriod  *np = lfirst(lc);

			if (np->p.to <= r->cur.from)
				continue;
			step1_move(r->layout, np, r->sink->step1_limit_ms);
		}
	}
	PG_FINALLY();
	{
		tenant_move_allow_rescue(false);
	}
	PG_END_TRY();
	return true;
}

/* A table whose step 2 cannot be done: the round is to be redone without it. */
static void
refuse(ActionSink *sink, TableRound *tr, ErrorData *edata)
{
	MemoryContext old = MemoryContextSwitchTo(sink->defer_cxt);
	Refused    *rf = palloc0(sizeof(Refused));

	rf->relid = tr->r->layout->relid;
	rf->edata = edata;
	rf->detail = edata ? NULL : burst_skipped(tr->r, tr->attempts, tr->why);
	sink->refused = lappend(sink->refused, rf);
	MemoryContextSwitchTo(old);
	sink->redo = true;
}

/* catch_up_step, guarded: an error refuses the table (the round is redone). */
static void
catch_up(ActionSink *sink, TableRound *tr)
{
	ErrorData  *edata;

	if (tr->r == NULL || tr->periods == NIL)
		return;
	become_owner(tr->r);
	edata = run_guarded(catch_up_step, tr, NULL);
	become_caller(tr->r);
	if (edata && edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(edata);
	if (edata)
		refuse(sink, tr, edata);
}

/*
 * Step 2 of one table in one transaction: retention, then the attach burst
 * of the periods step 1 built (the order of the per-table path: the parent
 * first).  When the burst fails, the table is refused and the round must
 * be redone (sink->redo): its step 1 is in the round's transaction and
 * only undoing the round takes it back.
 */
static void
finish_table(ActionSink *sink, TableRound *tr)
{
	Rollover   *r = tr->r;
	bool		attached = false;
	ErrorData  *edata;

	sink->reported_ms = 0;
	retire_expired(r);
	if (tr->periods != NIL)
	{
		become_owner(r);
		edata = run_guarded(queued_burst_step, tr, &attached);
		become_caller(r);
		if (edata && edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			ReThrowError(edata);
		if (edata || !attached)
		{
			refuse(sink, tr, edata);
			return;
		}
		report_attached(r, tr->periods);
	}
	report_kept(r);
}

/*
 * The function form: every table in one transaction, so the locks of an
 * attach burst are held until the caller commits.  Doing each table whole
 * (as the procedure does) kept the first table's writers waiting through
 * every later table's build and bulk move and the owner's triggers those
 * fire.  So: first every table's step 1 (builds and bulk moves under weak
 * locks), then every table's step 2 (retention, attach burst) back to
 * back; the first table's writers wait for the later tables' bursts only.
 * Once one table's step 2 holds strong locks, a later step gets one
 * attempt, without the pauses between attempts (run_bounded_single): a
 * pause would be spent holding the earlier table.  A burst that fails
 * cannot be undone alone (its step 1 lies in the transaction under the
 * other tables' work): the whole round is rolled back and done again with
 * that table's periods reported as its burst failed and not built; each
 * round refuses one more table, so the rounds end.  Actions are shown
 * once their round is kept, table by table in order.
 */
/* Argument of one_round. */
typedef struct Round
{
	Oid			relid;
	List	   *pols;
	ActionSink *sink;
	List	   *tables;			/* TableRound * */
} Round;

/* One round of rollover_one_transaction; false when it must be redone. */
static bool
one_round(void *arg)
{
	Round	   *rd = arg;
	ActionSink *sink = rd->sink;
	ListCell   *lc;

	rd->tables = NIL;
	sink->redo = false;
	sink->locks_used = 0;
	sink->past_relid = InvalidOid;	/* the round is planned again */
	sink->locks_reserved = 0;
	sink->buffering = true;
	sink->buffer_cxt = CurrentMemoryContext;

	/* the lock budget keeps room for every table's current and coming periods */
	foreach(lc, rd->pols)
	{
		Policy	   *pol = lfirst(lc);

		if (OidIsValid(rd->relid) || caller_owns_table(pol->relid))
			sink->locks_reserved += forward_locks(pol);
	}

	/* step 1 of every table */
	foreach(lc, rd->pols)
	{
		Policy	   *pol = lfirst(lc);
		TableRound *tr;

		if (!OidIsValid(rd->relid) && !caller_owns_table(pol->relid))
			continue;
		tr = palloc0(sizeof(TableRound));
		sink->round_table = tr;
		sink->buffered = NIL;
		rollover_table(pol, sink, 0);
		tr->out = sink->buffered;
		rd->tables = lappend(rd->tables, tr);
	}
	sink->round_table = NULL;

	/* what arrived meanwhile, still under weak locks */
	foreach(lc, rd->tables)
	{
		if (!sink->redo)
			catch_up(sink, lfirst(lc));
	}

	/* step 2 of every table, back to back */
	PG_TRY();
	{
		foreach(lc, sink->redo ? NIL : rd->tables)
		{
			TableRound *tr = lfirst(lc);
			int			done;

			if (tr->r == NULL)
				continue;
			done = tr->r->done;
			sink->buffered = tr->out;
			finish_table(sink, tr);
			tr->out = sink->buffered;
			if (sink->redo)
				break;
			if (tr->r->done > done)
				run_bounded_single(true);
		}
	}
	PG_FINALLY();
	{
		run_bounded_single(false);
	}
	PG_END_TRY();
	return !sink->redo;
}

static void
rollover_one_transaction(Oid relid, List *pols, ActionSink *sink)
{
	Round		rd = {relid, pols, sink, NIL};
	ListCell   *lc;
	bool		kept = false;

	if (sink->defer_cxt == NULL)
		sink->defer_cxt = CurrentMemoryContext;
	sink->bursts_last = true;
	while (!kept)
	{
		ErrorData  *edata = run_guarded(one_round, &rd, &kept);

		if (edata)
		{
			sink->bursts_last = false;
			sink->buffering = false;
			ReThrowError(edata);
		}
	}
	sink->bursts_last = false;
	sink->buffering = false;
	sink->buffered = NIL;
	foreach(lc, rd.tables)
	{
		ListCell   *le;

		foreach(le, ((TableRound *) lfirst(lc))->out)
		{
			Emitted    *e = lfirst(le);

			emit_output(sink, e->relid, e->qualname, e->action, e->partition, e->detail);
		}
	}
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
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matter_capacity: dry_run must not be NULL"),
				 errhint("Pass true to see what would be done, or omit it (false) to do it.")));
	sink->dry_run = PG_GETARG_BOOL(2);
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
	/* with no table named, roll over only what the caller owns */
	if (!sink.dry_run)
		rollover_one_transaction(relid, pols, &sink);
	foreach(lc, sink.dry_run ? pols : NIL)
	{
		Policy	   *pol = lfirst(lc);

		if (!OidIsValid(relid) && !caller_owns_table(pol->relid))
			continue;
		rollover_table(pol, &sink, 0);
	}
	AtEOXact_GUC(false, nest);
	SPI_finish();
	return (Datum) 0;
}

static void
spi_commit_step(void)
{
	SPI_commit();
	SPI_start_transaction();
}

/* Argument of default_too_big. */
typedef struct BigDefault
{
	Policy	   *pol;
	int64		as_of;
	Oid			deflt;
} BigDefault;

/*
 * Whether the default partition holds more than rescue_backfill_rows rows
 * and capacity_empty_default() would take it.  Only a plain table is
 * counted: a count runs no code of its owner's.
 */
static bool
default_too_big(void *arg)
{
	BigDefault *bd = arg;
	Oid			types[2] = {REGCLASSOID, TIMESTAMPTZOID};
	Datum		values[2] = {ObjectIdGetDatum(bd->pol->relid), TimestampTzGetDatum(bd->as_of)};
	bool		isnull;

	if (!OidIsValid(bd->deflt) || get_rel_relkind(bd->deflt) != RELKIND_RELATION)
		return false;
	exec_sql(psprintf("SELECT pg_catalog.count(*) FROM (SELECT FROM ONLY %s LIMIT %d) s",
					  qualified_name(bd->deflt), mc_rescue_backfill_rows + 1), SPI_OK_SELECT);
	if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) <=
		mc_rescue_backfill_rows)
		return false;
	catalog_execute(psprintf("SELECT message FROM %s($1, $2)",
							 capacity_object("capacity_empty_default_refusal")),
					2, types, values, NULL, true);
	if (SPI_processed > 0)
	{
		ereport(DEBUG1,
				(errmsg("matter_capacity: the default partition of %s holds over %d rows and is emptied period by period: %s",
						qualified_name(bd->pol->relid), mc_rescue_backfill_rows,
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1))));
		return false;
	}
	return true;
}

/*
 * A default partition too big for the rescue (each period's ATTACH makes
 * PostgreSQL scan all of it under ACCESS EXCLUSIVE, writers waiting: about
 * 0.8 s at 5,000,000 rows) becomes a historical partition instead, and the
 * conversion's backfill moves its rows into periods in committed batches
 * (capacity_empty_default, src/sql/60_convert.sql).  That procedure commits,
 * so it runs through the loopback, after a commit here: this session then
 * holds nothing it waits for.  Refused (no primary key, rows before the last
 * partition, ...: capacity_empty_default_refusal) or failed, the rollover's
 * own rescue does the work as before.  Called between units of work.
 */
static void
empty_large_default(Policy *pol, ActionSink *sink, CommitStep commit)
{
	BigDefault	bd = {pol, sink->as_of, get_default_partition_oid(pol->relid)};
	TableLayout table_only = {0};
	instr_time	started;
	char	   *error = NULL;
	char	   *call;
	char	   *deflt_name;
	Oid			deflt = bd.deflt;
	bool		big = false;
	ErrorData  *edata;

	if (mc_rescue_backfill_rows <= 0 || !OidIsValid(deflt))
		return;
	INSTR_TIME_SET_CURRENT(started);
	/* read-only; an error (a default partition we may not read) means no */
	edata = run_guarded(default_too_big, &bd, &big);
	if (edata && edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
		ReThrowError(edata);
	if (!big)
		return;
	call = psprintf("CALL %s(%s::pg_catalog.regclass, 10000::pg_catalog.int4, %s::pg_catalog.int4, "
					"'2000-01-01 00:00+00'::pg_catalog.timestamptz OPERATOR(pg_catalog.+) "
					"(" INT64_FORMAT "::pg_catalog.float8 OPERATOR(pg_catalog.*) '1 microsecond'::pg_catalog.interval))",
					capacity_object("capacity_empty_default"),
					quote_literal_cstr(qualified_name(pol->relid)),
					sink->backfill_batches < 0 ? "NULL" : psprintf("%d", sink->backfill_batches),
					sink->as_of);
	table_only.relid = pol->relid;
	table_only.qualname = qualified_name(pol->relid);
	deflt_name = get_rel_name(deflt);	/* its name now: the swap renames it */
	commit();
	if (!loopback_run_bounded(call, mc_lock_timeout_ms, &error, NULL))
	{
		/* its first line: the rest is the procedure's context */
		if (strchr(error, '\n'))
			*strchr(error, '\n') = '\0';
		ereport(WARNING,
				(errmsg("matter_capacity: the default partition of %s was not emptied by the backfill: %s",
						table_only.qualname, error),
				 errhint("Its rows are moved period by period instead; each period's ATTACH scans the default partition while writers wait.")));
		return;
	}
	AcceptInvalidationMessages();
	if (get_rel_name(deflt) == NULL)
		return;					/* dropped meanwhile */
	exec_sql(psprintf("SELECT pg_catalog.format('%%s rows: it became the historical partition %%s (the swap held its lock %%s ms); %%s', "
					  "(SELECT pg_catalog.count(*) FROM ONLY %s), "
					  "c.historical, pg_catalog.round(c.convert_swap_ms::pg_catalog.numeric, 1), "
					  "CASE c.state WHEN 'done' THEN pg_catalog.format('the backfill moved them into periods, a batch per transaction (the switch held its lock %%s ms); drop %%s once checked', "
					  "pg_catalog.round(c.backfill_swap_ms::pg_catalog.numeric, 1), c.historical) "
					  "ELSE 'the backfill moves them into periods, a batch per transaction (capacity_conversions shows how far it is)' END) "
					  "FROM %s c WHERE c.table_name OPERATOR(pg_catalog.=) %u::pg_catalog.oid",
					  qualified_name(deflt), capacity_object("capacity_conversion"), pol->relid), SPI_OK_SELECT);
	if (SPI_processed > 0)
		emit(sink, &table_only, "emptied_default", deflt_name,
			 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), started);
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
	sink->per_step = nonatomic && !sink->dry_run;
	sink->defer_cxt = mcxt;
	pols = policies_for_call(relid, mcxt);
	if (!nonatomic && !sink->dry_run)
	{
		/* in the caller's transaction: as the function form */
		int			nest = pin_search_path();

		rollover_one_transaction(relid, pols, sink);
		AtEOXact_GUC(false, nest);
		return;
	}
	foreach(lc, pols)
	{
		Policy	   *pol = lfirst(lc);

		if (!OidIsValid(relid) && !caller_owns_table(pol->relid))
			continue;
		/*
		 * One unit per transaction until the table has nothing left, or a
		 * unit could not get its locks or failed: that one is not tried
		 * again in this call (it waits for the next), like the function.
		 */
		sink->stop_table = false;
		if (sink->empty_large_defaults && nonatomic && !sink->dry_run)
			empty_large_default(pol, sink, commit);
		for (;;)
		{
			int			nest = pin_search_path();
			int			done;

			done = rollover_table(pol, sink, (nonatomic && !sink->dry_run) ? 1 : 0);
			AtEOXact_GUC(false, nest);
			if (!nonatomic || sink->dry_run || done == 0 || sink->stop_table)
				break;
			commit();
		}
		/* each table in transactions of its own (the worker samples between) */
		if (nonatomic && !sink->dry_run)
			commit();
		if (sink->deferred != NIL)
		{
			/* release every lock this backend holds, then detach */
			record_pending_drops(sink);
			commit();
			run_deferred_detaches(sink, commit);
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

	/*
	 * A CALL inside BEGIN ... COMMIT, in a multi-statement query string (one
	 * implicit transaction) or from a function cannot commit: PostgreSQL
	 * would fail at the first COMMIT with "invalid transaction termination".
	 * Then do the function's work in the caller's transaction instead, and
	 * say so (issue 13, case 18).
	 */
	if (!nonatomic && !sink.dry_run)
		ereport(NOTICE,
				(errmsg("matter_capacity: capacity_rollover_proc runs in one transaction here, like capacity_rollover()"),
				 errdetail("It was called inside a transaction block or together with other statements in one query string, where a procedure cannot commit."),
				 errhint("Its locks are held until the caller's transaction ends. CALL it as a statement of its own in autocommit mode to commit period by period.")));

	sink.empty_large_defaults = true;
	sink.backfill_batches = -1;
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
