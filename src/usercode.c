/*-------------------------------------------------------------------------
 * usercode.c
 *		Running code a user controls from a session with more rights.
 *
 * Probes (sampler.c) and EXPLAIN checks (explain.c) are SQL that a role
 * registered; the worker (a superuser) or an operator's session runs them.
 * Planning constant-folds the role's IMMUTABLE functions and applies its
 * row-level-security policies, executing runs its functions: all of it is
 * that role's code.  Between usercode_begin and usercode_finish (or
 * usercode_fail in PG_CATCH) it runs:
 *
 *	- as the role, under SECURITY_RESTRICTED_OPERATION (no SET ROLE, no
 *	  session_authorization, no temporary objects, like REFRESH
 *	  MATERIALIZED VIEW), and the role must still exist;
 *	- with its own search_path, in its own GUC nest level inside its own
 *	  subtransaction, both ROLLED BACK at the end, success or not: a
 *	  set_config(..., false) made by the code, the rows it wrote, the
 *	  locks it took (including the relation locks planning takes) do not
 *	  outlive it.  Session-level advisory locks survive a rollback: those
 *	  it took are released and reported as its error (one it already held
 *	  before, taken again, is not seen);
 *	- read-only (transaction_read_only = on, which the code cannot turn
 *	  off inside a subtransaction);
 *	- under a time limit (matter_capacity.probe_timeout): a query cancel
 *	  when it expires, and again after every subtransaction the code rolls
 *	  back (a PL/pgSQL EXCEPTION WHEN query_canceled block), so catching
 *	  the cancel only moves it to the next statement outside the block;
 *	- and afterwards the session's role, security context and search_path
 *	  are checked to be exactly what they were before.
 *
 * A time limit alone (usercode_limit_begin / usercode_limit_end) bounds user
 * code our own writing statements fire, which cannot run read-only: the
 * table owner's triggers fired by the rollover's rescue of rows while it
 * holds locks the application waits for (rollover.c, attach_burst).  The
 * caller runs those statements as the table's owner, under
 * SECURITY_RESTRICTED_OPERATION, inside a subtransaction it undoes when the
 * limit expired; the cancel is renewed after every subtransaction the code
 * rolls back, as above.
 *
 * Limits: code that never reaches a CHECK_FOR_INTERRUPTS (an untrusted
 * language's busy loop) cannot be stopped by any in-process means; only
 * superusers can create such functions.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timeout.h"

#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "usercode.h"

static TimeoutId usercode_timeout_id = MAX_TIMEOUTS;
static volatile sig_atomic_t timed_out = false;
static UserCode *current_uc = NULL;
static bool callback_registered = false;

/* usercode_limit_begin: active, and the subtransaction it began in */
static bool limit_active = false;
static SubTransactionId limit_subid = InvalidSubTransactionId;

static void
usercode_timeout_handler(void)
{
	timed_out = true;
	QueryCancelPending = true;
	InterruptPending = true;
	SetLatch(MyLatch);
}

/*
 * The user code caught our cancel (rolling back the subtransaction of its
 * exception block): cancel again, so the next statement fails.
 */
static void
usercode_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && limit_active && mySubid == limit_subid)
	{
		/* an error ended the limit's own subtransaction before its end */
		disable_timeout(usercode_timeout_id, false);
		limit_active = false;
		return;
	}
	if (event == SUBXACT_EVENT_ABORT_SUB && timed_out &&
		((current_uc != NULL && current_uc->active && mySubid > current_uc->subid) ||
		 (limit_active && mySubid > limit_subid)))
	{
		QueryCancelPending = true;
		InterruptPending = true;
	}
}

bool
role_exists(Oid roleid)
{
	return OidIsValid(roleid) && SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(roleid));
}

bool
usercode_timed_out(void)
{
	return timed_out;
}

int
usercode_elapsed_ms(UserCode *uc)
{
	long		secs;
	int			usecs;

	TimestampDifference(uc->started, GetCurrentTimestamp(), &secs, &usecs);
	return (int) Min(secs * 1000 + usecs / 1000, (long) INT_MAX);
}


/* Advisory locks this backend holds now (after a rollback: session-level). */
static List *
my_advisory_locks(void)
{
	LockData   *ld = GetLockStatusData();
	List	   *result = NIL;
	int			i;

	for (i = 0; i < ld->nelements; i++)
	{
		LockInstanceData *li = &ld->locks[i];

		if (li->pid == MyProcPid && li->locktag.locktag_type == LOCKTAG_ADVISORY &&
			li->holdMask != 0)
		{
			LockInstanceData *copy = palloc(sizeof(LockInstanceData));

			*copy = *li;
			result = lappend(result, copy);
		}
	}
	return result;
}

/* Release advisory locks taken since `before`; true when there were some. */
static bool
release_new_advisory_locks(List *before)
{
	List	   *now = my_advisory_locks();
	ListCell   *a;
	bool		found = false;

	foreach(a, now)
	{
		LockInstanceData *li = lfirst(a);
		ListCell   *b;
		bool		old = false;
		LOCKMODE	mode;

		foreach(b, before)
			if (memcmp(&((LockInstanceData *) lfirst(b))->locktag, &li->locktag, sizeof(LOCKTAG)) == 0)
				old = true;
		if (old)
			continue;
		found = true;
		for (mode = 1; mode <= MaxLockMode; mode++)
			if (li->holdMask & LOCKBIT_ON(mode))
				while (LockHeldByMe(&li->locktag, mode) &&
					   LockRelease(&li->locktag, mode, true))
					;
	}
	return found;
}

/* The timer and the subtransaction callback, registered once per backend. */
static void
usercode_register(void)
{
	if (usercode_timeout_id == MAX_TIMEOUTS)
		usercode_timeout_id = RegisterTimeout(USER_TIMEOUT, usercode_timeout_handler);
	if (!callback_registered)
	{
		RegisterSubXactCallback(usercode_subxact_callback, NULL);
		callback_registered = true;
	}
}

/*
 * Start a time limit of timeout_ms for what the caller runs next: a query
 * cancel when it expires.  The caller runs it in a subtransaction and calls
 * usercode_limit_end both after it and in PG_CATCH.
 */
void
usercode_limit_begin(int timeout_ms)
{
	if (current_uc != NULL && current_uc->active)
		elog(ERROR, "matter_capacity: time limit started inside %s", current_uc->what);
	usercode_register();
	timed_out = false;
	limit_subid = GetCurrentSubTransactionId();
	limit_active = true;
	enable_timeout_after(usercode_timeout_id, Max(timeout_ms, 1));
}

/* Stop the clock; true when the limit expired (its cancel is forgotten). */
bool
usercode_limit_end(void)
{
	if (!limit_active)
		return false;
	disable_timeout(usercode_timeout_id, false);
	limit_active = false;
	if (timed_out)
		QueryCancelPending = false;
	return timed_out;
}

void
usercode_begin(UserCode *uc, const char *what, Oid role, const char *search_path,
			   int timeout_ms)
{
	if (!role_exists(role))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("matter_capacity: the role that owns %s (oid %u) no longer exists", what, role),
				 errhint("Register it again as an existing role, or delete it.")));
	if (current_uc != NULL && current_uc->active)
		elog(ERROR, "matter_capacity: %s started inside %s", what, current_uc->what);
	if (limit_active)
		elog(ERROR, "matter_capacity: %s started inside a time limit", what);
	usercode_register();

	uc->what = what;
	uc->role = role;
	uc->timeout_ms = timeout_ms;
	uc->search_path_before = pstrdup(GetConfigOption("search_path", false, false));
	GetUserIdAndSecContext(&uc->save_userid, &uc->save_sec);
	uc->oldcxt = CurrentMemoryContext;
	uc->oldowner = CurrentResourceOwner;
	uc->advisory_before = my_advisory_locks();

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(uc->oldcxt);
	uc->subid = GetCurrentSubTransactionId();
	uc->nest = NewGUCNestLevel();
	(void) set_config_option("search_path", search_path ? search_path : "pg_catalog",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("transaction_read_only", "on",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	uc->run_sec = uc->save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION;
	SetUserIdAndSecContext(role, uc->run_sec);

	timed_out = false;
	uc->started = GetCurrentTimestamp();
	uc->active = true;
	current_uc = uc;
	enable_timeout_after(usercode_timeout_id, timeout_ms);
}

/* Stop the clock; forget a cancel that was ours. */
static void
usercode_stop(UserCode *uc)
{
	disable_timeout(usercode_timeout_id, false);
	uc->active = false;
	current_uc = NULL;
	if (timed_out)
	{
		QueryCancelPending = false;
		/* InterruptPending may cover other requests: leave it set */
	}
}

/* The session is exactly as before the user code, or we stop here. */
static void
usercode_verify(UserCode *uc)
{
	Oid			userid;
	int			sec;

	GetUserIdAndSecContext(&userid, &sec);
	if (userid != uc->save_userid || sec != uc->save_sec ||
		strcmp(GetConfigOption("search_path", false, false), uc->search_path_before) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("matter_capacity: the session's role or search_path changed across %s", uc->what)));
}

/*
 * The code returned normally: results it produced must already have been
 * copied out (the subtransaction's memory, SPI tuple tables included, is
 * freed here).  Everything it did is rolled back.
 */
void
usercode_finish(UserCode *uc)
{
	Oid			userid;
	int			sec;
	bool		same;

	usercode_stop(uc);
	GetUserIdAndSecContext(&userid, &sec);
	same = userid == uc->role && sec == uc->run_sec;
	SetUserIdAndSecContext(uc->save_userid, uc->save_sec);
	AtEOXact_GUC(false, uc->nest);
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(uc->oldcxt);
	CurrentResourceOwner = uc->oldowner;
	usercode_verify(uc);
	if (release_new_advisory_locks(uc->advisory_before))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("matter_capacity: %s took a session-level advisory lock (released)", uc->what),
				 errhint("A probe or check only reads; it must not keep locks after it ends.")));
	if (!same)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("matter_capacity: %s changed the role it runs as", uc->what)));
	if (timed_out)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("timed out after %d ms (matter_capacity.probe_timeout)", uc->timeout_ms),
				 errdetail("%s ran past the limit", uc->what)));
}

/*
 * In PG_CATCH: roll the code back and return its error (copied into the
 * caller's memory context), rewritten when it was our time limit.
 */
ErrorData *
usercode_fail(UserCode *uc)
{
	ErrorData  *edata;

	usercode_stop(uc);
	MemoryContextSwitchTo(uc->oldcxt);
	edata = CopyErrorData();
	FlushErrorState();
	RollbackAndReleaseCurrentSubTransaction();
	MemoryContextSwitchTo(uc->oldcxt);
	CurrentResourceOwner = uc->oldowner;
	usercode_verify(uc);
	(void) release_new_advisory_locks(uc->advisory_before);
	if (timed_out)
	{
		edata->sqlerrcode = ERRCODE_PROGRAM_LIMIT_EXCEEDED;
		edata->message = psprintf("timed out after %d ms (matter_capacity.probe_timeout)", uc->timeout_ms);
		edata->detail = psprintf("%s ran past the limit", uc->what);
		edata->context = NULL;
		edata->hint = pstrdup("Make it faster, or raise matter_capacity.probe_timeout.");
	}
	return edata;
}

/*
 * The one check of "a single SELECT" that probes (probes.c) and EXPLAIN
 * checks (explain.c) share: parse query and say what it is.  *stmt gets
 * the statement when there is exactly one, *cte_name the first WITH query
 * that writes.  Each caller words its own error (and decides whether
 * FOR UPDATE matters to it).
 */
SelectShape
single_select_shape(const char *query, RawStmt **stmt, const char **cte_name)
{
	List	   *raw = raw_parser(query, RAW_PARSE_DEFAULT);
	SelectStmt *sel;
	ListCell   *lc;

	*stmt = NULL;
	*cte_name = NULL;
	if (list_length(raw) == 0)
		return SELECT_EMPTY;
	if (list_length(raw) > 1)
		return SELECT_SEVERAL;
	*stmt = linitial_node(RawStmt, raw);
	if (!IsA((*stmt)->stmt, SelectStmt))
		return SELECT_NOT_SELECT;
	sel = (SelectStmt *) (*stmt)->stmt;
	if (sel->intoClause != NULL)
		return SELECT_INTO;
	/* PostgreSQL allows data-modifying WITH only at the top level */
	if (sel->withClause != NULL)
		foreach(lc, sel->withClause->ctes)
		{
			CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

			if (!IsA(cte->ctequery, SelectStmt))
			{
				*cte_name = cte->ctename;
				return SELECT_MODIFYING_WITH;
			}
		}
	if (sel->lockingClause != NIL)
		return SELECT_LOCKING;
	return SELECT_ONE;
}
