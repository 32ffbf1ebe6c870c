/*-------------------------------------------------------------------------
 * locks.c
 *		Bounded lock acquisition and DDL for hot tables.
 *
 * Owns: running one step (a lock request or a DDL statement) inside a
 * subtransaction with lock_timeout = matter_capacity.lock_timeout, and
 * retrying it up to matter_capacity.lock_retries times.  Between attempts
 * it sleeps for twice the timeout, longer than any application statement
 * that queued behind our lock request could have waited, so that queue
 * drains before we queue again.  A step that still cannot get its locks is
 * reported as not done; the caller logs skipped_locked.  Any other error is
 * re-thrown unchanged.  A caller that already holds strong locks of earlier
 * work asks for one attempt without pauses or yields (run_bounded_single):
 * the application would spend those waiting for what it holds.  A step
 * chosen as a deadlock's victim is not retried either: the other
 * transaction waits for something the caller's earlier work holds (rows
 * it moved), and would only be waited for again; the caller undoes that
 * work and the other transaction goes on (run_bounded_deadlocked says so).
 *
 * Also the one subtransaction guard every file uses (run_guarded): a piece
 * of work whose failure must not take the caller's transaction with it.
 *
 * The conversion procedures (60_convert.sql) use the same loop through
 * capacity_run_bounded(), with one addition they need: an autovacuum
 * worker in the way is made to give way (capacity_autovacuum_yield) and
 * that attempt is not counted.
 *
 * Must not decide what to run: that is rollover.c's business (and the
 * conversion's).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/wait_event.h"

#include "matter_capacity.h"
#include "catalog.h"
#include "locks.h"

/* Run one SQL statement through SPI; ERROR unless it succeeds. */
void
exec_sql(const char *sql, int expected)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc != expected)
		elog(ERROR, "matter_capacity: unexpected SPI result %d for: %s", rc, sql);
}

/* A BoundedStep that runs one statement through SPI (the tenant move's guard trigger DDL). */
void
exec_sql_step(void *arg)
{
	exec_sql((const char *) arg, SPI_OK_UTILITY);
}

void
lock_relation_step(void *arg)
{
	LockRequest *req = arg;
	int			i;

	for (i = 0; i < req->n; i++)
		LockRelationOid(req->relids[i], req->modes[i]);
}

static void
pause_between_attempts(int attempt)
{
	long		ms = (long) mc_lock_timeout_ms * 2 * attempt;

	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

/*
 * Run fn(arg) in a subtransaction of its own.  fn returns true to keep its
 * work (the subtransaction commits) or false to undo it.  An error undoes
 * it too and is returned, copied into the caller's memory context, for the
 * caller to record or re-throw; NULL when there was none.  *kept (when
 * given) says whether the work stays.  The caller's memory context and
 * resource owner are current again on return.
 */
ErrorData *
run_guarded(GuardedStep fn, void *arg, bool *kept)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	ErrorData  *volatile edata = NULL;
	volatile bool keep = false;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	PG_TRY();
	{
		keep = fn(arg);
		if (keep)
			ReleaseCurrentSubTransaction();
		else
			RollbackAndReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		keep = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(oldcxt);
	CurrentResourceOwner = oldowner;
	if (kept)
		*kept = keep;
	return edata;
}

/*
 * Run step(arg) under the lock timeout; true when it completed.  Locks it
 * took stay held by the enclosing transaction.  *attempts gets the number
 * of tries made.  After a lock timeout, yield (when given) may make the
 * holder give way (an autovacuum worker, 60_convert.sql); when it says
 * something did, the attempt is not counted and is made again at once, at
 * most MAX_YIELDS times.
 */
#define MAX_YIELDS 10

/*
 * One attempt only, no yield: set by a caller that already holds strong
 * locks of earlier work in its transaction (rollover.c's function form),
 * where a pause between attempts, or a wait for an autovacuum to end,
 * would be spent with the application waiting for those.
 */
static bool single_attempt = false;
static bool deadlocked = false;

/* Did the last run_bounded* give up as a deadlock's victim? */
bool
run_bounded_deadlocked(void)
{
	return deadlocked;
}

void
run_bounded_single(bool on)
{
	single_attempt = on;
}

typedef struct TimedStep
{
	BoundedStep step;
	void	   *arg;
} TimedStep;

/* step(arg) with lock_timeout = matter_capacity.lock_timeout, undone after */
static bool
timed_step(void *arg)
{
	TimedStep  *ts = arg;
	int			nest = NewGUCNestLevel();

	(void) set_config_option("lock_timeout", psprintf("%d", mc_lock_timeout_ms), PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	ts->step(ts->arg);
	AtEOXact_GUC(false, nest);
	return true;
}

bool
run_bounded_yielding(BoundedStep step, void *arg, BoundedYield yield, void *yield_arg,
					 int *attempts)
{
	TimedStep	ts = {step, arg};
	int			attempt = 0;
	int			yields = 0;

	deadlocked = false;
	for (;;)
	{
		ErrorData  *edata;

		attempt++;
		if (attempts)
			*attempts = attempt;
		edata = run_guarded(timed_step, &ts, NULL);
		if (edata == NULL)
			return true;
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE &&
			edata->sqlerrcode != ERRCODE_T_R_DEADLOCK_DETECTED)
			ReThrowError(edata);
		deadlocked = edata->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED;
		FreeErrorData(edata);
		if (single_attempt || deadlocked)
			return false;
		if (yield && yields < MAX_YIELDS && yield(yield_arg))
		{
			yields++;
			attempt--;
			continue;
		}
		if (attempt > mc_lock_retries)
			return false;
		pause_between_attempts(attempt);
	}
}

bool
run_bounded(BoundedStep step, void *arg, int *attempts)
{
	return run_bounded_yielding(step, arg, NULL, NULL, attempts);
}

/*
 * The SQL face of the loop above, for the conversion procedures
 * (60_convert.sql), so that they bound their locks exactly as the rollover
 * does:
 *
 * capacity_run_bounded(stmts text[], what text, yield_to regclass[])
 *		RETURNS integer
 *
 * Runs stmts in one subtransaction per attempt under
 * matter_capacity.lock_timeout, search_path pinned; returns the attempts
 * used.  After a lock timeout an autovacuum worker holding one of
 * yield_to (or a partition of one) is made to give way by
 * capacity_autovacuum_yield(), and that attempt is not counted.  When the
 * locks are still not available: error 55P03 naming what.
 */
typedef struct StatementsStep
{
	Datum	   *stmts;
	int			n;
} StatementsStep;


static void
statements_step(void *arg)
{
	StatementsStep *st = arg;
	int			i;

	for (i = 0; i < st->n; i++)
	{
		char	   *sql = TextDatumGetCString(st->stmts[i]);

		if (SPI_execute(sql, false, 0) < 0)
			elog(ERROR, "matter_capacity: SPI error for: %s", sql);
	}
}

/*
 * A BoundedYield: capacity_autovacuum_yield(rels, what) (60_convert.sql)
 * makes an autovacuum worker holding one of rels give way; true when one
 * did.  Runs as the current user (callers switch to the table's owner or
 * the caller: the extension owner may not signal the worker).
 */
bool
autovacuum_yield(void *arg)
{
	AutovacuumYield *y = arg;
	Oid			types[2] = {REGCLASSARRAYOID, TEXTOID};
	Datum		values[2] = {y->rels, y->what};
	bool		isnull;

	if (SPI_execute_with_args(psprintf("SELECT %s($1, $2)",
									   capacity_object("capacity_autovacuum_yield")),
							  2, types, values, NULL, false, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "matter_capacity: capacity_autovacuum_yield() failed");
	return DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) && !isnull;
}

PG_FUNCTION_INFO_V1(capacity_run_bounded);

Datum
capacity_run_bounded(PG_FUNCTION_ARGS)
{
	StatementsStep st;
	AutovacuumYield y;
	bool	   *nulls;
	char	   *what;
	int			attempts = 0;
	int			nest;
	bool		done;
	int			i;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matter_capacity: capacity_run_bounded needs statements and what they do"),
				 errhint("capacity_run_bounded(ARRAY['ALTER TABLE ...'], 'adding the bound constraint to t')")));
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(0), TEXTOID, -1, false, TYPALIGN_INT,
					  &st.stmts, &nulls, &st.n);
	for (i = 0; i < st.n; i++)
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("matter_capacity: statement %d given to capacity_run_bounded is NULL", i + 1),
					 errhint("Pass only statements.")));
	what = text_to_cstring(PG_GETARG_TEXT_PP(1));
	y.what = PG_GETARG_DATUM(1);
	y.rels = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);

	SPI_connect();
	nest = pin_search_path();
	done = run_bounded_yielding(statements_step, &st,
								PG_ARGISNULL(2) ? NULL : autovacuum_yield, &y, &attempts);
	AtEOXact_GUC(false, nest);
	SPI_finish();
	if (!done)
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("matter_capacity: %s skipped: lock not available after %d attempts of %d ms",
						what, attempts, mc_lock_timeout_ms),
				 errhint("Long transactions hold the table; run it again later, or raise matter_capacity.lock_retries.")));
	PG_RETURN_INT32(attempts);
}
