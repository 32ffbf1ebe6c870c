/*-------------------------------------------------------------------------
 * loopback.c
 *		DETACH PARTITION ... CONCURRENTLY through a loopback connection.
 *
 * PostgreSQL refuses DETACH ... CONCURRENTLY inside a function or a
 * procedure: it must be a top-level statement, because it commits in the
 * middle and then waits for every transaction that holds a lock on the
 * parent.  The procedure form (and the worker) therefore open a libpq
 * connection to this very server and issue it there, after committing their
 * own transaction so that they hold no lock the DETACH would wait for.
 * detach_concurrently() refuses to connect while this backend still holds
 * a lock on the parent, the partition or the default partition: the
 * loopback would wait for it and we for the loopback, a deadlock
 * PostgreSQL's detector cannot see (the caller then uses the bounded plain
 * DETACH).
 * It takes only SHARE UPDATE EXCLUSIVE on the parent, so the application
 * never waits; the DETACH itself may wait for long readers to finish.
 * A detach left pending by an interrupted run is completed with FINALIZE.
 *
 * The worker also runs the conversion backfill through it, and the
 * procedure form and the worker capacity_empty_default() (rollover.c): a
 * procedure that commits must be called at top level.
 *
 * Owns: the connection parameters (how to reach the server from
 * matter_capacity.loopback_conninfo, or the server's own socket; always
 * this database and the current role).  Connecting and running go through
 * remote.c (on the latch; the connection bounded by
 * matter_capacity.loopback_timeout).  Must not decide what to detach or
 * run.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "libpq-fe.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/lock.h"
#include "storage/lockdefs.h"
#include "storage/procarray.h"
#include "catalog/partition.h"
#include "commands/dbcommands.h"
#include "utils/builtins.h"

#include "matter_capacity.h"
#include "loopback.h"
#include "remote.h"

/*
 * The loopback connects to this server, this database, as the current
 * role, always: matter_capacity.loopback_conninfo may add how to reach the
 * server (host, port, sslmode, passfile ...), but its user and dbname, if
 * any, are overridden.  Parameters are passed as keyword/value arrays,
 * never formatted into a string, so no database or role name can add or
 * change a parameter.  Only the setting itself is parsed as a connection
 * string (the first dbname, expand_dbname); libpq uses the last value of a
 * repeated keyword.
 *
 * Connecting goes through remote.c: asynchronous on the latch, so SIGTERM
 * and query cancel are honoured while the server is slow to answer, and
 * bounded by matter_capacity.loopback_timeout.
 */
#define LOOPBACK_PARAMS 7

static PGconn *
loopback_connect(char **error)
{
	const char *keywords[LOOPBACK_PARAMS + 1];
	const char *values[LOOPBACK_PARAMS + 1];
	int			n = 0;

	if (mc_loopback_conninfo && mc_loopback_conninfo[0] != '\0')
	{
		/* a first dbname is expanded as a connection string (remote.c) */
		keywords[n] = "dbname";
		values[n++] = mc_loopback_conninfo;
	}
	else
	{
		char	   *dirs = pstrdup(Unix_socket_directories ? Unix_socket_directories : "");
		char	   *comma = strchr(dirs, ',');

		if (comma)
			*comma = '\0';
		keywords[n] = "host";
		values[n++] = dirs[0] ? dirs : "localhost";
		keywords[n] = "port";
		values[n++] = psprintf("%d", PostPortNumber);
	}
	keywords[n] = "dbname";
	values[n++] = get_database_name(MyDatabaseId);
	keywords[n] = "user";
	values[n++] = GetUserNameFromId(GetUserId(), false);
	keywords[n] = "application_name";
	values[n++] = "matter_capacity loopback";
	keywords[n] = NULL;
	values[n] = NULL;
	return remote_connect(keywords, values, mc_loopback_timeout_ms, error);
}

/*
 * Stop the loopback backend's statement: it is a backend of this very
 * server, so signal it as pg_cancel_backend does (remote.c sends no cancel
 * requests: libpq < 17's PQcancel can block).  Never waits.
 */
static void
loopback_cancel(PGconn *conn)
{
	int			pid = conn ? PQbackendPID(conn) : 0;

	if (pid > 0 && BackendPidGetProc(pid) != NULL)
		(void) kill(pid, SIGINT);
}

/*
 * Run one statement, waiting on our latch so cancel and shutdown work (and
 * stop the statement on the server too: loopback_cancel in the callers).
 * The statements sent here are the work itself (a DETACH waiting for
 * readers, a slice of backfill), so their deadline is
 * matter_capacity.loopback_statement_timeout, not the connection's: past
 * it the statement is cancelled.  What they do survives that: a DETACH
 * CONCURRENTLY stays pending (finished with FINALIZE next time), a
 * backfill goes on from its last committed batch.
 */
static bool
loopback_exec(PGconn *conn, const char *sql, char **error)
{
	PGresult   *res = remote_exec(conn, sql, 0, NULL, mc_loopback_statement_timeout_ms, error);

	if (res == NULL)
		return false;
	PQclear(res);
	return true;
}

/*
 * Does this backend hold a lock, in any mode, on relid?  The loopback is
 * another backend: it would wait for such a lock, and we would wait for the
 * loopback, a deadlock PostgreSQL's detector cannot see (we wait on a
 * socket, review 4 F13).
 */
static bool
holds_lock_on(Oid relid)
{
	LOCKTAG		tag;
	LOCKMODE	mode;

	if (!OidIsValid(relid))
		return false;
	SET_LOCKTAG_RELATION(tag, MyDatabaseId, relid);
	for (mode = AccessShareLock; mode <= AccessExclusiveLock; mode++)
	{
#if PG_VERSION_NUM >= 170000
		if (LockHeldByMe(&tag, mode, false))
#else
		if (LockHeldByMe(&tag, mode))
#endif
			return true;
	}
	return false;
}

/*
 * Detach part_q (part_relid) from parent_q (parent) concurrently, or
 * finalize a pending detach.  The caller drops the table itself if it is to
 * go.  False with *error set when it was not done, and *why saying what
 * failed: the connection or the statement (the connection then worked).
 *
 * Refused without connecting when this backend holds any lock on the
 * parent, the partition or the parent's default partition: the loopback
 * would wait for our own lock for ever.  The caller then uses the bounded
 * plain DETACH, which such a lock does not hinder.
 */
bool
detach_concurrently(Oid parent, Oid part_relid, const char *parent_q,
					const char *part_q, char **error, LoopbackFailure *why)
{
	PGconn	   *conn;
	PGresult   *res;
	bool		ok;
	bool		pending = false;

	*error = NULL;
	*why = LOOPBACK_OWN_LOCK;
	if (holds_lock_on(parent) || holds_lock_on(part_relid) ||
		holds_lock_on(get_default_partition_oid(parent)))
	{
		*error = psprintf("this session holds a lock on %s that the loopback connection would wait for",
						  parent_q);
		return false;
	}
	*why = LOOPBACK_NO_CONNECTION;
	if ((conn = loopback_connect(error)) == NULL)
		return false;
	*why = LOOPBACK_STATEMENT_FAILED;
	PG_TRY();
	{
		res = remote_exec(conn,
						  psprintf("SELECT i.inhdetachpending FROM pg_catalog.pg_inherits i "
								   "WHERE i.inhrelid OPERATOR(pg_catalog.=) %s::pg_catalog.regclass",
								   quote_literal_cstr(part_q)),
						  0, NULL, mc_loopback_timeout_ms, error);
		ok = res != NULL;
		if (res && PQntuples(res) == 1)
			pending = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		if (res)
			PQclear(res);
		if (ok)
			ok = loopback_exec(conn, psprintf("ALTER TABLE %s DETACH PARTITION %s %s",
											  parent_q, part_q,
											  pending ? "FINALIZE" : "CONCURRENTLY"),
							   error);
	}
	PG_CATCH();
	{
		loopback_cancel(conn);
		remote_close(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (!ok)
		loopback_cancel(conn);
	else
		*why = LOOPBACK_OK;
	remote_close(conn);
	return ok;
}

/*
 * Run one top-level statement (a CALL of a procedure that commits) on its
 * own connection; the worker uses it for the conversion backfill.  With
 * lock_timeout_ms > 0 the session's lock_timeout is set first (a statement
 * of its own: the CALL must be alone in its query string to commit), so a
 * row or table an application holds ends the statement instead of keeping
 * it (and the caller) waiting (review 4 F14).  *why (when given) says
 * whether the connection or the statement failed.
 */
bool
loopback_run_bounded(const char *sql, int lock_timeout_ms, char **error, LoopbackFailure *why)
{
	PGconn	   *conn;
	bool		ok;
	LoopbackFailure failure = LOOPBACK_NO_CONNECTION;

	*error = NULL;
	if ((conn = loopback_connect(error)) == NULL)
	{
		if (why)
			*why = failure;
		return false;
	}
	failure = LOOPBACK_STATEMENT_FAILED;
	PG_TRY();
	{
		ok = lock_timeout_ms <= 0 ||
			loopback_exec(conn, psprintf("SELECT pg_catalog.set_config('lock_timeout', '%d', false)",
										 lock_timeout_ms), error);
		if (ok)
			ok = loopback_exec(conn, sql, error);
	}
	PG_CATCH();
	{
		loopback_cancel(conn);
		remote_close(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	if (!ok)
		loopback_cancel(conn);
	remote_close(conn);
	if (why)
		*why = ok ? LOOPBACK_OK : failure;
	return ok;
}

bool
loopback_run(const char *sql, char **error)
{
	return loopback_run_bounded(sql, 0, error, NULL);
}
