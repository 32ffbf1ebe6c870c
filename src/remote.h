/*-------------------------------------------------------------------------
 * remote.h
 *		libpq connections made from a backend or the worker, asynchronous
 *		on the latch, each call bounded by a timeout.
 *-------------------------------------------------------------------------
 */
#ifndef MC_REMOTE_H
#define MC_REMOTE_H

#include "postgres.h"

#include "libpq-fe.h"

/*
 * Connect with PQconnectStartParams + PQconnectPoll, waiting with
 * WaitLatchOrSocket and CHECK_FOR_INTERRUPTS; gives up after timeout_ms.
 * NULL on failure, with *error set to a message that never contains a
 * password.  As in libpq's expand_dbname, a FIRST keyword "dbname" is a
 * connection string (a setting like matter_capacity.loopback_conninfo);
 * any other dbname is taken literally (remote_server_params never puts
 * dbname first).  Later keywords override what it sets.
 */
extern PGconn *remote_connect(const char *const *keywords,
							  const char *const *values,
							  int timeout_ms, char **error);

/*
 * Send one statement (PQsendQueryParams, text results; with nparams 0
 * PQsendQuery, the simple protocol PgBouncer's console needs), wait on the latch;
 * on timeout return NULL (no cancel request: see
 * remote_bound_statements; the caller closes conn) with *error "timed out after N
 * ms".  Returns the last result (caller PQclears it), NULL with *error on
 * failure.
 */
extern PGresult *remote_exec(PGconn *conn, const char *sql, int nparams,
							 const char *const *params, int timeout_ms,
							 char **error);

/*
 * conninfo keywords/values (NULL-terminated, palloc'd) for a postgres_fdw
 * foreign server plus the current user's (or PUBLIC) user mapping, like
 * postgres_fdw builds them: only the libpq options postgres_fdw accepts in
 * each, never a startup option that sets server settings ("options",
 * "application_name"); passwords stay in these arrays only.  ERROR if the
 * server does not exist.  Check remote_password_rule before connecting
 * and remote_password_used after.
 */
extern void remote_server_params(const char *server, const char ***keywords,
								 const char ***values);

/*
 * postgres_fdw's password rule for those parameters (see remote.c): NULL
 * when the connection may be attempted, with *must_use_password; else why
 * not (no secret in it).
 */
extern const char *remote_password_rule(const char *server,
										const char *const *keywords,
										const char *const *values,
										bool *must_use_password);

/* After connecting: NULL, or why the connection must be dropped unused. */
extern const char *remote_password_used(PGconn *conn, bool must_use_password);

/*
 * Add "-c statement_timeout=timeout_ms" to the startup options, so that
 * the peer itself ends a statement we stopped waiting for.  Not for
 * PgBouncer (it refuses unknown startup parameters).
 */
extern void remote_bound_statements(const char ***keywords, const char ***values,
									int timeout_ms);

/*
 * Add "-c search_path=pg_catalog" to the startup options (as postgres_fdw
 * pins every session it opens).  Not for PgBouncer.
 */
extern void remote_pin_session(const char ***keywords, const char ***values);

/* Close without waiting for the peer (non-blocking PQfinish). */
extern void remote_close(PGconn *conn);

/*
 * Several statements on several servers at once: each RemoteCall is
 * connected and run concurrently, all waiting together on one
 * WaitEventSet with the latch, each bounded by its own deadline.  A call
 * that fails or times out has result NULL and error set; the others go on.
 */
typedef struct RemoteCall
{
	/* in */
	const char *const *keywords;
	const char *const *values;
	const char *sql;			/* no parameters */
	bool		require_password;	/* drop it unused if no password was used
									 * (remote_password_rule) */
	/* out */
	PGresult   *result;			/* caller PQclears */
	char	   *error;			/* palloc'd, password-free */
	double		connect_ms;		/* time to a ready connection */
	double		rtt_ms;			/* time from send to result */
	/* private */
	PGconn	   *conn;
	int			state;
	PostgresPollingStatusType poll;
} RemoteCall;

extern void remote_exec_many(RemoteCall *calls, int ncalls, int timeout_ms);

/* Replace every password in keywords/values that occurs in msg. */
extern bool remote_secret_option(const char *keyword);
extern char *remote_scrub(const char *msg, const char *const *keywords,
						  const char *const *values);

#endif							/* MC_REMOTE_H */
