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
 * message is scrubbed by remote.c.  The polling role is the extension
 * owner, acting unattended on servers whose owners may re-point them at any
 * time: postgres_fdw's password rule is applied at every poll, not only at
 * registration, no startup option is taken from the catalog, the member
 * session is pinned (search_path pg_catalog) and the member statement is
 * fully schema-qualified; who answered is re-checked (never the hub
 * itself), and a member's figures are recorded only as finite numbers.
 * docs/security.md, "Fleet members".
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

#include <math.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "commands/dbcommands.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "matter_capacity.h"
#include "catalog.h"
#include "fleet.h"
#include "locks.h"
#include "remote.h"
#include "sampler.h"

PG_FUNCTION_INFO_V1(capacity_fleet_check);

/* What identifies a PostgreSQL member, and whether it is us. */
#define IDENTITY_SQL \
	"SELECT pg_catalog.current_setting('server_version_num'), pg_catalog.pg_is_in_recovery()::pg_catalog.text, " \
	"(SELECT s.system_identifier::pg_catalog.text FROM pg_catalog.pg_control_system() s), " \
	"pg_catalog.current_database()::pg_catalog.text"

/*
 * Is the server that answered (system identifier, pg_is_in_recovery() as
 * text, current database) this very database?  A physical standby of ours
 * shares the identifier but not the recovery state.
 */
static bool
is_this_database(const char *sysid, const char *in_recovery, const char *dbname)
{
	char	   *local_sysid = DatumGetCString(DirectFunctionCall1(int8out,
																  Int64GetDatum((int64) GetSystemIdentifier())));

	return strcmp(sysid, local_sysid) == 0 &&
		strcmp(in_recovery, RecoveryInProgress() ? "true" : "false") == 0 &&
		strcmp(dbname, get_database_name(MyDatabaseId)) == 0;
}

/*
 * Connection parameters of a pooler member: its conninfo parsed into
 * keyword/value arrays (never given to libpq as one string that it could
 * echo in an error), dbname forced to the admin console.
 */
static bool
pooler_params(const char *conninfo, const char ***keywords, const char ***values)
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
		/* libpq's message may quote the string: not repeated anywhere */
		if (parse_error)
			PQfreemem(parse_error);
		return false;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		count++;
	kw = palloc0(sizeof(char *) * (count + 3));
	val = palloc0(sizeof(char *) * (count + 3));
	/* first, so that no dbname is ever expanded (remote.c) */
	kw[n] = "fallback_application_name";
	val[n++] = "matter_capacity fleet";
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
	PQconninfoFree(opts);
	*keywords = kw;
	*values = val;
	return true;
}

/* Does a pooler conninfo carry a password or another secret?  (It must not.) */
static bool
conninfo_has_password(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
	bool		found = false;

	if (opts == NULL)
		return false;			/* reported by pooler_params */
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (remote_secret_option(o->keyword) && o->val != NULL)
			found = true;
	PQconninfoFree(opts);
	return found;
}

/* Does libpq parse conninfo (keyword=value pairs or a URI)? */
static bool
conninfo_parses(const char *conninfo)
{
	PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);

	if (opts == NULL)
		return false;
	PQconninfoFree(opts);
	return true;
}

static char *quote_json(const char *s);

/*
 * A name or target as it may appear in a message: any password it carries
 * (as a conninfo or URI) scrubbed by remote.c's scrubber, and at most
 * SHOWN_MAX bytes (then "…"), so that hostile input is neither leaked nor
 * echoed in full.
 */
#define SHOWN_MAX	63

static const char *
shown(const char *s)
{
	const char *kw[] = {"dbname", NULL};
	const char *val[] = {s, NULL};
	char	   *out = remote_scrub(s, kw, val);
	int			len = strlen(out);

	if (len <= SHOWN_MAX)
		return out;
	len = pg_mbcliplen(out, len, SHOWN_MAX);
	return psprintf("%.*s…", len, out);
}

/* Does a target meant to be a server name look like a connection string? */
static bool
looks_like_conninfo(const char *target)
{
	return strchr(target, '=') != NULL || strstr(target, "://") != NULL;
}

/* Is there a user mapping for the current role (or PUBLIC) on server? */
static bool
has_user_mapping(Oid serverid)
{
	Oid			users[2] = {GetUserId(), InvalidOid};

	for (int i = 0; i < 2; i++)
	{
		HeapTuple	tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(users[i]),
										 ObjectIdGetDatum(serverid));

		if (HeapTupleIsValid(tp))
		{
			ReleaseSysCache(tp);
			return true;
		}
	}
	return false;
}

/*
 * Who may connect without a password of their own: postgres_fdw's rule,
 * applied at every connection (remote_password_rule, remote_password_used;
 * see remote.c for why a superuser-owned server is needed as well).  A
 * pooler member's password is in a password file of the server's OS user
 * and its conninfo in a table only the extension owner writes, so only a
 * superuser owner may have them.  NULL when allowed; *must_use_password
 * says whether the connection must then have used the password.
 */
static const char *
credential_rule(bool pooler, const char *server, const char *const *keywords,
				const char *const *values, bool *must_use_password)
{
	*must_use_password = false;
	if (pooler)
		return superuser_arg(GetUserId()) ? NULL :
			"pooler members need a superuser extension owner (their password is in a password file)";
	return remote_password_rule(server, keywords, values, must_use_password);
}

/*
 * Refuse a target that carries a password (any kind: a pooler's conninfo
 * must not, and where a server name is expected a connection string is a
 * mistake that may well carry one), without echoing it.  These errors hide
 * the statement and context from the server log (errhidestmt): the call
 * itself holds the password, and log_min_error_statement would write it
 * to disk.  Also for kinds not yet validated: capacity_fleet_add runs this
 * before anything else can fail.
 */
static void
refuse_secret_target(const char *member, const char *kind, const char *target)
{
	bool		pooler = kind != NULL && strcmp(kind, "pooler") == 0;
	bool		server_kind = kind != NULL && (strcmp(kind, "replica") == 0 ||
											   strcmp(kind, "tier") == 0 ||
											   strcmp(kind, "region") == 0);

	if (target == NULL)
		return;
	/* never echoed: it may well carry a password */
	if (server_kind && looks_like_conninfo(target))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: kind %s takes a postgres_fdw server name, not a connection string", shown(kind)),
				 errhint("Declare the connection with CREATE SERVER ... FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host ..., port ..., dbname ...) "
						 "and its credentials with CREATE USER MAPPING ... OPTIONS (user ..., password ...); pass the server's name."),
				 errhidestmt(true), errhidecontext(true)));
	if (conninfo_has_password(target))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: the connection string of %s member \"%s\" contains a password",
						pooler ? "pooler" : "fleet", member ? shown(member) : ""),
				 errhint(pooler ? "Remove it and put the password in the password file of the server's OS user (~/.pgpass, or passfile=...)."
						 : "Pass a postgres_fdw server name; the password goes in its user mapping (CREATE USER MAPPING ... OPTIONS (user ..., password ...))."),
				 errhidestmt(true), errhidecontext(true)));
	if ((pooler || looks_like_conninfo(target)) && !conninfo_parses(target))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: the connection string of %s member \"%s\" is not valid",
						pooler ? "pooler" : "fleet", member ? shown(member) : ""),
				 errhint("Use keyword=value pairs, e.g. 'host=/run/pgbouncer port=6432 user=stats'; keep the password in a password file."),
				 errhidestmt(true), errhidecontext(true)));
}

PG_FUNCTION_INFO_V1(capacity_fleet_check_target);

/*
 * capacity_fleet_check_target(name text, kind text, target text) RETURNS void
 *
 * refuse_secret_target for SQL: capacity_fleet_add calls it first, so that
 * no other error of the call (which would log the statement) comes before.
 */
Datum
capacity_fleet_check_target(PG_FUNCTION_ARGS)
{
	refuse_secret_target(PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0)),
						 PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)),
						 PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)));
	PG_RETURN_VOID();
}

/*
 * capacity_fleet_check(name, kind, target) RETURNS jsonb
 *
 * Connects to a prospective member within matter_capacity.fleet_timeout and
 * raises a clear error if it cannot be a member: unknown server, no user
 * mapping, a connection the password rule refuses, unreachable, this very
 * database, a pooler that is not PgBouncer.  Returns what it learnt
 * (server version, standby or not).
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
	bool		must_use_password;
	char	   *out;
	const char *smember = shown(member);

	refuse_secret_target(member, kind, target);
	if (pooler)
	{
		if (!pooler_params(target, &keywords, &values))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("matter_capacity: the connection string of pooler member \"%s\" is not valid", smember),
					 errhint("Use keyword=value pairs, e.g. 'host=/run/pgbouncer port=6432 user=stats'; keep the password in a password file."),
					 errhidestmt(true), errhidecontext(true)));
	}
	else
	{
		ForeignServer *fs = GetForeignServerByName(target, true);

		if (fs == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("matter_capacity: foreign server \"%s\" for member \"%s\" does not exist", shown(target), smember),
					 errhint("CREATE SERVER %s FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host ..., port ..., dbname ...) and a user mapping first.",
							 quote_identifier(shown(target)))));
		if (!has_user_mapping(fs->serverid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("matter_capacity: no user mapping for role \"%s\" on server \"%s\" (member \"%s\")",
							GetUserNameFromId(GetUserId(), false), shown(target), smember),
					 errhint("CREATE USER MAPPING FOR CURRENT_USER SERVER %s OPTIONS (user ..., password ...).",
							 quote_identifier(shown(target)))));
		remote_server_params(target, &keywords, &values);
		remote_bound_statements(&keywords, &values, mc_fleet_timeout_ms);
		remote_pin_session(&keywords, &values);
	}

	if ((error = (char *) credential_rule(pooler, target, keywords, values, &must_use_password)) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("matter_capacity: member \"%s\" cannot be polled: %s", smember, error),
				 errhint("Put the password of the member's role in the user mapping (CREATE USER MAPPING ... OPTIONS (user ..., password ...)), "
						 "or have a superuser own the server (ALTER SERVER ... OWNER TO).")));
	conn = remote_connect(keywords, values, mc_fleet_timeout_ms, &error);
	if (conn == NULL && pooler && strstr(error, "database \"pgbouncer\" does not exist"))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("matter_capacity: pooler member \"%s\" is not a PgBouncer admin console", smember),
				 errdetail("%s", error),
				 errhint("Point the connection string at PgBouncer's listen address with a user listed in its stats_users or admin_users.")));
	if (conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("matter_capacity: member \"%s\" is unreachable", smember),
				 errdetail("%s", error),
				 errhint("Check the %s and that the server is up; nothing was registered.",
						 pooler ? "connection string" : "foreign server's options and the user mapping")));
	if ((error = (char *) remote_password_used(conn, must_use_password)) != NULL)
	{
		remote_close(conn);
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("matter_capacity: member \"%s\" cannot be polled: %s", smember, error),
				 errhint("Make the member ask the user mapping's role for its password (pg_hba.conf scram-sha-256), "
						 "or have a superuser own the server; nothing was registered.")));
	}

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
					 errmsg("matter_capacity: pooler member \"%s\" is not a PgBouncer admin console", smember),
					 errhint("Point the connection string at PgBouncer's listen address with a user listed in its stats_users or admin_users.")));
		}
		out = psprintf("{\"server_version\": %s}", quote_json(PQgetvalue(res, 0, 0)));
		PQclear(res);
	}
	else
	{
		if (res == NULL || PQntuples(res) != 1 || PQnfields(res) != 4)
			ereport(ERROR,
					(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
					 errmsg("matter_capacity: member \"%s\" did not answer", smember),
					 errdetail("%s", error ? error : "no row"),
					 errhint("The role of the user mapping needs to run pg_control_system(); nothing was registered.")));
		if (is_this_database(PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 3)))
		{
			PQclear(res);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("matter_capacity: member \"%s\" (server \"%s\") is this very database", smember, shown(target)),
					 errhint("The hub measures itself; register other servers (replicas, tier clusters, regions).")));
		}
		/* what a member says goes into JSON only as JSON values */
		out = psprintf("{\"server_version_num\": %s, \"in_recovery\": %s}",
					   strspn(PQgetvalue(res, 0, 0), "0123456789") == strlen(PQgetvalue(res, 0, 0)) &&
					   PQgetvalue(res, 0, 0)[0] ? PQgetvalue(res, 0, 0) : "null",
					   strcmp(PQgetvalue(res, 0, 1), "true") == 0 ? "true" : "false");
		PQclear(res);
	}
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(out)));
}

/* ---- polling ---- */

static char *
quote_json(const char *s)
{
	StringInfoData buf;

	initStringInfo(&buf);
	escape_json(&buf, s);
	return buf.data;
}

/*
 * One statement a PostgreSQL member answers in one row.  Everything it
 * reads is open to pg_monitor.  When the member runs matter_capacity and
 * the role may read it, its own stage and newest figures come through
 * query_to_xml (the schema is only known there; privileges are checked in
 * the select list, on that one schema only); otherwise those are NULL.
 * The last two columns say who answered (is it this very database?).
 * Every operator, type and function is schema-qualified, on top of the
 * session's search_path = pg_catalog (remote_pin_session): nothing a user of
 * the member created is resolved by it.
 */
#define MEMBER_SQL \
	"SELECT pg_catalog.current_setting('server_version'), pg_catalog.pg_is_in_recovery()::pg_catalog.text, " \
	"  CASE WHEN pg_catalog.pg_is_in_recovery() THEN " \
	"    CASE WHEN pg_catalog.pg_last_wal_receive_lsn() OPERATOR(pg_catalog.=) pg_catalog.pg_last_wal_replay_lsn() " \
	"           OR (pg_catalog.pg_last_wal_receive_lsn() IS NULL AND pg_catalog.pg_last_wal_replay_lsn() IS NULL) THEN 0 " \
	"         ELSE pg_catalog.date_part('epoch', pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.pg_last_xact_replay_timestamp()) END END, " \
	"  (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity a WHERE a.backend_type OPERATOR(pg_catalog.=) 'client backend'), " \
	"  100.0 OPERATOR(pg_catalog.*) (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity a WHERE a.backend_type OPERATOR(pg_catalog.=) 'client backend') " \
	"    OPERATOR(pg_catalog./) greatest(pg_catalog.current_setting('max_connections')::pg_catalog.int4 " \
	"         OPERATOR(pg_catalog.-) pg_catalog.current_setting('superuser_reserved_connections')::pg_catalog.int4, 1), " \
	"  pg_catalog.pg_database_size(pg_catalog.current_database()), " \
	"  (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('table', t.name, 'rows', t.n) ORDER BY t.n DESC, t.name) FROM (" \
	"     SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS name, " \
	"            (CASE WHEN c.relkind OPERATOR(pg_catalog.=) 'p' THEN (SELECT pg_catalog.sum(greatest(l.reltuples, 0)) " \
	"                    FROM pg_catalog.pg_partition_tree(c.oid) pt JOIN pg_catalog.pg_class l ON l.oid OPERATOR(pg_catalog.=) pt.relid WHERE pt.isleaf) " \
	"                  ELSE greatest(c.reltuples, 0) END)::pg_catalog.int8 AS n " \
	"       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace " \
	"      WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog.\"char\"[]) AND NOT c.relispartition " \
	"        AND NOT n.nspname OPERATOR(pg_catalog.=) ANY ('{pg_catalog,information_schema}'::pg_catalog.name[]) " \
	"        AND n.nspname::pg_catalog.text OPERATOR(pg_catalog.!~) '^pg_toast' " \
	"        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass " \
	"                        AND d.objid OPERATOR(pg_catalog.=) c.oid AND d.deptype OPERATOR(pg_catalog.=) 'e') " \
	"      ORDER BY 2 DESC NULLS LAST, 1 LIMIT 3) t)::pg_catalog.text, " \
	"  (pg_catalog.xpath('/row/stage/text()', x.q))[1]::pg_catalog.text, " \
	"  (pg_catalog.xpath('/row/recommended/text()', x.q))[1]::pg_catalog.text, " \
	"  (pg_catalog.xpath('/row/decision/text()', x.q))[1]::pg_catalog.text, " \
	"  (pg_catalog.xpath('/row/read_qps/text()', x.q))[1]::pg_catalog.text, " \
	"  (pg_catalog.xpath('/row/write_qps/text()', x.q))[1]::pg_catalog.text, " \
	"  (pg_catalog.xpath('/row/read_p99/text()', x.q))[1]::pg_catalog.text, " \
	"  (pg_catalog.xpath('/row/write_p99/text()', x.q))[1]::pg_catalog.text, " \
	"  (pg_catalog.xpath('/row/cpu/text()', x.q))[1]::pg_catalog.text, " \
	"  (pg_catalog.xpath('/row/sampled_at/text()', x.q))[1]::pg_catalog.text, " \
	"  (SELECT s.system_identifier::pg_catalog.text FROM pg_catalog.pg_control_system() s), " \
	"  pg_catalog.current_database()::pg_catalog.text " \
	"FROM (SELECT 1) one LEFT JOIN (" \
	"  SELECT pg_catalog.query_to_xml(CASE WHEN " \
	"      pg_catalog.has_function_privilege(pg_catalog.format('%I.capacity_stage(timestamptz, interval, text)', e.nspname), 'EXECUTE') " \
	"      AND pg_catalog.has_function_privilege(pg_catalog.format('%I.capacity_bindings()', e.nspname), 'EXECUTE') " \
	"      AND pg_catalog.has_table_privilege(pg_catalog.format('%I.capacity_latest', e.nspname), 'SELECT') " \
	"    THEN pg_catalog.format(" \
	"    'SELECT s.current_stage AS stage, s.recommended_stage AS recommended, s.decision, " \
	"            l.read_qps, l.write_qps, l.read_p99, l.write_p99, l.cpu, l.sampled_at " \
	"       FROM %1$I.capacity_stage() s, (SELECT " \
	"            pg_catalog.max(v.value) FILTER (WHERE v.indicator OPERATOR(pg_catalog.=) ''read_qps''::pg_catalog.text) AS read_qps, " \
	"            pg_catalog.max(v.value) FILTER (WHERE v.indicator OPERATOR(pg_catalog.=) ''write_qps''::pg_catalog.text) AS write_qps, " \
	"            pg_catalog.max(v.value) FILTER (WHERE v.indicator OPERATOR(pg_catalog.=) ''read_latency_p99_ms''::pg_catalog.text) AS read_p99, " \
	"            pg_catalog.max(v.value) FILTER (WHERE v.indicator OPERATOR(pg_catalog.=) ''write_latency_p99_ms''::pg_catalog.text) AS write_p99, " \
	"            pg_catalog.max(v.value) FILTER (WHERE v.indicator OPERATOR(pg_catalog.=) ''cpu_utilization''::pg_catalog.text) AS cpu, " \
	"            pg_catalog.max(v.sampled_at) AS sampled_at " \
	"          FROM %1$I.capacity_latest v WHERE v.labels OPERATOR(pg_catalog.=) ''{}''::pg_catalog.jsonb " \
	"           AND v.indicator OPERATOR(pg_catalog.=) ANY (''{read_qps,write_qps,read_latency_p99_ms,write_latency_p99_ms,cpu_utilization}''::pg_catalog.text[])) l', " \
	"    e.nspname) ELSE 'SELECT' END, false, true, '') AS q " \
	"    FROM (SELECT n.nspname FROM pg_catalog.pg_extension x JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) x.extnamespace " \
	"           WHERE x.extname OPERATOR(pg_catalog.=) 'matter_capacity' OFFSET 0) e " \
	") x ON true"

#define MEMBER_COLS 18

/* The columns of capacity_fleet_poll(), in order. */
enum
{
	F_NAME, F_KIND, F_LABELS, F_REACHABLE, F_ERROR, F_POLLED_AT, F_CONNECT_MS,
	F_RTT_MS, F_SERVER_VERSION, F_ROLE, F_STAGE, F_RECOMMENDED, F_DECISION,
	F_READ_QPS, F_WRITE_QPS, F_READ_P99, F_WRITE_P99, F_CPU, F_MEMBER_SAMPLED_AT,
	F_REPLICA_LAG, F_CONNECTIONS, F_CONN_UTIL, F_POOL_UTIL, F_POOL_WAITING,
	F_POOL_MAXWAIT, F_POOLS, F_DATABASE_BYTES, F_LARGEST_TABLES,
	F_NCOLS
};

#define POOLER_CALLS 3			/* SHOW VERSION, SHOW POOLS, SHOW DATABASES */

typedef struct Member
{
	char	   *name;
	char	   *kind;
	char	   *target;			/* server or conninfo */
	char	   *labels;
	char	   *region;			/* labels->>'region' */
	bool		pooler;
	int			first_call;		/* index into the calls array */
	int			ncalls;
	char	   *setup_error;	/* could not even try */
	char	   *values[F_NCOLS];
	/* pools of a pooler: database, user, utilisation %, waiting, maxwait s */
	List	   *pools;
} Member;

typedef struct Pool
{
	char	   *database;
	char	   *user;
	double		utilization;	/* percent, NaN when the size is unknown */
	double		waiting;
	double		maxwait;
} Pool;

static char *
fmt_double(double v)
{
	return psprintf("%.17g", v);
}

/* Load the registry (only: one member, or NULL for all). */
static Member *
load_members(const char *only, int *nmembers)
{
	MemoryContext outer = CurrentMemoryContext;
	Member	   *members;
	uint64		n;
	Oid			types[1] = {TEXTOID};
	Datum		args[1] = {only ? CStringGetTextDatum(only) : (Datum) 0};

	SPI_connect();
	/* as the owner, search_path pinned (catalog.c) */
	catalog_execute(psprintf("SELECT m.name, m.kind, coalesce(m.server::text, m.conninfo), m.labels::text, "
							 "m.labels->>'region' FROM %s m WHERE $1 IS NULL OR m.name = $1 ORDER BY m.name",
							 capacity_object("capacity_fleet_member")),
					1, types, args, only ? " " : "n", true);
	n = SPI_processed;
	members = MemoryContextAllocZero(outer, sizeof(Member) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		Member	   *m = &members[i];
		char	   *region = SPI_getvalue(t, d, 5);

		m->name = MemoryContextStrdup(outer, SPI_getvalue(t, d, 1));
		m->kind = MemoryContextStrdup(outer, SPI_getvalue(t, d, 2));
		m->target = MemoryContextStrdup(outer, SPI_getvalue(t, d, 3));
		m->labels = MemoryContextStrdup(outer, SPI_getvalue(t, d, 4));
		m->region = region ? MemoryContextStrdup(outer, region) : NULL;
		m->pooler = strcmp(m->kind, "pooler") == 0;
	}
	SPI_finish();
	*nmembers = (int) n;
	return members;
}

static int
col(PGresult *res, const char *name)
{
	return PQfnumber(res, name);
}

static double
num(PGresult *res, int row, const char *name)
{
	int			c = col(res, name);

	double		v;

	if (c < 0 || PQgetisnull(res, row, c))
		return 0;
	v = strtod(PQgetvalue(res, row, c), NULL);
	/* a pooler's NaN or infinity is no figure (see refuse_non_finite) */
	return isfinite(v) ? v : 0;
}

/* SHOW POOLS + SHOW DATABASES -> pools with utilisation; summary values. */
static void
pooler_figures(Member *m, PGresult *pools, PGresult *dbs)
{
	StringInfoData js;
	double		worst = -1,
				waiting = 0,
				maxwait = 0;
	bool		any = false;

	initStringInfo(&js);
	appendStringInfoChar(&js, '[');
	/* columns by name: PgBouncer adds columns between versions */
	if (col(pools, "database") < 0 || col(pools, "user") < 0)
		pools = NULL;
	if (dbs && (col(dbs, "name") < 0 || col(dbs, "pool_size") < 0))
		dbs = NULL;
	for (int r = 0; pools && r < PQntuples(pools); r++)
	{
		Pool	   *p = palloc0(sizeof(Pool));
		double		size = -1;
		double		busy;

		p->database = pstrdup(PQgetvalue(pools, r, col(pools, "database")));
		p->user = pstrdup(PQgetvalue(pools, r, col(pools, "user")));
		if (strcmp(p->database, "pgbouncer") == 0)
			continue;			/* the admin console's own pseudo-pool */
		for (int d = 0; dbs && d < PQntuples(dbs); d++)
			if (strcmp(PQgetvalue(dbs, d, col(dbs, "name")), p->database) == 0)
				size = num(dbs, d, "pool_size");
		busy = num(pools, r, "sv_active") + num(pools, r, "sv_used") +
			num(pools, r, "sv_tested") + num(pools, r, "sv_login");
		p->utilization = size > 0 ? 100.0 * busy / size : get_float8_nan();
		p->waiting = num(pools, r, "cl_waiting");
		/* maxwait is whole seconds, maxwait_us the microseconds beyond */
		p->maxwait = num(pools, r, "maxwait") + num(pools, r, "maxwait_us") / 1e6;
		m->pools = lappend(m->pools, p);
		if (!isnan(p->utilization) && p->utilization > worst)
			worst = p->utilization;
		waiting += p->waiting;
		maxwait = Max(maxwait, p->maxwait);
		appendStringInfo(&js, "%s{\"pool\": %s, \"database\": %s, \"user\": %s, \"utilization\": %s, "
						 "\"sv_busy\": %g, \"pool_size\": %s, \"clients_waiting\": %g, \"maxwait_seconds\": %g}",
						 any ? ", " : "",
						 quote_json(psprintf("%s/%s", p->database, p->user)),
						 quote_json(p->database), quote_json(p->user),
						 isnan(p->utilization) ? "null" : fmt_double(p->utilization),
						 busy, size > 0 ? fmt_double(size) : "null", p->waiting, p->maxwait);
		any = true;
	}
	appendStringInfoChar(&js, ']');
	m->values[F_POOLS] = js.data;
	if (worst >= 0)
		m->values[F_POOL_UTIL] = fmt_double(worst);
	m->values[F_POOL_WAITING] = psprintf("%d", (int) waiting);
	m->values[F_POOL_MAXWAIT] = fmt_double(maxwait);
}

/*
 * The member's figures that become samples must be finite numbers, as
 * capacity_record and the import demand: a NaN would "breach" every '>'
 * threshold and the charts of the review refuse it.  A member's answer is
 * not trusted (a broken sampler, an import, a hostile member): a figure that
 * is not a finite number is dropped (NULL) and the member's error says so.
 * Counts and sizes that cannot parse are dropped too (the column types of
 * capacity_fleet_poll would refuse them).
 */
static void
refuse_non_finite(Member *m)
{
	static const struct
	{
		int			field;
		const char *name;
	}			figures[] = {
		{F_REPLICA_LAG, "replica_lag_seconds"},
		{F_CONNECTIONS, "connections"},
		{F_CONN_UTIL, "connections_utilization"},
		{F_DATABASE_BYTES, "database_bytes"},
		{F_READ_QPS, "read_qps"},
		{F_WRITE_QPS, "write_qps"},
		{F_READ_P99, "read_latency_p99_ms"},
		{F_WRITE_P99, "write_latency_p99_ms"},
		{F_CPU, "cpu_utilization"},
		{F_STAGE, "stage"},
		{F_RECOMMENDED, "recommended_stage"},
	};
	StringInfoData bad;

	initStringInfo(&bad);
	for (int k = 0; k < lengthof(figures); k++)
	{
		char	   *v = m->values[figures[k].field];
		char	   *end;
		double		d;

		if (v == NULL)
			continue;
		errno = 0;
		d = strtod(v, &end);
		if (end == v || *end != '\0' || errno == ERANGE || !isfinite(d) ||
			((figures[k].field == F_CONNECTIONS || figures[k].field == F_STAGE ||
			  figures[k].field == F_RECOMMENDED) && (d != rint(d) || fabs(d) > PG_INT32_MAX)) ||
			(figures[k].field == F_DATABASE_BYTES && (d != rint(d) || fabs(d) > 9e18)))
		{
			appendStringInfo(&bad, "%s%s = %s", bad.len ? ", " : "", figures[k].name, shown(v));
			m->values[figures[k].field] = NULL;
		}
	}
	if (bad.len)
		m->values[F_ERROR] = psprintf("figures that are not finite numbers were dropped, not recorded: %s", bad.data);
}

static char *
opt(PGresult *res, int c)
{
	return PQgetisnull(res, 0, c) ? NULL : pstrdup(PQgetvalue(res, 0, c));
}

/*
 * Poll every member concurrently; fills members[i].values.  Never raises
 * for a member: its error goes into its row.
 */
static Member *
poll_members(const char *only, int *nmembers)
{
	int			n;
	Member	   *members;
	RemoteCall *calls;
	int			ncalls = 0;
	TimestampTz polled;
	Oid			save_userid;
	int			save_sec;

	/* the owner's user mappings, whoever samples (the worker, a superuser) */
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(capacity_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	members = load_members(only, &n);
	calls = palloc0(sizeof(RemoteCall) * Max(n * POOLER_CALLS, 1));
	for (int i = 0; i < n; i++)
	{
		Member	   *m = &members[i];
		const char **kw = NULL;
		const char **val = NULL;
		bool		must_use_password = false;

		/* a dropped server or a bad conninfo is this member's error only */
		if (m->pooler)
		{
			if (!pooler_params(m->target, &kw, &val))
				m->setup_error = "the connection string is not valid";
		}
		else if (GetForeignServerByName(m->target, true) == NULL)
			m->setup_error = psprintf("foreign server \"%s\" does not exist", shown(m->target));
		else
		{
			remote_server_params(m->target, &kw, &val);
			/* the member ends a statement we stop waiting for */
			remote_bound_statements(&kw, &val, mc_fleet_timeout_ms);
			remote_pin_session(&kw, &val);
		}

		/*
		 * The password rule at every poll, not only at registration: the
		 * server's owner may have changed its options or mapping since.
		 */
		if (m->setup_error == NULL)
			m->setup_error = (char *) credential_rule(m->pooler, m->target, kw, val,
													  &must_use_password);
		if (m->setup_error)
			continue;
		m->first_call = ncalls;
		if (m->pooler)
		{
			const char *sql[POOLER_CALLS] = {"SHOW VERSION", "SHOW POOLS", "SHOW DATABASES"};

			for (int k = 0; k < POOLER_CALLS; k++)
			{
				calls[ncalls].keywords = kw;
				calls[ncalls].values = val;
				calls[ncalls].require_password = must_use_password;
				calls[ncalls++].sql = sql[k];
			}
			m->ncalls = POOLER_CALLS;
		}
		else
		{
			calls[ncalls].keywords = kw;
			calls[ncalls].values = val;
			calls[ncalls].require_password = must_use_password;
			calls[ncalls++].sql = MEMBER_SQL;
			m->ncalls = 1;
		}
	}

	SetUserIdAndSecContext(save_userid, save_sec);

	remote_exec_many(calls, ncalls, mc_fleet_timeout_ms);
	polled = GetCurrentTimestamp();

	for (int i = 0; i < n; i++)
	{
		Member	   *m = &members[i];
		RemoteCall *c = &calls[m->first_call];
		char	   *error = m->setup_error;
		double		rtt = -1,
					connect = -1;

		m->values[F_NAME] = m->name;
		m->values[F_KIND] = m->kind;
		m->values[F_LABELS] = m->labels;
		m->values[F_POLLED_AT] = pstrdup(timestamptz_to_str(polled));
		for (int k = 0; !error && k < m->ncalls; k++)
		{
			if (c[k].error)
				error = c[k].error;
			else if (c[k].result == NULL)
				error = "no result";
			rtt = Max(rtt, c[k].rtt_ms);
			connect = Max(connect, c[k].connect_ms);
		}
		m->values[F_REACHABLE] = error ? "false" : "true";
		m->values[F_ERROR] = error;
		if (!error)
		{
			m->values[F_RTT_MS] = fmt_double(rtt);
			m->values[F_CONNECT_MS] = fmt_double(connect);
			if (m->pooler)
			{
				m->values[F_ROLE] = "pooler";
				m->values[F_SERVER_VERSION] = opt(c[0].result, 0);
				pooler_figures(m, c[1].result, c[2].result);
			}
			else if (PQntuples(c[0].result) != 1 || PQnfields(c[0].result) != MEMBER_COLS)
			{
				m->values[F_REACHABLE] = "false";
				m->values[F_ERROR] = psprintf("unexpected answer: %d rows of %d columns",
											  PQntuples(c[0].result), PQnfields(c[0].result));
			}
			else if (is_this_database(PQgetvalue(c[0].result, 0, 16), PQgetvalue(c[0].result, 0, 1),
									  PQgetvalue(c[0].result, 0, 17)))
			{
				/*
				 * Checked at registration, and again here: the server may
				 * have been re-pointed since.  Its figures are the hub's
				 * own, recorded already; never twice under a member label.
				 */
				m->values[F_REACHABLE] = "false";
				m->values[F_ERROR] = "the server now points at this very database (the hub): nothing recorded";
			}
			else
			{
				PGresult   *r = c[0].result;

				m->values[F_SERVER_VERSION] = opt(r, 0);
				m->values[F_ROLE] = strcmp(PQgetvalue(r, 0, 1), "true") == 0 ? "standby" : "primary";
				m->values[F_REPLICA_LAG] = opt(r, 2);
				m->values[F_CONNECTIONS] = opt(r, 3);
				m->values[F_CONN_UTIL] = opt(r, 4);
				m->values[F_DATABASE_BYTES] = opt(r, 5);
				m->values[F_LARGEST_TABLES] = opt(r, 6);
				m->values[F_STAGE] = opt(r, 7);
				m->values[F_RECOMMENDED] = opt(r, 8);
				m->values[F_DECISION] = opt(r, 9);
				m->values[F_READ_QPS] = opt(r, 10);
				m->values[F_WRITE_QPS] = opt(r, 11);
				m->values[F_READ_P99] = opt(r, 12);
				m->values[F_WRITE_P99] = opt(r, 13);
				m->values[F_CPU] = opt(r, 14);
				m->values[F_MEMBER_SAMPLED_AT] = opt(r, 15);
				refuse_non_finite(m);
			}
		}
		for (int k = 0; k < m->ncalls; k++)
			if (c[k].result)
				PQclear(c[k].result);
	}
	*nmembers = n;
	return members;
}

PG_FUNCTION_INFO_V1(capacity_fleet_poll);

/*
 * capacity_fleet_poll(member text) RETURNS SETOF record: one row per member
 * (or just that member), polled concurrently, each within
 * matter_capacity.fleet_timeout.
 */
Datum
capacity_fleet_poll(PG_FUNCTION_ARGS)
{
	Tuplestorestate *store;
	TupleDesc	desc;
	AttInMetadata *meta;
	int			n;
	Member	   *members;

	init_materialized(fcinfo, &store, &desc);
	if (desc->natts != F_NCOLS)
		elog(ERROR, "matter_capacity: capacity_fleet_poll() has %d columns, expected %d", desc->natts, F_NCOLS);
	meta = TupleDescGetAttInMetadata(desc);
	members = poll_members(PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0)), &n);
	if (n == 0 && !PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("matter_capacity: fleet member \"%s\" does not exist",
						shown(text_to_cstring(PG_GETARG_TEXT_PP(0)))),
				 errhint("capacity_fleet lists the members; capacity_fleet_add registers one.")));
	for (int i = 0; i < n; i++)
		tuplestore_puttuple(store, BuildTupleFromCStrings(meta, members[i].values));
	return (Datum) 0;
}

/* ---- history ---- */

/*
 * (labels, value) rows as SQL text for write_samples; NULL when empty.  The
 * last guard of the fleet's one write path: a value that is not a finite
 * number is never written (refuse_non_finite reported it already).
 */
static void
add_row(StringInfo src, const char *labels, const char *value)
{
	char	   *end;
	double		d;

	if (value == NULL)
		return;
	d = strtod(value, &end);
	if (end == value || *end != '\0' || !isfinite(d))
		return;
	appendStringInfo(src, "%s(%s::jsonb, %s::float8)", src->len ? ", " : "",
					 quote_literal_cstr(labels), quote_literal_cstr(value));
}

static int
write_rows(const char *indicator, StringInfo src, TimestampTz as_of)
{
	if (src->len == 0)
		return 0;
	return write_samples(indicator,
						 psprintf("SELECT * FROM (VALUES %s) AS s(l, v)", src->data),
						 as_of);
}

static char *
member_labels(Member *m)
{
	return psprintf("{\"member\": %s}", quote_json(m->name));
}

/*
 * Poll every member and record their figures at as_of with a member label
 * (through the sampler's write path).  Pools get {member, pool, database,
 * user}; a region member's own read p99 is also region_p99_ms {region,
 * member}, so the region comparison sees it beside pushed values.
 */
static int fleet_sample_rows(TimestampTz as_of);

typedef struct FleetSampleStep
{
	TimestampTz as_of;
	int			n;
} FleetSampleStep;

static bool
fleet_sample_step(void *arg)
{
	FleetSampleStep *ts = arg;

	ts->n = fleet_sample_rows(ts->as_of);
	return true;
}

int
fleet_sample(TimestampTz as_of)
{
	FleetSampleStep ts = {0, 0};
	ErrorData  *e;

	/* an extension not yet updated to 1.1 has no fleet */
	if (!OidIsValid(get_relname_relid("capacity_fleet_member",
									  get_rel_namespace(capacity_relid("capacity_sample")))))
		return 0;

	/* a failure here must not lose the hub's own samples */
	ts.as_of = as_of;
	e = run_guarded(fleet_sample_step, &ts, NULL);
	if (e)
	{
		ereport(WARNING,
				(errmsg("matter_capacity: fleet sampling failed: %s", e->message)));
		return 0;
	}
	return ts.n;
}

static int
fleet_sample_rows(TimestampTz as_of)
{
	int			n;
	Member	   *members;
	int			total = 0;
	static const struct
	{
		const char *indicator;
		int			field;
	}			per_member[] = {
		{"fleet_rtt_ms", F_RTT_MS},
		{"replica_lag_seconds", F_REPLICA_LAG},
		{"connections", F_CONNECTIONS},
		{"connections_utilization", F_CONN_UTIL},
		{"database_bytes", F_DATABASE_BYTES},
		{"read_qps", F_READ_QPS},
		{"write_qps", F_WRITE_QPS},
		{"read_latency_p99_ms", F_READ_P99},
		{"write_latency_p99_ms", F_WRITE_P99},
		{"cpu_utilization", F_CPU},
	};
	StringInfoData src;

	members = poll_members(NULL, &n);
	if (n == 0)
		return 0;
	initStringInfo(&src);

	for (int i = 0; i < n; i++)
		add_row(&src, member_labels(&members[i]),
				strcmp(members[i].values[F_REACHABLE], "true") == 0 ? "1" : "0");
	total += write_rows("fleet_member_up", &src, as_of);

	for (int k = 0; k < lengthof(per_member); k++)
	{
		resetStringInfo(&src);
		for (int i = 0; i < n; i++)
			add_row(&src, member_labels(&members[i]), members[i].values[per_member[k].field]);
		total += write_rows(per_member[k].indicator, &src, as_of);
	}

	/* rows of each member's largest tables, labels {member, table} */
	resetStringInfo(&src);
	for (int i = 0; i < n; i++)
	{
		if (members[i].values[F_LARGEST_TABLES] == NULL)
			continue;
		/* JSON numbers are finite; bounded so that float8 takes them */
		appendStringInfo(&src, "%sSELECT pg_catalog.jsonb_build_object('member', %s::text, 'table', t->>'table'), "
						 "(t->>'rows')::float8 FROM pg_catalog.jsonb_array_elements(%s::jsonb) t "
						 "WHERE pg_catalog.jsonb_typeof(t->'rows') = 'number' "
						 "AND (t->>'rows')::numeric BETWEEN -1e300 AND 1e300",
						 src.len ? " UNION ALL " : "",
						 quote_literal_cstr(members[i].name),
						 quote_literal_cstr(members[i].values[F_LARGEST_TABLES]));
	}
	if (src.len)
		total += write_samples("table_rows", src.data, as_of);

	/* the region comparison: a region member's own p99 */
	resetStringInfo(&src);
	for (int i = 0; i < n; i++)
		if (members[i].region && members[i].values[F_READ_P99])
			add_row(&src, psprintf("{\"region\": %s, \"member\": %s}",
								   quote_json(members[i].region), quote_json(members[i].name)),
					members[i].values[F_READ_P99]);
	total += write_rows("region_p99_ms", &src, as_of);

	/* PgBouncer pools */
	{
		StringInfoData util,
					wait,
					maxw;
		ListCell   *lc;

		initStringInfo(&util);
		initStringInfo(&wait);
		initStringInfo(&maxw);
		for (int i = 0; i < n; i++)
			foreach(lc, members[i].pools)
			{
				Pool	   *p = lfirst(lc);
				char	   *l = psprintf("{\"member\": %s, \"pool\": %s, \"database\": %s, \"user\": %s}",
										 quote_json(members[i].name),
										 quote_json(psprintf("%s/%s", p->database, p->user)),
										 quote_json(p->database), quote_json(p->user));

				if (!isnan(p->utilization))
					add_row(&util, l, fmt_double(p->utilization));
				add_row(&wait, l, fmt_double(p->waiting));
				add_row(&maxw, l, fmt_double(p->maxwait));
			}
		total += write_rows("pool_utilization", &util, as_of);
		total += write_rows("pool_clients_waiting", &wait, as_of);
		total += write_rows("pool_maxwait_seconds", &maxw, as_of);
	}
	return total;
}
