/*-------------------------------------------------------------------------
 * remote.c
 *		libpq from a backend or the worker: connect and run statements
 *		asynchronously on the latch, every call bounded by a timeout.
 *
 * A backend that blocks in libpq cannot be cancelled or terminated, and a
 * slow peer would stall whoever called us.  So every connection here is
 * made with PQconnectStartParams/PQconnectPoll and every statement sent
 * with PQsendQuery*, and we sleep in WaitLatchOrSocket (or one
 * WaitEventSet for several peers) with the latch in the set: SIGTERM, a
 * query cancel and postmaster death are noticed while we wait, as in
 * pg_cron and postgres_fdw.  When the time is up the connection is closed
 * without waiting and the caller gets an error string.  No cancel request
 * is sent (libpq < 17's PQcancel blocks on a peer that never answers it):
 * fleet connections ask the peer to end its own statements with
 * statement_timeout in the startup options (remote_bound_statements).
 *
 * Errors never contain a password: libpq may echo parts of the connection
 * parameters, so every message is scrubbed of the password values it was
 * given before it leaves this file.
 *
 * Connection parameters of a PostgreSQL peer come from a postgres_fdw
 * foreign server and the current user's (or PUBLIC) user mapping, built
 * like postgres_fdw and dblink build them: the libpq options among the
 * server's and the mapping's options; credentials stay in the catalog
 * (pg_user_mapping, readable by superusers only) and in these arrays.
 *
 * Owns: connecting, sending, waiting, closing, scrubbing.  Must not
 * decide what to run or where (fleet.c, loopback.c do).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/reloptions.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "lib/stringinfo.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "remote.h"

#define RC_CONNECTING	0
#define RC_RUNNING		1
#define RC_DONE			2

#define SCRUBBED		"********"

/*
 * msg with every non-empty password among keywords/values replaced, on
 * one line.  palloc'd.
 */
/* Replace every occurrence of secret in *out. */
static void
scrub_one(char **out, const char *secret)
{
	char	   *hit;
	size_t		slen;

	if (secret == NULL || secret[0] == '\0')
		return;
	slen = strlen(secret);
	while ((hit = strstr(*out, secret)) != NULL)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		appendBinaryStringInfo(&buf, *out, hit - *out);
		appendStringInfoString(&buf, SCRUBBED);
		appendStringInfoString(&buf, hit + slen);
		*out = buf.data;
	}
}

/* A first "dbname" is a connection string (expand_dbname), as in libpq. */
static bool
expands_dbname(const char *const *keywords)
{
	return keywords && keywords[0] && strcmp(keywords[0], "dbname") == 0;
}

char *
remote_scrub(const char *msg, const char *const *keywords,
			 const char *const *values)
{
	char	   *out = pstrdup(msg ? msg : "");
	int			len;

	for (int i = 0; keywords && keywords[i]; i++)
		if (strcmp(keywords[i], "password") == 0)
			scrub_one(&out, values[i]);
	if (expands_dbname(keywords) && values[0])
	{
		PQconninfoOption *opts = PQconninfoParse(values[0], NULL);

		for (PQconninfoOption *o = opts; o && o->keyword; o++)
			if (strcmp(o->keyword, "password") == 0)
				scrub_one(&out, o->val);
		if (opts)
			PQconninfoFree(opts);
	}
	/* one line: libpq continues messages on indented lines */
	len = strlen(out);
	while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
		out[--len] = '\0';
	{
		char	   *r = out,
				   *w = out;

		while (*r)
		{
			if (*r == '\n' || *r == '\r')
			{
				while (r[1] == ' ' || r[1] == '\t' || r[1] == '\n' || r[1] == '\r')
					r++;
				*w++ = ' ';
				r++;
			}
			else
				*w++ = *r++;
		}
		*w = '\0';
	}
	return out;
}

static long
ms_left(TimestampTz deadline)
{
	TimestampTz now = GetCurrentTimestamp();

	if (now >= deadline)
		return 0;
	return (long) ((deadline - now + 999) / 1000);
}

static double
ms_since(TimestampTz start)
{
	return (double) (GetCurrentTimestamp() - start) / 1000.0;
}

/*
 * Close conn now, without waiting for the peer.  No cancel request is ever
 * sent: libpq < 17's PQcancel blocks until the peer's postmaster closes the
 * cancel connection, which a hung or hostile peer never does (the backend
 * then sits in recvfrom, deaf to pg_terminate_backend).  A statement that
 * outlives our timeout is ended by the peer itself: fleet connections carry
 * statement_timeout in their startup options (remote_bound_statements).
 * Non-blocking, PQfinish's Terminate message is sent if the socket takes it
 * and dropped otherwise.
 */
static void
finish_now(PGconn *conn)
{
	if (conn == NULL)
		return;
	(void) PQsetnonblocking(conn, 1);
	PQfinish(conn);
}

PGconn *
remote_connect(const char *const *keywords, const char *const *values,
			   int timeout_ms, char **error)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	PGconn	   *conn;
	PostgresPollingStatusType poll = PGRES_POLLING_WRITING;

	*error = NULL;
	conn = PQconnectStartParams(keywords, values, expands_dbname(keywords));
	if (conn == NULL)
	{
		*error = pstrdup("out of memory");
		return NULL;
	}
	PG_TRY();
	{
		while (PQstatus(conn) != CONNECTION_BAD &&
			   poll != PGRES_POLLING_OK && poll != PGRES_POLLING_FAILED)
		{
			long		left = ms_left(deadline);
			int			rc;

			if (left <= 0)
				break;
			rc = WaitLatchOrSocket(MyLatch,
								   WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH |
								   (poll == PGRES_POLLING_READING ? WL_SOCKET_READABLE : WL_SOCKET_WRITEABLE),
								   PQsocket(conn), left, PG_WAIT_EXTENSION);
			if (rc & WL_LATCH_SET)
			{
				ResetLatch(MyLatch);
				CHECK_FOR_INTERRUPTS();
			}
			if (rc & (WL_SOCKET_READABLE | WL_SOCKET_WRITEABLE))
				poll = PQconnectPoll(conn);
		}
	}
	PG_CATCH();
	{
		finish_now(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (poll == PGRES_POLLING_OK && PQstatus(conn) == CONNECTION_OK)
		return conn;
	if (PQstatus(conn) == CONNECTION_BAD || poll == PGRES_POLLING_FAILED)
		*error = remote_scrub(PQerrorMessage(conn), keywords, values);
	else
		*error = psprintf("could not connect within %d ms", timeout_ms);
	finish_now(conn);
	return NULL;
}

PGresult *
remote_exec(PGconn *conn, const char *sql, int nparams,
			const char *const *params, int timeout_ms, char **error)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	PGresult   *last = NULL;
	bool		timed_out = false;

	*error = NULL;
	/* no parameters: the simple protocol, which PgBouncer's console needs */
	if (nparams == 0 ? !PQsendQuery(conn, sql)
		: !PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
	{
		*error = remote_scrub(PQerrorMessage(conn), NULL, NULL);
		return NULL;
	}
	PG_TRY();
	{
		for (;;)
		{
			PGresult   *res;

			while (PQisBusy(conn))
			{
				long		left = ms_left(deadline);
				int			rc;

				if (left <= 0)
				{
					timed_out = true;
					break;
				}
				rc = WaitLatchOrSocket(MyLatch,
									   WL_LATCH_SET | WL_SOCKET_READABLE | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
									   PQsocket(conn), left, PG_WAIT_EXTENSION);
				if (rc & WL_LATCH_SET)
				{
					ResetLatch(MyLatch);
					CHECK_FOR_INTERRUPTS();
				}
				if ((rc & WL_SOCKET_READABLE) && !PQconsumeInput(conn))
				{
					*error = remote_scrub(PQerrorMessage(conn), NULL, NULL);
					break;
				}
			}
			if (timed_out || *error)
				break;
			res = PQgetResult(conn);
			if (res == NULL)
				break;
			if (PQresultStatus(res) != PGRES_COMMAND_OK &&
				PQresultStatus(res) != PGRES_TUPLES_OK && *error == NULL)
				*error = remote_scrub(PQresultErrorMessage(res), NULL, NULL);
			if (last)
				PQclear(last);
			last = res;
		}
	}
	PG_CATCH();
	{
		/* interrupted: the caller closes conn (remote_close, no waiting) */
		if (last)
			PQclear(last);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (timed_out)
	{
		/* the peer's own statement_timeout ends it; the caller closes conn */
		*error = psprintf("timed out after %d ms", timeout_ms);
	}
	if (*error)
	{
		if (last)
			PQclear(last);
		return NULL;
	}
	return last;
}

void
remote_close(PGconn *conn)
{
	if (conn)
		finish_now(conn);
}

/* Is keyword a libpq connection option we pass on (not a debug one)? */
static bool
is_libpq_option(PQconninfoOption *defaults, const char *keyword)
{
	for (PQconninfoOption *o = defaults; o && o->keyword; o++)
		if (strcmp(o->keyword, keyword) == 0)
			return strchr(o->dispchar, 'D') == NULL &&
				strcmp(keyword, "client_encoding") != 0 &&
				strcmp(keyword, "fallback_application_name") != 0 &&
				strcmp(keyword, "replication") != 0;
	return false;
}

static List *
mapping_options(Oid userid, Oid serverid)
{
	HeapTuple	tp;
	List	   *options = NIL;

	tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(userid),
						 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(InvalidOid),
							 ObjectIdGetDatum(serverid));
	if (HeapTupleIsValid(tp))
	{
		bool		isnull;
		Datum		d = SysCacheGetAttr(USERMAPPINGUSERSERVER, tp,
										Anum_pg_user_mapping_umoptions, &isnull);

		if (!isnull)
			options = untransformRelOptions(d);
		ReleaseSysCache(tp);
	}
	return options;
}

void
remote_server_params(const char *server, const char ***keywords,
					 const char ***values)
{
	ForeignServer *fs = GetForeignServerByName(server, false);
	List	   *umopts = mapping_options(GetUserId(), fs->serverid);
	PQconninfoOption *defaults = PQconndefaults();
	const char **kw;
	const char **val;
	int			n = 0;
	ListCell   *lc;

	kw = palloc0(sizeof(char *) * (list_length(fs->options) + list_length(umopts) + 2));
	val = palloc0(sizeof(char *) * (list_length(fs->options) + list_length(umopts) + 2));
	/* first, so that a server's dbname is taken literally, never expanded */
	kw[n] = "fallback_application_name";
	val[n++] = "matter_capacity fleet";
	foreach(lc, fs->options)
	{
		DefElem    *d = lfirst(lc);

		if (is_libpq_option(defaults, d->defname))
		{
			kw[n] = d->defname;
			val[n++] = defGetString(d);
		}
	}
	foreach(lc, umopts)
	{
		DefElem    *d = lfirst(lc);

		if (is_libpq_option(defaults, d->defname))
		{
			kw[n] = d->defname;
			val[n++] = defGetString(d);
		}
	}
	kw[n] = NULL;
	val[n] = NULL;
	if (defaults)
		PQconninfoFree(defaults);
	*keywords = kw;
	*values = val;
}

/*
 * Append to keywords/values (as built by remote_server_params) startup
 * options that make the peer end any statement of this connection after
 * timeout_ms itself: "-c statement_timeout=N" after the server's own
 * options, if any (ours comes last: a later -c wins, so the bound holds).
 * libpq takes the last of repeated keywords.
 */
void
remote_bound_statements(const char ***keywords, const char ***values,
						int timeout_ms)
{
	const char **kw = *keywords;
	const char **val = *values;
	const char *prior = NULL;
	const char **nkw;
	const char **nval;
	int			n = 0;

	for (; kw[n]; n++)
		if (strcmp(kw[n], "options") == 0)
			prior = val[n];
	nkw = palloc0(sizeof(char *) * (n + 2));
	nval = palloc0(sizeof(char *) * (n + 2));
	memcpy(nkw, kw, sizeof(char *) * n);
	memcpy(nval, val, sizeof(char *) * n);
	nkw[n] = "options";
	nval[n] = psprintf("%s%s-c statement_timeout=%d",
					   prior ? prior : "", prior ? " " : "", Max(timeout_ms, 1));
	*keywords = nkw;
	*values = nval;
}

/* ---- several peers at once ---- */

static void
call_fail(RemoteCall *c, const char *msg)
{
	if (c->error == NULL)
		c->error = remote_scrub(msg, c->keywords, c->values);
	if (c->result)
	{
		PQclear(c->result);
		c->result = NULL;
	}
	if (c->conn)
		finish_now(c->conn);
	c->conn = NULL;
	c->state = RC_DONE;
}

/* The socket of c is ready: take the next step. */
static void
call_advance(RemoteCall *c, TimestampTz start, TimestampTz *sent_at)
{
	if (c->state == RC_CONNECTING)
	{
		c->poll = PQconnectPoll(c->conn);
		if (c->poll == PGRES_POLLING_FAILED || PQstatus(c->conn) == CONNECTION_BAD)
			call_fail(c, PQerrorMessage(c->conn));
		else if (c->poll == PGRES_POLLING_OK)
		{
			c->connect_ms = ms_since(start);
			*sent_at = GetCurrentTimestamp();
			if (!PQsendQuery(c->conn, c->sql))
				call_fail(c, PQerrorMessage(c->conn));
			else
				c->state = RC_RUNNING;
		}
		return;
	}
	if (!PQconsumeInput(c->conn))
	{
		call_fail(c, PQerrorMessage(c->conn));
		return;
	}
	while (!PQisBusy(c->conn))
	{
		PGresult   *res = PQgetResult(c->conn);

		if (res == NULL)
		{
			c->rtt_ms = ms_since(*sent_at);
			finish_now(c->conn);
			c->conn = NULL;
			c->state = RC_DONE;
			if (c->error && c->result)
			{
				PQclear(c->result);
				c->result = NULL;
			}
			return;
		}
		if (PQresultStatus(res) != PGRES_COMMAND_OK &&
			PQresultStatus(res) != PGRES_TUPLES_OK && c->error == NULL)
			c->error = remote_scrub(PQresultErrorMessage(res), c->keywords, c->values);
		if (c->result)
			PQclear(c->result);
		c->result = res;
	}
}

/*
 * Run calls[i].sql on each peer concurrently: all connections are started
 * at once and every socket waits in one WaitEventSet with our latch, so the
 * whole takes about as long as the slowest peer, never more than
 * timeout_ms (plus the cancels of timed-out statements).
 */
void
remote_exec_many(RemoteCall *calls, int ncalls, int timeout_ms)
{
	TimestampTz start = GetCurrentTimestamp();
	TimestampTz deadline = TimestampTzPlusMilliseconds(start, timeout_ms);
	TimestampTz *sent_at = palloc0(sizeof(TimestampTz) * Max(ncalls, 1));
	WaitEvent  *occurred = palloc(sizeof(WaitEvent) * (ncalls + 2));
	WaitEventSet *volatile set = NULL;

	for (int i = 0; i < ncalls; i++)
	{
		RemoteCall *c = &calls[i];

		c->result = NULL;
		c->error = NULL;
		c->connect_ms = c->rtt_ms = -1;
		c->state = RC_CONNECTING;
		c->poll = PGRES_POLLING_WRITING;
		c->conn = PQconnectStartParams(c->keywords, c->values, expands_dbname(c->keywords));
		if (c->conn == NULL)
		{
			c->error = pstrdup("out of memory");
			c->state = RC_DONE;
		}
		else if (PQstatus(c->conn) == CONNECTION_BAD)
			call_fail(c, PQerrorMessage(c->conn));
	}

	PG_TRY();
	{
		for (;;)
		{
			int			active = 0;
			long		left = ms_left(deadline);
			int			nready;

			for (int i = 0; i < ncalls; i++)
				if (calls[i].state != RC_DONE)
					active++;
			if (active == 0)
				break;
			if (left <= 0)
			{
				for (int i = 0; i < ncalls; i++)
				{
					RemoteCall *c = &calls[i];

					if (c->state == RC_DONE)
						continue;
					if (c->state == RC_RUNNING)
						call_fail(c, psprintf("timed out after %d ms", timeout_ms));
					else
						call_fail(c, psprintf("could not connect within %d ms", timeout_ms));
				}
				break;
			}

			/* sockets change while connecting: a fresh set each round */
#if PG_VERSION_NUM >= 170000
			set = CreateWaitEventSet(NULL, active + 2);
#else
			set = CreateWaitEventSet(CurrentMemoryContext, active + 2);
#endif
			AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
			AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
			active = 0;
			for (int i = 0; i < ncalls; i++)
			{
				RemoteCall *c = &calls[i];

				if (c->state != RC_DONE && PQsocket(c->conn) == PGINVALID_SOCKET)
					call_fail(c, "connection lost");
				if (c->state == RC_DONE)
					continue;
				AddWaitEventToSet(set,
								  (c->state == RC_CONNECTING && c->poll == PGRES_POLLING_WRITING)
								  ? WL_SOCKET_WRITEABLE : WL_SOCKET_READABLE,
								  PQsocket(c->conn), NULL, c);
				active++;
			}
			if (active == 0)
			{
				FreeWaitEventSet(set);
				set = NULL;
				continue;
			}
			nready = WaitEventSetWait(set, left, occurred, active + 2, PG_WAIT_EXTENSION);
			FreeWaitEventSet(set);
			set = NULL;
			for (int e = 0; e < nready; e++)
			{
				if (occurred[e].events & WL_LATCH_SET)
				{
					ResetLatch(MyLatch);
					CHECK_FOR_INTERRUPTS();
				}
				else if (occurred[e].user_data)
				{
					RemoteCall *c = (RemoteCall *) occurred[e].user_data;

					if (c->state != RC_DONE)
						call_advance(c, start, &sent_at[c - calls]);
				}
			}
		}
	}
	PG_CATCH();
	{
		if (set)
			FreeWaitEventSet(set);
		for (int i = 0; i < ncalls; i++)
		{
			if (calls[i].conn)
				finish_now(calls[i].conn);
			calls[i].conn = NULL;
			if (calls[i].result)
				PQclear(calls[i].result);
			calls[i].result = NULL;
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
}
