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
 * re-thrown unchanged.
 *
 * Must not decide what to run: that is rollover.c's business.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/wait_event.h"

#include "matter_capacity.h"
#include "locks.h"

/* Run one SQL statement through SPI; ERROR unless it succeeds. */
void
exec_sql(const char *sql, int expected)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc != expected)
		elog(ERROR, "matter_capacity: unexpected SPI result %d for: %s", rc, sql);
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
 * Run step(arg) under the lock timeout; true when it completed.  Locks it
 * took stay held by the enclosing transaction.  *attempts gets the number
 * of tries made.
 */
bool
run_bounded(BoundedStep step, void *arg, int *attempts)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	char		timeout[32];
	int			attempt;

	snprintf(timeout, sizeof(timeout), "%d", mc_lock_timeout_ms);
	for (attempt = 1; attempt <= mc_lock_retries + 1; attempt++)
	{
		bool		done = false;

		if (attempts)
			*attempts = attempt;
		if (attempt > 1)
			pause_between_attempts(attempt - 1);

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(oldcxt);
		PG_TRY();
		{
			int			nest = NewGUCNestLevel();

			(void) set_config_option("lock_timeout", timeout, PGC_USERSET,
									 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
			step(arg);
			AtEOXact_GUC(false, nest);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
			done = true;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(oldcxt);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(oldcxt);
			CurrentResourceOwner = oldowner;
			if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE &&
				edata->sqlerrcode != ERRCODE_T_R_DEADLOCK_DETECTED)
				ReThrowError(edata);
			FreeErrorData(edata);
		}
		PG_END_TRY();
		if (done)
			return true;
	}
	return false;
}
