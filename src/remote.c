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
 * like postgres_fdw builds them: the libpq options postgres_fdw accepts
 * in each, never one that sets the peer's settings; credentials stay in
 * the catalog (pg_user_mapping, readable by superusers only) and in these
 * arrays.  postgres_fdw's password rule is applied at every connection
 * (remote_password_rule before, remote_password_used after), and the
 * session is pinned as postgres_fdw pins it (remote_pin_session).
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

/*
 * Is this libpq option a secret?  Those libpq itself hides: dispchar "*"
 * in PQconndefaults (password, sslpassword, and any a later libpq adds).
 * A target carrying one is refused, and its value is scrubbed from every
 * message.
 */
bool
remote_secret_option(const char *keyword)
{
	static List *secrets = NIL;
	static bool read = false;
	ListCell   *lc;

	if (!read)
	{
		PQconninfoOption *defs = PQconndefaults();
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		for (PQconninfoOption *o = defs; o && o->keyword; o++)
			if (o->dispchar && o->dispchar[0] == '*')
				secrets = lappend(secrets, pstrdup(o->keyword));
		MemoryContextSwitchTo(old);
		if (defs)
			PQconninfoFree(defs);
		if (secrets == NIL)		/* out of memory in libpq: the known ones */
		{
			old = MemoryContextSwitchTo(TopMemoryContext);
			secrets = list_make2(pstrdup("password"), pstrdup("sslpassword"));
			MemoryContextSwitchTo(old);
		}
		read = true;
	}
	foreach(lc, secrets)
		if (strcmp(keyword, lfirst(lc)) == 0)
			return true;
	return false;
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
		if (remote_secret_option(keywords[i]))
			scrub_one(&out, values[i]);
	if (expands_dbname(keywords) && values[0])
	{
		PQconninfoOption *opts = PQconninfoParse(values[0], NULL);

		for (PQconninfoOption *o = opts; o && o->keyword; o++)
			if (remote_secret_option(o->keyword))
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

/*
 * Is keyword a libpq option postgres_fdw accepts in this catalog (server or
 * user mapping), and one we pass on?  As postgres_fdw's option.c: no debug
 * options, "user" and the secret ('*') options plus sslcert/sslkey only in
 * a user mapping, everything else only on a server.  Never a startup
 * option that sets server settings ("options", "application_name",
 * "client_encoding", "replication"): whoever may ALTER the server (its
 * owner, not necessarily a superuser) would otherwise choose the
 * search_path, or any other setting, of the session we run as the polling
 * role (the extension owner).  We set our own (remote_pin_session).
 */
static bool
is_libpq_option(PQconninfoOption *defaults, const char *keyword, bool mapping)
{
	for (PQconninfoOption *o = defaults; o && o->keyword; o++)
		if (strcmp(o->keyword, keyword) == 0)
		{
			bool		in_mapping;

			if (strchr(o->dispchar, 'D') != NULL ||
				strcmp(keyword, "options") == 0 ||
				strcmp(keyword, "application_name") == 0 ||
				strcmp(keyword, "client_encoding") == 0 ||
				strcmp(keyword, "fallback_application_name") == 0 ||
				strcmp(keyword, "replication") == 0)
				return false;
			in_mapping = strcmp(keyword, "user") == 0 ||
				strchr(o->dispchar, '*') != NULL ||
				strcmp(keyword, "sslcert") == 0 ||
				strcmp(keyword, "sslkey") == 0;
			if (mapping)
				return in_mapping;
			return strcmp(keyword, "user") != 0 && strchr(o->dispchar, '*') == NULL;
		}
	return false;
}

/* The options of userid's user mapping on serverid, else of PUBLIC's. */
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

		if (is_libpq_option(defaults, d->defname, false))
		{
			kw[n] = d->defname;
			val[n++] = defGetString(d);
		}
	}
	foreach(lc, umopts)
	{
		DefElem    *d = lfirst(lc);

		if (is_libpq_option(defaults, d->defname, true))
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
 * postgres_fdw's password rule, for the connection remote_server_params
 * builds for the current user.  A connection without a password of its own
 * would use the server OS user's identity (trust, peer, ~/.pgpass), so it
 * is allowed only when no one but superusers chose where it goes and as
 * whom: the current user (the polling role) is a superuser AND so is the
 * server's owner (who alone, with superusers, may ALTER SERVER, and who
 * wrote any PUBLIC mapping).  postgres_fdw exempts a superuser user
 * whatever the server's owner; we do not, because our user is the
 * extension owner acting unattended (the worker, any pg_monitor reader of
 * capacity_fleet), not someone choosing to use that server.  A user mapping
 * with password_required 'false' (which postgres_fdw lets only a superuser
 * set) is exempt, as in postgres_fdw.
 *
 * NULL when the connection may be attempted; *must_use_password then says
 * whether it must also have used the password (remote_password_used).
 * Otherwise a message (no secrets in it).
 */
const char *
remote_password_rule(const char *server, const char *const *keywords,
					 const char *const *values, bool *must_use_password)
{
	ForeignServer *fs = GetForeignServerByName(server, false);
	ListCell   *lc;

	*must_use_password = false;
	if (superuser_arg(GetUserId()) && superuser_arg(fs->owner))
		return NULL;
	foreach(lc, mapping_options(GetUserId(), fs->serverid))
	{
		DefElem    *d = lfirst(lc);

		if (strcmp(d->defname, "password_required") == 0 && !defGetBoolean(d))
			return NULL;
	}
	*must_use_password = true;
	for (int i = 0; keywords[i]; i++)
		if (strcmp(keywords[i], "password") == 0 && values[i] && values[i][0])
			return NULL;
	return psprintf("the user mapping on server \"%s\" has no password, which is required because %s",
					server,
					superuser_arg(GetUserId())
					? "the server's owner is not a superuser (it may point the server anywhere)"
					: "the extension owner is not a superuser");
}

/*
 * After connecting: NULL if the connection used a password or need not
 * have (must_use_password from remote_password_rule); else a message, and
 * the caller drops the connection without running anything on it.  As
 * postgres_fdw's check after connecting: a peer that did not ask for the
 * password (trust, peer) let us in as the server's OS identity.
 */
const char *
remote_password_used(PGconn *conn, bool must_use_password)
{
	if (!must_use_password || PQconnectionUsedPassword(conn))
		return NULL;
	return "the connection did not use the user mapping's password (the peer's authentication asked for none), "
		"which is required unless the server and the polling role are superusers' or the mapping says password_required 'false'";
}

/*
 * Append one startup option ("-c name=value") to keywords/values: to the
 * "options" keyword already there (ours only: remote_server_params never
 * takes one from the catalog), else as a new one.  New arrays.
 */
static void
add_startup_option(const char ***keywords, const char ***values, const char *option)
{
	const char **kw = *keywords;
	const char **val = *values;
	const char **nkw;
	const char **nval;
	int			n = 0;

	for (; kw[n]; n++)
		;
	nkw = palloc0(sizeof(char *) * (n + 2));
	nval = palloc0(sizeof(char *) * (n + 2));
	memcpy(nkw, kw, sizeof(char *) * n);
	memcpy(nval, val, sizeof(char *) * n);
	for (int i = 0; i < n; i++)
		if (strcmp(nkw[i], "options") == 0)
		{
			nval[i] = psprintf("%s %s", nval[i], option);
			*keywords = nkw;
			*values = nval;
			return;
		}
	nkw[n] = "options";
	nval[n] = pstrdup(option);
	*keywords = nkw;
	*values = nval;
}

/*
 * Add "-c statement_timeout=N" to the startup options, so that the peer
 * itself ends any statement of this connection after timeout_ms.
 */
void
remote_bound_statements(const char ***keywords, const char ***values,
						int timeout_ms)
{
	add_startup_option(keywords, values,
					   psprintf("-c statement_timeout=%d", Max(timeout_ms, 1)));
}

/*
 * Add "-c search_path=pg_catalog" to the startup options, as postgres_fdw
 * sets it on every connection: no object of the peer's users (an operator
 * "=" in a schema of theirs, a role's search_path) is ever resolved by what
 * we run there, whoever we run it as.  A startup option outranks the
 * role's and database's settings.
 */
void
remote_pin_session(const char ***keywords, const char ***values)
{
	add_startup_option(keywords, values, "-c search_path=pg_catalog");
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
			const char *refused = remote_password_used(c->conn, c->require_password);

			if (refused)
			{
				/* nothing is sent on a connection that broke the rule */
				call_fail(c, refused);
				return;
			}
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
