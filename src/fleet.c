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
	"SELECT current_setting('server_version_num'), pg_catalog.pg_is_in_recovery()::text, " \
	"(SELECT s.system_identifier::text FROM pg_catalog.pg_control_system() s), " \
	"pg_catalog.current_database()::text"

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
 * As postgres_fdw and dblink: a role that is not a superuser may reach
 * servers only with a password of its own (in the user mapping), never
 * with the server's OS identity (peer, trust, the postgres user's
 * ~/.pgpass).  A pooler member's password is in a password file, so only
 * a superuser owner may have them.  NULL when allowed.
 */
static const char *
credential_rule(bool pooler, const char *const *keywords, const char *const *values)
{
	if (superuser_arg(GetUserId()))
		return NULL;
	if (pooler)
		return "pooler members need a superuser extension owner (their password is in a password file)";
	for (int i = 0; keywords[i]; i++)
		if (strcmp(keywords[i], "password") == 0 && values[i] && values[i][0])
			return NULL;
	return "the user mapping has no password, which a non-superuser extension owner needs";
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
	const char *smember = shown(member);

	if (pooler)
	{
		if (conninfo_has_password(target))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("matter_capacity: the connection string of pooler member \"%s\" contains a password", smember),
					 errhint("Remove it and put the password in the password file of the server's OS user (~/.pgpass, or passfile=...).")));
		if (!pooler_params(target, &keywords, &values))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("matter_capacity: the connection string of pooler member \"%s\" is not valid", smember),
					 errhint("Use keyword=value pairs, e.g. 'host=/run/pgbouncer port=6432 user=stats'; keep the password in a password file.")));
	}
	else
	{
		ForeignServer *fs;

		/* never echoed: it may well carry a password */
		if (looks_like_conninfo(target))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("matter_capacity: kind %s takes a postgres_fdw server name, not a connection string", shown(kind)),
					 errhint("Declare the connection with CREATE SERVER ... FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host ..., port ..., dbname ...) "
							 "and its credentials with CREATE USER MAPPING ... OPTIONS (user ..., password ...); pass the server's name.")));
		fs = GetForeignServerByName(target, true);

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
	}

	if ((error = (char *) credential_rule(pooler, keywords, values)) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("matter_capacity: member \"%s\" cannot be polled: %s", member, error),
				 errhint("Put the password of the member's role in the user mapping (CREATE USER MAPPING ... OPTIONS (user ..., password ...)).")));
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
					 errmsg("matter_capacity: member \"%s\" did not answer", smember),
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
 */
#define MEMBER_SQL \
	"SELECT pg_catalog.current_setting('server_version'), pg_catalog.pg_is_in_recovery()::text, " \
	"  CASE WHEN pg_catalog.pg_is_in_recovery() THEN " \
	"    CASE WHEN pg_catalog.pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_catalog.pg_last_wal_replay_lsn() THEN 0 " \
	"         ELSE extract(epoch FROM pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.pg_last_xact_replay_timestamp()) END END, " \
	"  (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity a WHERE a.backend_type OPERATOR(pg_catalog.=) 'client backend'), " \
	"  100.0 * (SELECT pg_catalog.count(*) FROM pg_catalog.pg_stat_activity a WHERE a.backend_type OPERATOR(pg_catalog.=) 'client backend') " \
	"    / greatest(pg_catalog.current_setting('max_connections')::int - pg_catalog.current_setting('superuser_reserved_connections')::int, 1), " \
	"  pg_catalog.pg_database_size(pg_catalog.current_database()), " \
	"  (SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('table', t.name, 'rows', t.n) ORDER BY t.n DESC, t.name) FROM (" \
	"     SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS name, " \
	"            (CASE WHEN c.relkind = 'p' THEN (SELECT pg_catalog.sum(greatest(l.reltuples, 0)) " \
	"                    FROM pg_catalog.pg_partition_tree(c.oid) pt JOIN pg_catalog.pg_class l ON l.oid = pt.relid WHERE pt.isleaf) " \
	"                  ELSE greatest(c.reltuples, 0) END)::bigint AS n " \
	"       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace " \
	"      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition " \
	"        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast' " \
	"        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass " \
	"                        AND d.objid = c.oid AND d.deptype = 'e') " \
	"      ORDER BY 2 DESC NULLS LAST, 1 LIMIT 3) t)::text, " \
	"  (pg_catalog.xpath('/row/stage/text()', x.q))[1]::text, " \
	"  (pg_catalog.xpath('/row/recommended/text()', x.q))[1]::text, " \
	"  (pg_catalog.xpath('/row/decision/text()', x.q))[1]::text, " \
	"  (pg_catalog.xpath('/row/read_qps/text()', x.q))[1]::text, " \
	"  (pg_catalog.xpath('/row/write_qps/text()', x.q))[1]::text, " \
	"  (pg_catalog.xpath('/row/read_p99/text()', x.q))[1]::text, " \
	"  (pg_catalog.xpath('/row/write_p99/text()', x.q))[1]::text, " \
	"  (pg_catalog.xpath('/row/cpu/text()', x.q))[1]::text, " \
	"  (pg_catalog.xpath('/row/sampled_at/text()', x.q))[1]::text " \
	"FROM (SELECT 1) one LEFT JOIN (" \
	"  SELECT pg_catalog.query_to_xml(CASE WHEN " \
	"      pg_catalog.has_function_privilege(pg_catalog.format('%I.capacity_stage(timestamptz, interval, text)', e.nspname), 'EXECUTE') " \
	"      AND pg_catalog.has_function_privilege(pg_catalog.format('%I.capacity_bindings()', e.nspname), 'EXECUTE') " \
	"      AND pg_catalog.has_table_privilege(pg_catalog.format('%I.capacity_latest', e.nspname), 'SELECT') " \
	"    THEN pg_catalog.format(" \
	"    'SELECT s.current_stage AS stage, s.recommended_stage AS recommended, s.decision, " \
	"            l.read_qps, l.write_qps, l.read_p99, l.write_p99, l.cpu, l.sampled_at " \
	"       FROM %1$I.capacity_stage() s, (SELECT " \
	"            pg_catalog.max(v.value) FILTER (WHERE v.indicator = ''read_qps'') AS read_qps, " \
	"            pg_catalog.max(v.value) FILTER (WHERE v.indicator = ''write_qps'') AS write_qps, " \
	"            pg_catalog.max(v.value) FILTER (WHERE v.indicator = ''read_latency_p99_ms'') AS read_p99, " \
	"            pg_catalog.max(v.value) FILTER (WHERE v.indicator = ''write_latency_p99_ms'') AS write_p99, " \
	"            pg_catalog.max(v.value) FILTER (WHERE v.indicator = ''cpu_utilization'') AS cpu, " \
	"            pg_catalog.max(v.sampled_at) AS sampled_at " \
	"          FROM %1$I.capacity_latest v WHERE v.labels = ''{}'' AND v.indicator IN " \
	"            (''read_qps'', ''write_qps'', ''read_latency_p99_ms'', ''write_latency_p99_ms'', ''cpu_utilization'')) l', " \
	"    e.nspname) ELSE 'SELECT' END, false, true, '') AS q " \
	"    FROM (SELECT n.nspname FROM pg_catalog.pg_extension x JOIN pg_catalog.pg_namespace n ON n.oid = x.extnamespace " \
	"           WHERE x.extname = 'matter_capacity' OFFSET 0) e " \
	") x ON true"

#define MEMBER_COLS 16

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

	if (c < 0 || PQgetisnull(res, row, c))
		return 0;
	return strtod(PQgetvalue(res, row, c), NULL);
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
		}
		if (m->setup_error == NULL)
			m->setup_error = (char *) credential_rule(m->pooler, kw, val);
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
				calls[ncalls++].sql = sql[k];
			}
			m->ncalls = POOLER_CALLS;
		}
		else
		{
			calls[ncalls].keywords = kw;
			calls[ncalls].values = val;
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
	for (int i = 0; i < n; i++)
		tuplestore_puttuple(store, BuildTupleFromCStrings(meta, members[i].values));
	return (Datum) 0;
}

/* ---- history ---- */

/* (labels, value) rows as SQL text for write_samples; NULL when empty. */
static void
add_row(StringInfo src, const char *labels, const char *value)
{
	if (value == NULL)
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
		appendStringInfo(&src, "%sSELECT pg_catalog.jsonb_build_object('member', %s::text, 'table', t->>'table'), "
						 "(t->>'rows')::float8 FROM pg_catalog.jsonb_array_elements(%s::jsonb) t",
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
