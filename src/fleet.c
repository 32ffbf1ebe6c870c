/*-------------------------------------------------------------------------
 * fleet.c
 *		The fleet seen from the hub: registering members, polling them
 *		concurrently for capacity_fleet, recording their figures.
 *
 * A member is another PostgreSQL server (a replica, a tier cluster, a
 * region), reached through a postgres_fdw foreign server and the user
 * mapping of the role that polls (the extension owner: capacity_fleet's
 * function is SECURITY DEFINER), or a PgBouncer, reached through its admin
 * console with a conninfo that carries no password (a password file does).
 * Credentials therefore live only where PostgreSQL and libpq keep them
 * (pg_user_mapping, readable by superusers; the passfile), and every libpq
 * message is scrubbed by remote.c.
 *
 * Polling: every member gets one connection and one statement, all sent at
 * once and waited for together on one WaitEventSet (remote_exec_many), each
 * bounded by matter_capacity.fleet_timeout.  A member that is down, slow or
 * refuses us is a row saying so; nothing here raises an error for it.
 * docs/fleet.md explains why not postgres_fdw's async foreign scans (an
 * unreachable server is an ERROR there, for the whole query).
 *
 * Owns: the member checks at registration, the statements run on members,
 * turning their answers into figures.  Must not write samples itself (the
 * sampler's write path does) nor evaluate triggers.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "matter_capacity.h"
#include "fleet.h"
#include "remote.h"

PG_FUNCTION_INFO_V1(capacity_fleet_check);

/* What identifies a PostgreSQL member, and whether it is us. */
#define IDENTITY_SQL \
	"SELECT current_setting('server_version_num'), pg_catalog.pg_is_in_recovery()::text, " \
	"(SELECT s.system_identifier::text FROM pg_catalog.pg_control_system() s), " \
	"pg_catalog.current_database()::text"

/*
 * Connection parameters of a pooler member: its conninfo parsed into
 * keyword/value arrays (never given to libpq as one string that it could
 * echo in an error), dbname forced to the admin console.
 */
static void
pooler_params(const char *member, const char *conninfo,
			  const char ***keywords, const char ***values)
{
	PQconninfoOption *opts;
	char	   *parse_error = NULL;
	const char **kw;
	const char **val;
	int			n = 0,
				count = 0;

	opts = PQconninfoParse(conninfo, &parse_error);
	if (opts == NULL)
	{
		/* libpq's message may quote the string: not repeated here */
		if (parse_error)
			PQfreemem(parse_error);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: the connection string of pooler member \"%s\" is not valid", member),
				 errhint("Use keyword=value pairs, e.g. 'host=/run/pgbouncer port=6432 user=stats'; keep the password in a password file.")));
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		count++;
	kw = palloc0(sizeof(char *) * (count + 3));
	val = palloc0(sizeof(char *) * (count + 3));
	for (PQconninfoOption *o = opts; o->keyword; o++)
	{
		if (o->val == NULL || strcmp(o->keyword, "dbname") == 0 ||
			strcmp(o->keyword, "fallback_application_name") == 0)
			continue;
		kw[n] = pstrdup(o->keyword);
		val[n++] = pstrdup(o->val);
	}
	kw[n] = "dbname";
	val[n++] = "pgbouncer";
	kw[n] = "fallback_application_name";
	val[n++] = "matter_capacity fleet";
	PQconninfoFree(opts);
	*keywords = kw;
	*values = val;
}

/* Does a pooler conninfo carry a password?  (It must not.) */
static bool
conninfo_has_password(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	bool		found = false;

	if (opts == NULL)
		return false;			/* reported by pooler_params */
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "password") == 0 && o->val != NULL)
			found = true;
	PQconninfoFree(opts);
	return found;
}

/* Is there a user mapping for the current role (or PUBLIC) on server? */
static bool
has_user_mapping(Oid serverid)
{
	UserMapping *um;
	volatile bool found = true;
	MemoryContext ctx = CurrentMemoryContext;

	/* GetUserMapping raises when there is none; it looks up PUBLIC too */
	PG_TRY();
	{
		um = GetUserMapping(GetUserId(), serverid);
		(void) um;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(ctx);
		FlushErrorState();
		found = false;
	}
	PG_END_TRY();
	return found;
}

/*
 * capacity_fleet_check(name, kind, target) RETURNS jsonb
 *
 * Connects to a prospective member within matter_capacity.fleet_timeout and
 * raises a clear error if it cannot be a member: unknown server, no user
 * mapping, unreachable, this very database, a pooler that is not
 * PgBouncer.  Returns what it learnt (server version, standby or not).
 */
Datum
capacity_fleet_check(PG_FUNCTION_ARGS)
{
	char	   *member = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *kind = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *target = text_to_cstring(PG_GETARG_TEXT_PP(2));
	const char **keywords;
	const char **values;
	PGconn	   *conn;
	PGresult   *res;
	char	   *error = NULL;
	bool		pooler = strcmp(kind, "pooler") == 0;
	char	   *out;

	if (pooler)
	{
		if (conninfo_has_password(target))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("matter_capacity: the connection string of pooler member \"%s\" contains a password", member),
					 errhint("Remove it and put the password in the password file of the server's OS user (~/.pgpass, or passfile=...).")));
		pooler_params(member, target, &keywords, &values);
	}
	else
	{
		ForeignServer *fs = GetForeignServerByName(target, true);

		if (fs == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("matter_capacity: foreign server \"%s\" for member \"%s\" does not exist", target, member),
					 errhint("CREATE SERVER %s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host ..., port ..., dbname ...) and a user mapping first.",
							 quote_identifier(target))));
		if (!has_user_mapping(fs->serverid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("matter_capacity: no user mapping for role \"%s\" on server \"%s\" (member \"%s\")",
							GetUserNameFromId(GetUserId(), false), target, member),
					 errhint("CREATE USER MAPPING FOR CURRENT_USER SERVER %s OPTIONS (user ..., password ...).",
							 quote_identifier(target))));
		remote_server_params(target, &keywords, &values);
	}

	conn = remote_connect(keywords, values, mc_fleet_timeout_ms, &error);
	if (conn == NULL && pooler && strstr(error, "database \"pgbouncer\" does not exist"))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("matter_capacity: pooler member \"%s\" is not a PgBouncer admin console", member),
				 errdetail("%s", error),
				 errhint("Point the connection string at PgBouncer's listen address with a user listed in its stats_users or admin_users.")));
	if (conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("matter_capacity: member \"%s\" is unreachable", member),
				 errdetail("%s", error),
				 errhint("Check the %s and that the server is up; nothing was registered.",
						 pooler ? "connection string" : "foreign server's options and the user mapping")));

	res = remote_exec(conn, pooler ? "SHOW VERSION" : IDENTITY_SQL, 0, NULL,
					  mc_fleet_timeout_ms, &error);
	remote_close(conn);
	if (pooler)
	{
		if (res == NULL || PQntuples(res) < 1 || PQnfields(res) < 1 ||
			strncmp(PQgetvalue(res, 0, 0), "PgBouncer", 9) != 0)
		{
			if (res)
				PQclear(res);
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("matter_capacity: pooler member \"%s\" is not a PgBouncer admin console", member),
					 errhint("Point the connection string at PgBouncer's listen address with a user listed in its stats_users or admin_users.")));
		}
		out = psprintf("{\"server_version\": \"%s\"}", PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	else
	{
		Datum		sysid;
		char	   *local_sysid;

		if (res == NULL || PQntuples(res) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
					 errmsg("matter_capacity: member \"%s\" did not answer", member),
					 errdetail("%s", error ? error : "no row"),
					 errhint("The role of the user mapping needs to run pg_control_system(); nothing was registered.")));
		sysid = DirectFunctionCall1(int8out,
									Int64GetDatum((int64) GetSystemIdentifier()));
		local_sysid = DatumGetCString(sysid);
		if (strcmp(PQgetvalue(res, 0, 2), local_sysid) == 0 &&
			strcmp(PQgetvalue(res, 0, 1), RecoveryInProgress() ? "true" : "false") == 0 &&
			strcmp(PQgetvalue(res, 0, 3), get_database_name(MyDatabaseId)) == 0)
		{
			PQclear(res);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("matter_capacity: member \"%s\" (server \"%s\") is this very database", member, target),
					 errhint("The hub measures itself; register other servers (replicas, tier clusters, regions).")));
		}
		out = psprintf("{\"server_version_num\": %s, \"in_recovery\": %s}",
					   PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
		PQclear(res);
	}
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out)));
}
