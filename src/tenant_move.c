/*-------------------------------------------------------------------------
 * tenant_move.c
 *		Stage 4 carried out: one tenant's rows moved to a dedicated cluster
 *		(a `tier` fleet member) with PostgreSQL's own logical replication,
 *		verified before cutover.
 *
 * The copy is PostgreSQL's: a publication on this database with a row
 * filter on each table's tenant (hash) column, published through the
 * partitioned root (publish_via_partition_root), and a subscription on the
 * member created over the fleet connection (src/remote.c).  We never copy
 * a row ourselves.
 *
 * A move goes syncing -> frozen -> cut over -> cleaned, or is aborted
 * (rows deleted: both sides as before) before cutover:
 *	capacity_tenant_move	checks both sides, creates the publication
 *							(through the loopback, so it is committed
 *							before the member creates its slot: slot
 *							creation waits for every transaction holding
 *							an xid, ours included), the subscription, and a
 *							guard trigger on each table.
 *	guard trigger			on the moved tenant's rows only: takes a
 *							shared "tenant barrier" lock; once the move is
 *							frozen it refuses the write (SQLSTATE 25006).
 *	verify					one consistent point while the application
 *							writes: take the barrier exclusively (bounded
 *							by lock_timeout: in-flight writes of the tenant
 *							finish, new ones wait), take the source
 *							snapshot and the WAL insert LSN, wait until
 *							the subscription's slot has confirmed that LSN,
 *							open a REPEATABLE READ snapshot on the member,
 *							release the barrier; then count and checksum
 *							the tenant's rows in both snapshots.  Both see
 *							exactly the tenant's transactions committed
 *							before the barrier.  The tenant's writes pause
 *							for the catch-up (bounded); other tenants never.
 *	freeze / cutover		freeze takes the barrier and marks the move
 *							frozen; cutover waits for lag zero, verifies,
 *							records the tenant's tier and member (the tier
 *							registry capacity_tenant_tier, and the member's
 *							labels.tenants) and drops the subscription and
 *							the publication.
 *	cleanup					deletes the tenant's rows here, one batch per
 *							table per call, each under the lock timeout,
 *							only while the member has rows of the tenant
 *							in each such table (never the only copy).
 *	abort					before cutover: the member's subscription and
 *							copy, then the triggers, publication and slot
 *							here; force: this side only ("aborted here"),
 *							for a member that cannot be reached.
 *
 * One change of a move at a time: start, freeze, cutover, abort and
 * cleanup hold a lock on the move (start_guard, lock_move) for their whole
 * transaction, across their member steps, and re-read the move after it.
 * Each step survives its caller dying: the names are fixed per tenant, so
 * an abort or a new start finds what an interrupted start left (the
 * publication, an inactive slot here), and a cutover interrupted after
 * the member dropped its subscription is finished by the next call if
 * both sides are equal.
 *
 * The barrier is a lock on an object nobody else can name (class = our
 * capacity_tenant_move table, object = hash of the tenant), so no other
 * role can take or block it.
 *
 * Whose rights: every statement on the tenant's rows (the start's checks,
 * the tallies, cleanup's and abort's DELETE, the view's counts) runs as the
 * table's owner, restricted, so the owner's code in it (a domain CHECK of
 * the tenant column, triggers, policies) never runs as the caller, a
 * superuser: here with as_owner, on the member through its own
 * matter_capacity (capacity_owner_value, capacity_run_as_owner; 1.1 is
 * required there).  Catalog reads and DDL run as the caller here and as
 * the user mapping's role there.
 *
 * Owns: capacity_tenant_move*, the guard trigger, the move catalog rows.
 * Must not: open libpq connections itself (remote.c, loopback.c), run a
 * copy loop, or touch other tenants' rows.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/hash.h"
#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "foreign/foreign.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "commands/dbcommands.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/pg_lsn.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "matter_capacity.h"
#include "catalog.h"
#include "locks.h"
#include "loopback.h"
#include "remote.h"
#include "tenant_move.h"

PG_FUNCTION_INFO_V1(capacity_tenant_move);
PG_FUNCTION_INFO_V1(capacity_tenant_move_verify);
PG_FUNCTION_INFO_V1(capacity_tenant_move_freeze);
PG_FUNCTION_INFO_V1(capacity_tenant_move_cutover);
PG_FUNCTION_INFO_V1(capacity_tenant_move_abort);
PG_FUNCTION_INFO_V1(capacity_tenant_move_cleanup);
PG_FUNCTION_INFO_V1(capacity_tenant_move_guard);
PG_FUNCTION_INFO_V1(capacity_tenant_move_status);

typedef struct MoveTable
{
	Oid			relid;
	char	   *qname;			/* "schema"."table" */
	char	   *column;			/* tenant column */
	char	   *coltype;		/* format_type of it */
} MoveTable;

typedef struct Move
{
	char	   *tenant;
	char	   *member;
	char	   *server;
	char	   *name;			/* publication = subscription = slot */
	char	   *state;
	int			ntables;
	MoveTable  *tables;
} Move;

/* Cleanup deletes through the guard: set only while it runs, this backend. */
static const char *cleanup_tenant = NULL;

/*
 * Set by the rollover around its row rescue (tenant_move_allow_rescue): a
 * tenant's rows left here after cutover (until cleanup) may then move from
 * the default partition into their new period.  Only after cutover: before
 * it the rollover leaves them alone (tenant_move_in_progress).
 */
static bool rescue_allowed = false;

/* ---------------------------------------------------------------- helpers */

static char *
md5_of(const char *s)
{
	return TextDatumGetCString(DirectFunctionCall1(md5_text, CStringGetTextDatum(s)));
}

/*
 * What every move of a tenant's names start with: its publication,
 * subscription and slot are mc_move_<md5(tenant), 16>_<md5(member), 8>.
 * The member is in the name so that the subscription of a move forgotten
 * on an unreachable member (abort with force, twice) can never take the
 * slot of a later move to another member when it comes back (review 3, F7).
 */
static char *
move_prefix(const char *tenant)
{
	return psprintf("mc_move_%.16s_", md5_of(tenant));
}

static char *
move_name(const char *tenant, const char *member)
{
	return psprintf("%s%.8s", move_prefix(tenant), md5_of(member));
}

static char *
spi_text(int row, int col)
{
	return SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);
}

/*
 * Statements on an application table's rows (the start's check, the
 * tallies, cleanup's DELETE, the view's count) run as the table's owner,
 * restricted (SECURITY_RESTRICTED_OPERATION, as REFRESH MATERIALIZED VIEW
 * and the rollover do): the owner's code they run -- a domain CHECK on the
 * cast to the tenant column's type, triggers cleanup's DELETE fires --
 * never runs with the caller's rights (the extension owner: a superuser).
 * SECURITY_NOFORCE_RLS: the owner sees all of its rows even under FORCE
 * ROW LEVEL SECURITY, so no policy runs and no row is left out of a count
 * or a cleanup.  A GUC nest level (search_path pinned when pin) is closed
 * after: no setting the owner's code made outlives the statement.  An
 * error in between is undone by the (sub)transaction's abort.
 */
typedef struct AsOwner
{
	Oid			save_userid;
	int			save_sec;
	int			nest;
} AsOwner;

static void
as_owner(AsOwner *a, Oid relid, bool pin)
{
	GetUserIdAndSecContext(&a->save_userid, &a->save_sec);
	a->nest = pin ? pin_search_path() : NewGUCNestLevel();
	SetUserIdAndSecContext(get_rel_owner_oid(relid),
						   a->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION | SECURITY_NOFORCE_RLS);
}

static void
as_caller(AsOwner *a)
{
	SetUserIdAndSecContext(a->save_userid, a->save_sec);
	AtEOXact_GUC(false, a->nest);
}

/* The move of tenant, or NULL; needs SPI. */
static Move *
load_move(const char *tenant)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(tenant)};
	Move	   *m;
	uint64		i;

	catalog_execute(psprintf("SELECT m.member, f.server, m.name, m.state FROM %s m "
							 "LEFT JOIN %s f ON f.name OPERATOR(pg_catalog.=) m.member "
							 "WHERE m.tenant OPERATOR(pg_catalog.=) $1",
							 capacity_object("capacity_tenant_move"),
							 capacity_object("capacity_fleet_member")),
					1, types, values, NULL, true);
	if (SPI_processed == 0)
		return NULL;
	m = palloc0(sizeof(Move));
	m->tenant = pstrdup(tenant);
	m->member = spi_text(0, 1);
	m->server = spi_text(0, 2);
	m->name = spi_text(0, 3);
	m->state = spi_text(0, 4);
	catalog_execute(psprintf("SELECT t.table_name::pg_catalog.oid, t.table_name::pg_catalog.text, "
							 "t.tenant_column::pg_catalog.text, "
							 "pg_catalog.format_type(a.atttypid, a.atttypmod) FROM %s t "
							 "JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) t.table_name "
							 " AND a.attname OPERATOR(pg_catalog.=) t.tenant_column "
							 "WHERE t.tenant OPERATOR(pg_catalog.=) $1 ORDER BY t.table_name::pg_catalog.text",
							 capacity_object("capacity_tenant_move_table")),
					1, types, values, NULL, true);
	m->ntables = (int) SPI_processed;
	m->tables = palloc0(sizeof(MoveTable) * Max(m->ntables, 1));
	for (i = 0; i < SPI_processed; i++)
	{
		MoveTable  *t = &m->tables[i];

		t->relid = DatumGetObjectId(DirectFunctionCall1(oidin, CStringGetDatum(spi_text(i, 1))));
		t->qname = psprintf("%s.%s", quote_identifier(get_namespace_name(get_rel_namespace(t->relid))),
							quote_identifier(get_rel_name(t->relid)));
		t->column = spi_text(i, 3);
		t->coltype = spi_text(i, 4);
	}
	return m;
}

static void
report_no_move(const char *tenant, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_OBJECT),
			 errmsg("tenant \"%s\" is not being moved", tenant),
			 errhint("Start a move with capacity_tenant_move(); %s applies to a move in progress.", what)));
}

static Move *
require_move(const char *tenant, const char *what)
{
	Move	   *m = load_move(tenant);

	if (m == NULL)
		report_no_move(tenant, what);
	return m;
}

static void
require_state(Move *m, const char *const *states, const char *what)
{
	for (; *states; states++)
		if (strcmp(m->state, *states) == 0)
			return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the move of tenant \"%s\" is %s: %s is not possible now", m->tenant, m->state, what),
			 errhint("See capacity_tenant_moves for its state.")));
}

static void
set_state(Move *m, const char *state, const char *stamp_column, const char *reason)
{
	Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
	Datum		values[3] = {CStringGetTextDatum(m->tenant), CStringGetTextDatum(state), (Datum) 0};
	char		nulls[3] = {' ', ' ', reason ? ' ' : 'n'};

	if (reason)
		values[2] = CStringGetTextDatum(reason);
	catalog_execute(psprintf("UPDATE %s SET state = $2, reason = $3%s%s%s WHERE tenant OPERATOR(pg_catalog.=) $1",
							 capacity_object("capacity_tenant_move"),
							 stamp_column ? ", " : "", stamp_column ? stamp_column : "",
							 stamp_column ? " = pg_catalog.now()" : ""),
					3, types, values, nulls, false);
	m->state = pstrdup(state);
}

/* The tenant as a literal of the column's type: partition pruning works. */
static char *
tenant_literal(const char *tenant, const char *coltype)
{
	return psprintf("%s::%s", quote_literal_cstr(tenant), coltype);
}

/* Settings that make row text identical on both sides. */
#define ROW_TEXT_SETTINGS \
	"SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET IntervalStyle = 'postgres'; " \
	"SET extra_float_digits = 3; SET bytea_output = 'hex'"

static const char *const row_text_gucs[][2] = {
	{"DateStyle", "ISO, YMD"}, {"TimeZone", "UTC"}, {"IntervalStyle", "postgres"},
	{"extra_float_digits", "3"}, {"bytea_output", "hex"}, {"search_path", "pg_catalog, pg_temp"}
};

static int
pin_row_text_settings(void)
{
	int			nest = NewGUCNestLevel();
	int			i;

	for (i = 0; i < lengthof(row_text_gucs); i++)
		(void) set_config_option(row_text_gucs[i][0], row_text_gucs[i][1], PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/*
 * Count and checksum of the tenant's rows: the checksum is the sum of the
 * first 64 bits of md5(row text) over the rows, in the source's column
 * order, so it needs no sort and no memory, and the member computes the
 * same text.  cols is the column list (quoted, comma separated).
 */
static char *
checksum_sql(MoveTable *t, const char *cols, const char *tenant)
{
	return psprintf("SELECT pg_catalog.count(*), "
					"COALESCE(pg_catalog.sum(('x' OPERATOR(pg_catalog.||) pg_catalog.substr(pg_catalog.md5("
					"ROW(%s)::pg_catalog.text), 1, 16))::pg_catalog.bit(64)::pg_catalog.int8::pg_catalog.numeric), 0)::pg_catalog.text "
					"FROM %s WHERE %s OPERATOR(pg_catalog.=) %s",
					cols, t->qname, quote_identifier(t->column), tenant_literal(tenant, t->coltype));
}

/* Whether table t has a row of tenant, read as its owner; needs SPI. */
static bool
tenant_has_rows(MoveTable *t, const char *tenant)
{
	AsOwner		a;
	bool		found;

	as_owner(&a, t->relid, true);
	if (SPI_execute(psprintf("SELECT 1 FROM %s WHERE %s OPERATOR(pg_catalog.=) %s LIMIT 1", t->qname,
							 quote_identifier(t->column), tenant_literal(tenant, t->coltype)),
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "matter_capacity: reading %s failed", t->qname);
	found = SPI_processed > 0;
	as_caller(&a);
	return found;
}

static char *
column_list(Oid relid)
{
	StringInfoData s;
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};
	uint64		i;

	SPI_execute_with_args("SELECT a.attname::pg_catalog.text FROM pg_catalog.pg_attribute a "
						  "WHERE a.attrelid OPERATOR(pg_catalog.=) $1 AND a.attnum OPERATOR(pg_catalog.>) 0 "
						  "AND NOT a.attisdropped AND a.attgenerated OPERATOR(pg_catalog.=) '' ORDER BY a.attnum",
						  1, types, values, NULL, true, 0);
	initStringInfo(&s);
	for (i = 0; i < SPI_processed; i++)
		appendStringInfo(&s, "%s%s", i ? ", " : "", quote_identifier(spi_text(i, 1)));
	return s.data;
}

/* ----------------------------------------------------------------- remote */

/*
 * A connection to a member through its foreign server and the extension
 * owner's user mapping (the view runs as pg_monitor), under postgres_fdw's
 * password rule as the fleet applies it (remote_password_rule, _used: a
 * server or mapping a non-superuser controls must make us use a password),
 * in a session pinned to search_path = pg_catalog (nothing a user of the
 * member created resolves in our statements there) whose statements the
 * member ends itself after statement_ms (remote.c sends no cancel).  NULL
 * with *error (no secret in it) on failure; *denied when the rule refused.
 */
static PGconn *
member_open(const char *server, int statement_ms, char **error, bool *denied)
{
	const char **keywords;
	const char **values;
	const char *rule = NULL;
	bool		must_use_password = false;
	PGconn	   *conn;
	Oid			save_userid;
	int			save_sec;

	*denied = false;
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(capacity_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		remote_server_params(server, &keywords, &values);
		remote_bound_statements(&keywords, &values, statement_ms);
		remote_pin_session(&keywords, &values);
		rule = remote_password_rule(server, keywords, values, &must_use_password);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
	if (rule == NULL)
	{
		if ((conn = remote_connect(keywords, values, mc_fleet_timeout_ms, error)) == NULL)
			return NULL;
		if ((rule = remote_password_used(conn, must_use_password)) == NULL)
			return conn;
		remote_close(conn);
	}
	*denied = true;
	*error = pstrdup(rule);
	return NULL;
}

static PGconn *
member_connect(const char *member, const char *server)
{
	char	   *error = NULL;
	bool		denied;
	PGconn	   *conn;

	if (server == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("fleet member \"%s\" is not registered any more", member),
				 errhint("Register it again with capacity_fleet_add(%s, 'tier', server).",
						 quote_literal_cstr(member))));
	conn = member_open(server, Max(mc_tenant_move_timeout_ms, mc_fleet_timeout_ms), &error, &denied);
	if (conn == NULL && denied)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("fleet member \"%s\" may not be used for a tenant move: %s", member, error),
				 errhint("Put the password of the member's role in the extension owner's user mapping, "
						 "or have a superuser own the server (ALTER SERVER ... OWNER TO).")));
	if (conn == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("could not connect to fleet member \"%s\": %s", member, error),
				 errhint("matter_capacity.fleet_timeout bounds the connection.")));
	return conn;
}

/*
 * Run sql on the member; ERROR unless it succeeds.  Callers close the
 * connection in their PG_CATCH, so no error path leaks or double-closes it.
 */
static PGresult *
member_exec(PGconn *conn, const char *member, const char *sql, int nparams,
			const char *const *params)
{
	char	   *error = NULL;
	PGresult   *res = remote_exec(conn, sql, nparams, params, mc_tenant_move_timeout_ms, &error);

	if (res == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("fleet member \"%s\" failed a tenant move step: %s", member, error),
				 errhint("matter_capacity.tenant_move_timeout bounds each step on the member.")));
	return res;
}

static void
member_exec_quiet(PGconn *conn, const char *sql, char **error)
{
	PGresult   *res = remote_exec(conn, sql, 0, NULL, mc_tenant_move_timeout_ms, error);

	if (res)
		PQclear(res);
}

/*
 * Statements on the member's application tables (its rows of the tenant:
 * the start's check, the tallies, abort's DELETE, the view's count) run
 * there as the table's owner, restricted, by the member's matter_capacity:
 * capacity_owner_value (a read) and capacity_run_as_owner (a write) run a
 * statement as the owner of a table under SECURITY_RESTRICTED_OPERATION,
 * search_path pinned, every setting undone after (src/convert.c).  Our
 * connection's role is a superuser there (CREATE SUBSCRIPTION needs one in
 * PG 15), and SET ROLE would be no boundary: the owner's code could RESET
 * ROLE.  The quoted schema of the member's extension, or NULL (*why says
 * why) when it has none with capacity_owner_value (1.1).
 */
static const char *member_ext_sql =
"SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e "
"JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'matter_capacity' "
"AND pg_catalog.to_regprocedure(pg_catalog.quote_ident(n.nspname) || "
"'.capacity_owner_value(pg_catalog.regclass, pg_catalog.text)') IS NOT NULL";

static char *
member_extschema_or_null(PGconn *conn, int timeout_ms, char **why)
{
	PGresult   *res = remote_exec(conn, member_ext_sql, 0, NULL, timeout_ms, why);
	char	   *ext = NULL;

	if (res == NULL)
		return NULL;
	if (PQntuples(res) > 0)
		ext = pstrdup(PQgetvalue(res, 0, 0));
	else
		*why = pstrdup("the member has no matter_capacity 1.1: its rows are counted as their owner through it");
	PQclear(res);
	return ext;
}

static char *
member_extschema(PGconn *conn, const char *member)
{
	PGresult   *res = member_exec(conn, member, member_ext_sql, 0, NULL);
	char	   *ext = PQntuples(res) > 0 ? pstrdup(PQgetvalue(res, 0, 0)) : NULL;

	PQclear(res);
	if (ext == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("fleet member \"%s\" has no matter_capacity 1.1", member),
				 errdetail("A tenant move reads and deletes the member's rows of the tenant as the table's owner "
						   "there, through the extension's capacity_owner_value and capacity_run_as_owner."),
				 errhint("CREATE EXTENSION matter_capacity on the member (or ALTER EXTENSION matter_capacity UPDATE).")));
	return ext;
}

/* SQL for the member: $2's first value, run as the owner of table $1. */
static char *
member_owner_value_sql(const char *ext)
{
	return psprintf("SELECT %s.capacity_owner_value($1::pg_catalog.regclass, $2::pg_catalog.text)", ext);
}

/* query's first value (NULL: no row) on the member, as the owner of t there. */
static char *
member_owner_value(PGconn *conn, Move *m, const char *ext, MoveTable *t, const char *query)
{
	const char *params[2] = {t->qname, query};
	PGresult   *res = member_exec(conn, m->member, member_owner_value_sql(ext), 2, params);
	char	   *v = PQgetisnull(res, 0, 0) ? NULL : pstrdup(PQgetvalue(res, 0, 0));

	PQclear(res);
	return v;
}

/* Whether the member's t has a row of the tenant (as its owner there). */
static bool
member_has_rows(PGconn *conn, Move *m, const char *ext, MoveTable *t)
{
	return member_owner_value(conn, m, ext, t,
							  psprintf("SELECT 1 FROM %s WHERE %s OPERATOR(pg_catalog.=) %s LIMIT 1", t->qname,
									   quote_identifier(t->column), tenant_literal(m->tenant, t->coltype))) != NULL;
}

/* Whether the member has the move's subscription. */
static bool
member_has_subscription(PGconn *conn, Move *m)
{
	const char *params[1] = {m->name};
	PGresult   *res = member_exec(conn, m->member,
								  "SELECT 1 FROM pg_catalog.pg_subscription WHERE subname = $1",
								  1, params);
	bool		exists = PQntuples(res) > 0;

	PQclear(res);
	return exists;
}

/* -------------------------------------------------- asked by the rollover */

/*
 * The tenant whose move of relid is not yet cut over (syncing, frozen or
 * failed), or NULL.  The rollover leaves such a table's default-partition
 * rows where they are: its rescue (DELETE from the default, INSERT into a
 * table not yet attached) would replicate the delete and not the insert.
 * Caller is SPI-connected.
 */
char *
tenant_move_in_progress(Oid relid)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(relid)};

	/* a 1.0 schema (this library before ALTER EXTENSION UPDATE) has no moves */
	if (!OidIsValid(get_relname_relid("capacity_tenant_move_table", get_rel_namespace(capacity_relid("capacity_policy")))))
		return NULL;
	catalog_execute(psprintf("SELECT m.tenant FROM %s t JOIN %s m ON m.tenant OPERATOR(pg_catalog.=) t.tenant "
							 "WHERE t.table_name::pg_catalog.oid OPERATOR(pg_catalog.=) $1 "
							 "AND m.state OPERATOR(pg_catalog.<>) ALL ('{cut over,cleaned,aborted here}') "
							 "ORDER BY m.tenant LIMIT 1",
							 capacity_object("capacity_tenant_move_table"), capacity_object("capacity_tenant_move")),
					1, types, values, NULL, true);
	return SPI_processed > 0 ? spi_text(0, 1) : NULL;
}

void
tenant_move_allow_rescue(bool on)
{
	rescue_allowed = on;
}

/* ------------------------------------------------------------- arguments */

/*
 * The entry points are CALLED ON NULL INPUT: a NULL is an error naming the
 * argument (22004), never a silent NULL result or a crash.
 */
static void
require_arg(FunctionCallInfo fcinfo, int n, const char *func, const char *name, const char *hint)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s: argument %s must not be NULL", func, name),
				 errhint("%s", hint)));
}

static char *
tenant_arg(FunctionCallInfo fcinfo, const char *func)
{
	require_arg(fcinfo, 0, func, "tenant",
				"Name the tenant whose move this is; see capacity_tenant_moves.");
	return text_to_cstring(PG_GETARG_TEXT_PP(0));
}

/* ---------------------------------------------------------------- barrier */

static uint32
tenant_key(const char *tenant)
{
	return DatumGetUInt32(hash_any((const unsigned char *) tenant, strlen(tenant)));
}

typedef struct BarrierArg
{
	Oid			classid;
	uint32		key;
	LOCKMODE	mode;
} BarrierArg;

static void
barrier_step(void *arg)
{
	BarrierArg *b = arg;

	LockDatabaseObject(b->classid, b->key, 0, b->mode);
}

/* Exclusive barrier on the tenant's writes, bounded like any DDL step. */
static BarrierArg
barrier_take(const char *tenant)
{
	BarrierArg	b;

	b.classid = capacity_relid("capacity_tenant_move");
	b.key = tenant_key(tenant);
	b.mode = ShareLock;
	if (!run_bounded(barrier_step, &b, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("writes of tenant \"%s\" did not pause within matter_capacity.lock_timeout", tenant),
				 errdetail("A transaction writing the tenant's rows held on for %d attempts of %d ms.",
						   mc_lock_retries + 1, mc_lock_timeout_ms),
				 errhint("Try again; long transactions on the tenant's rows delay the barrier.")));
	return b;
}

static void
barrier_release(BarrierArg *b)
{
	ResourceOwner save = CurrentResourceOwner;

	/* run_bounded's subtransaction handed the lock to the transaction's owner */
	CurrentResourceOwner = CurTransactionResourceOwner;
	UnlockDatabaseObject(b->classid, b->key, 0, b->mode);
	CurrentResourceOwner = save;
}

/* WAL position the move's slot has confirmed (flushed on the member). */
static XLogRecPtr
slot_confirmed(const char *slot)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(slot)};
	bool		isnull;
	Datum		d;

	SPI_execute_with_args("SELECT confirmed_flush_lsn FROM pg_catalog.pg_replication_slots "
						  "WHERE slot_name OPERATOR(pg_catalog.=) $1",
						  1, types, values, NULL, true, 0);
	if (SPI_processed != 1)
		return InvalidXLogRecPtr;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? InvalidXLogRecPtr : DatumGetLSN(d);
}

/* Wait (bounded) until the member confirmed lsn. */
static void
wait_confirmed(Move *m, XLogRecPtr lsn)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), mc_tenant_move_timeout_ms);

	for (;;)
	{
		XLogRecPtr	got = slot_confirmed(m->name);

		if (got != InvalidXLogRecPtr && got >= lsn)
			return;
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("fleet member \"%s\" did not confirm WAL %X/%X of tenant \"%s\" within %d ms",
							m->member, LSN_FORMAT_ARGS(lsn), m->tenant, mc_tenant_move_timeout_ms),
					 errdetail("The subscription's slot %s has confirmed %X/%X.", m->name, LSN_FORMAT_ARGS(got)),
					 errhint("Check the lag in capacity_tenant_moves; matter_capacity.tenant_move_timeout bounds the wait.")));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Every table of the subscription must be ready (initial copy done). */
static void
require_synced(PGconn *conn, Move *m)
{
	const char *params[1] = {m->name};
	PGresult   *res = member_exec(conn, m->member,
								  "SELECT r.srrelid::pg_catalog.regclass::pg_catalog.text, r.srsubstate "
								  "FROM pg_catalog.pg_subscription_rel r JOIN pg_catalog.pg_subscription s "
								  "ON s.oid = r.srsubid WHERE s.subname = $1 AND r.srsubstate <> 'r' "
								  "UNION ALL SELECT '(no subscription)', '?' WHERE NOT EXISTS "
								  "(SELECT 1 FROM pg_catalog.pg_subscription WHERE subname = $1)",
								  1, params);

	if (PQntuples(res) > 0)
	{
		char	   *tbl = pstrdup(PQgetvalue(res, 0, 0));
		char	   *st = pstrdup(PQgetvalue(res, 0, 1));

		PQclear(res);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the initial copy of tenant \"%s\" to member \"%s\" is not finished", m->tenant, m->member),
				 errdetail("Table %s is in subscription state %s.", tbl, st),
				 errhint("Wait until capacity_tenant_moves shows the move verifying.")));
	}
	PQclear(res);
}

/* ----------------------------------------------------------------- verify */

typedef struct Tally
{
	char	   *rows;
	char	   *checksum;
} Tally;

/*
 * Counts and checksums on both sides at one consistent point; see the file
 * header.  Source tallies in src[], member's in dst[].  The member
 * connection is left open (in no transaction).
 */
static void
tally_both(Move *m, PGconn *conn, Tally *src, Tally *dst, bool subscribed)
{
	char	  **cols = palloc(sizeof(char *) * m->ntables);
	bool		live = strcmp(m->state, "syncing") == 0;
	BarrierArg	b;
	Snapshot	snap;
	char	   *ext;
	int			i;
	int			nest;

	for (i = 0; i < m->ntables; i++)
		cols[i] = column_list(m->tables[i].relid);
	ext = member_extschema(conn, m->member);
	PQclear(member_exec(conn, m->member, ROW_TEXT_SETTINGS, 0, NULL));

	if (live)
		b = barrier_take(m->tenant);
	/* frozen: no write of the tenant can commit any more */
	snap = RegisterSnapshot(GetLatestSnapshot());
	/* no subscription (a resumed cutover): nothing more will arrive */
	if (subscribed)
		wait_confirmed(m, GetXLogInsertRecPtr());
	PQclear(member_exec(conn, m->member, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL));
	PQclear(member_exec(conn, m->member, "SELECT 1", 0, NULL));
	if (live)
		barrier_release(&b);

	for (i = 0; i < m->ntables; i++)
	{
		char	   *v = member_owner_value(conn, m, ext, &m->tables[i],
										   psprintf("SELECT s.n::pg_catalog.text OPERATOR(pg_catalog.||) ' ' "
													"OPERATOR(pg_catalog.||) s.c FROM (%s) s(n, c)",
													checksum_sql(&m->tables[i], cols[i], m->tenant)));
		char	   *sp = v ? strchr(v, ' ') : NULL;

		if (sp == NULL)
			elog(ERROR, "matter_capacity: tally of %s on fleet member \"%s\" returned no row",
				 m->tables[i].qname, m->member);
		*sp = '\0';
		dst[i].rows = v;
		dst[i].checksum = sp + 1;
	}
	PQclear(member_exec(conn, m->member, "COMMIT", 0, NULL));

	PushActiveSnapshot(snap);
	nest = pin_row_text_settings();
	for (i = 0; i < m->ntables; i++)
	{
		AsOwner		a;

		as_owner(&a, m->tables[i].relid, false);
		if (SPI_execute(checksum_sql(&m->tables[i], cols[i], m->tenant), true, 0) != SPI_OK_SELECT)
			elog(ERROR, "matter_capacity: tally of %s failed", m->tables[i].qname);
		as_caller(&a);
		src[i].rows = spi_text(0, 1);
		src[i].checksum = spi_text(0, 2);
	}
	AtEOXact_GUC(false, nest);
	PopActiveSnapshot();
	UnregisterSnapshot(snap);
}

/* Record the tallies as the last verification; true when all are equal. */
static bool
record_tallies(Move *m, Tally *src, Tally *dst)
{
	bool		all = true;
	int			i;

	for (i = 0; i < m->ntables; i++)
	{
		Oid			types[6] = {TEXTOID, OIDOID, INT8OID, INT8OID, TEXTOID, TEXTOID};
		Datum		values[6];
		bool		eq = strcmp(src[i].rows, dst[i].rows) == 0 &&
			strcmp(src[i].checksum, dst[i].checksum) == 0;

		all = all && eq;
		values[0] = CStringGetTextDatum(m->tenant);
		values[1] = ObjectIdGetDatum(m->tables[i].relid);
		values[2] = DirectFunctionCall1(int8in, CStringGetDatum(src[i].rows));
		values[3] = DirectFunctionCall1(int8in, CStringGetDatum(dst[i].rows));
		values[4] = CStringGetTextDatum(src[i].checksum);
		values[5] = CStringGetTextDatum(dst[i].checksum);
		catalog_execute(psprintf("UPDATE %s SET source_rows = $3, target_rows = $4, source_checksum = $5, "
								 "target_checksum = $6, equal = ($3 OPERATOR(pg_catalog.=) $4 AND "
								 "$5 OPERATOR(pg_catalog.=) $6), verified_at = pg_catalog.now() "
								 "WHERE tenant OPERATOR(pg_catalog.=) $1 "
								 "AND table_name::pg_catalog.oid OPERATOR(pg_catalog.=) $2",
								 capacity_object("capacity_tenant_move_table")),
						6, types, values, NULL, false);
	}
	return all;
}

Datum
capacity_tenant_move_verify(PG_FUNCTION_ARGS)
{
	static const char *const ok_states[] = {"syncing", "frozen", NULL};
	char	   *tenant = tenant_arg(fcinfo, "capacity_tenant_move_verify");
	Tuplestorestate *store;
	TupleDesc	desc;
	Move	   *m;
	PGconn	   *conn;
	Tally	   *src,
			   *dst;
	int			i;

	init_materialized(fcinfo, &store, &desc);
	SPI_connect();
	m = require_move(tenant, "verification");
	require_state(m, ok_states, "verification");
	conn = member_connect(m->member, m->server);
	src = palloc0(sizeof(Tally) * m->ntables);
	dst = palloc0(sizeof(Tally) * m->ntables);
	PG_TRY();
	{
		require_synced(conn, m);
		tally_both(m, conn, src, dst, true);
	}
	PG_CATCH();
	{
		remote_close(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	remote_close(conn);
	(void) record_tallies(m, src, dst);

	for (i = 0; i < m->ntables; i++)
	{
		Datum		values[6];
		bool		nulls[6] = {0};

		values[0] = ObjectIdGetDatum(m->tables[i].relid);
		values[1] = DirectFunctionCall1(int8in, CStringGetDatum(src[i].rows));
		values[2] = DirectFunctionCall1(int8in, CStringGetDatum(dst[i].rows));
		values[3] = CStringGetTextDatum(src[i].checksum);
		values[4] = CStringGetTextDatum(dst[i].checksum);
		values[5] = BoolGetDatum(strcmp(src[i].rows, dst[i].rows) == 0 &&
								 strcmp(src[i].checksum, dst[i].checksum) == 0);
		tuplestore_putvalues(store, desc, values, nulls);
	}
	SPI_finish();
	PG_RETURN_NULL();
}

/* ------------------------------------------------------------------- move */

/* Tables to move: the given ones, or every managed table with a tenant column. */
static void
resolve_tables(Move *m, ArrayType *given)
{
	Oid			types[1] = {OIDARRAYOID};
	Datum		values[1];
	char		nulls[1] = {given ? ' ' : 'n'};
	uint64		i;

	if (given)
		values[0] = PointerGetDatum(given);
	else
		values[0] = (Datum) 0;
	if (given && array_contains_nulls(given))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("capacity_tenant_move: argument tables must not contain NULL"),
				 errhint("List managed tables with a tenant column, or leave tables out for all of them.")));
	if (given && ArrayGetNItems(ARR_NDIM(given), ARR_DIMS(given)) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("capacity_tenant_move: argument tables is an empty list"),
				 errhint("List managed tables with a tenant column, or leave tables out for all of them.")));
	/* given tables that have no tenant column are named */
	if (given)
	{
		catalog_execute(psprintf("SELECT g::pg_catalog.regclass::pg_catalog.text FROM pg_catalog.unnest($1) g "
								 "WHERE NOT EXISTS (SELECT 1 FROM %s p WHERE p.table_name::pg_catalog.oid "
								 "OPERATOR(pg_catalog.=) g AND p.hash_column IS NOT NULL)",
								 capacity_object("capacity_policy")),
						1, types, values, nulls, true);
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("table %s has no tenant column", spi_text(0, 1)),
					 errhint("Only tables managed with a tenant (hash) column by capacity_manage() can be moved by tenant.")));
	}
	catalog_execute(psprintf("SELECT p.table_name::pg_catalog.oid::pg_catalog.text, p.hash_column::pg_catalog.text, "
							 "pg_catalog.format_type(a.atttypid, a.atttypmod) FROM %s p "
							 "JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) p.table_name "
							 " AND a.attname OPERATOR(pg_catalog.=) p.hash_column "
							 "WHERE p.hash_column IS NOT NULL AND ($1 IS NULL OR p.table_name::pg_catalog.oid "
							 "OPERATOR(pg_catalog.=) ANY ($1)) ORDER BY p.table_name::pg_catalog.text",
							 capacity_object("capacity_policy")),
					1, types, values, nulls, true);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no managed table has a tenant column"),
				 errhint("Manage the tables with capacity_manage(..., hash_column => ...) or pass tables.")));
	m->ntables = (int) SPI_processed;
	m->tables = palloc0(sizeof(MoveTable) * m->ntables);
	for (i = 0; i < SPI_processed; i++)
	{
		MoveTable  *t = &m->tables[i];

		t->relid = DatumGetObjectId(DirectFunctionCall1(oidin, CStringGetDatum(spi_text(i, 1))));
		t->qname = psprintf("%s.%s", quote_identifier(get_namespace_name(get_rel_namespace(t->relid))),
							quote_identifier(get_rel_name(t->relid)));
		t->column = spi_text(i, 2);
		t->coltype = spi_text(i, 3);
	}
}

/*
 * Every table (and every partition of it) needs a replica identity that
 * covers the tenant column: without it the publication would make the
 * application's UPDATEs and DELETEs fail, and the row filter is invalid.
 */
static void
check_source_tables(Move *m)
{
	bool		any_rows = false;
	int			i;

	for (i = 0; i < m->ntables && !any_rows; i++)
		any_rows = tenant_has_rows(&m->tables[i], m->tenant);
	if (!any_rows)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("tenant \"%s\" has no rows in the tables to move", m->tenant),
				 errhint("Check the spelling: the tenant column of %s is %s.",
						 m->tables[0].qname, quote_identifier(m->tables[0].column))));

	for (i = 0; i < m->ntables; i++)
	{
		MoveTable  *t = &m->tables[i];
		Oid			types[2] = {OIDOID, TEXTOID};
		Datum		values[2] = {ObjectIdGetDatum(t->relid), CStringGetTextDatum(t->column)};

		Oid			coltype = get_atttype(t->relid, get_attnum(t->relid, t->column));
		int			nest;

		/*
		 * PostgreSQL refuses a row filter on a user-defined type (a domain,
		 * an enum): say so before the publication would, naming the column.
		 */
		if (coltype >= FirstNormalObjectId)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("the tenant column %s of table %s has type %s, which a publication's row filter cannot use",
							quote_identifier(t->column), t->qname, t->coltype),
					 errdetail("Logical replication allows only built-in types in a row filter; %s is user-defined.",
							   t->coltype),
					 errhint("Give the tenant column a built-in type (text, uuid, bigint, ...) to move tenants of %s.",
							 t->qname)));
		nest = pin_search_path();
		SPI_execute_with_args("SELECT c.oid::pg_catalog.regclass::pg_catalog.text "
							  "FROM pg_catalog.pg_partition_tree($1) p JOIN pg_catalog.pg_class c "
							  " ON c.oid OPERATOR(pg_catalog.=) p.relid::pg_catalog.oid "
							  "WHERE NOT (c.relreplident OPERATOR(pg_catalog.=) 'f' OR EXISTS (SELECT 1 FROM pg_catalog.pg_index i "
							  " JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid "
							  " AND a.attname OPERATOR(pg_catalog.=) $2::pg_catalog.name "
							  " WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid "
							  " AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[]) "
							  " AND ((c.relreplident OPERATOR(pg_catalog.=) 'd' AND i.indisprimary) "
							  "  OR (c.relreplident OPERATOR(pg_catalog.=) 'i' AND i.indisreplident)))) "
							  "ORDER BY p.level, 1 LIMIT 1",
							  2, types, values, NULL, true, 0);
		AtEOXact_GUC(false, nest);
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table %s has no replica identity covering its tenant column %s",
							spi_text(0, 1), quote_identifier(t->column)),
					 errdetail("Publishing it would make UPDATE and DELETE on it fail."),
					 errhint("Give %s a primary key that includes %s, or ALTER TABLE ... REPLICA IDENTITY.",
							 t->qname, quote_identifier(t->column))));
	}
}

/* The member has each table, the same columns and types, an identity, no rows of the tenant. */
static void
check_member_tables(Move *m, PGconn *conn)
{
	char	   *ext = member_extschema(conn, m->member);
	int			i;

	for (i = 0; i < m->ntables; i++)
	{
		MoveTable  *t = &m->tables[i];
		Oid			types[1] = {OIDOID};
		Datum		values[1] = {ObjectIdGetDatum(t->relid)};
		const char *params[1] = {t->qname};
		PGresult   *res;
		uint64		j;
		char	   *found;

		res = member_exec(conn, m->member,
						  "SELECT pg_catalog.to_regclass($1) IS NOT NULL, "
						  "EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1) "
						  " AND (c.relreplident = 'f' OR EXISTS (SELECT 1 FROM pg_catalog.pg_index i "
						  "  WHERE i.indrelid = c.oid AND (i.indisprimary OR i.indisreplident))))",
						  1, params);
		if (strcmp(PQgetvalue(res, 0, 0), "t") != 0)
		{
			PQclear(res);
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("table %s does not exist on fleet member \"%s\"", t->qname, m->member),
					 errhint("Create the same schema on the member first (and the same capacity_manage policies).")));
		}
		if (strcmp(PQgetvalue(res, 0, 1), "t") != 0)
		{
			PQclear(res);
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table %s on fleet member \"%s\" has no primary key or replica identity",
							t->qname, m->member),
					 errhint("The subscription needs it to apply UPDATE and DELETE; give it the source's primary key.")));
		}
		PQclear(res);

		res = member_exec(conn, m->member,
						  "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) "
						  "FROM pg_catalog.pg_attribute a WHERE a.attrelid = pg_catalog.to_regclass($1) "
						  "AND a.attnum > 0 AND NOT a.attisdropped",
						  1, params);
		SPI_execute_with_args("SELECT a.attname::pg_catalog.text, pg_catalog.format_type(a.atttypid, a.atttypmod) "
							  "FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) $1 "
							  "AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped ORDER BY a.attnum",
							  1, types, values, NULL, true, 0);
		for (j = 0; j < SPI_processed; j++)
		{
			char	   *name = spi_text(j, 1);
			char	   *type = spi_text(j, 2);
			int			r;

			found = NULL;
			for (r = 0; r < PQntuples(res); r++)
				if (strcmp(PQgetvalue(res, r, 0), name) == 0)
					found = pstrdup(PQgetvalue(res, r, 1));
			if (found == NULL || strcmp(found, type) != 0)
			{
				PQclear(res);
				ereport(ERROR,
						(errcode(found ? ERRCODE_DATATYPE_MISMATCH : ERRCODE_UNDEFINED_COLUMN),
						 found ? errmsg("column %s of table %s is %s on fleet member \"%s\", %s here",
										quote_identifier(name), t->qname, found, m->member, type)
						 : errmsg("column %s of table %s does not exist on fleet member \"%s\"",
								  quote_identifier(name), t->qname, m->member),
						 errhint("The member's table must have the same columns with the same types.")));
			}
		}
		PQclear(res);

		if (member_has_rows(conn, m, ext, t))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("table %s on fleet member \"%s\" already has rows of tenant \"%s\"",
							t->qname, m->member, m->tenant),
					 errhint("A move copies into an empty tenant; delete those rows on the member or choose another member.")));
	}
}

static char *
trigger_name(const char *tenant)
{
	return psprintf("capacity_tenant_move_%.16s", md5_of(tenant));
}

static void
run_ddl_bounded(const char *sql, const char *what)
{
	if (!run_bounded(exec_sql_step, (void *) sql, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("could not %s within matter_capacity.lock_timeout", what),
				 errdetail("%d attempts of %d ms each.", mc_lock_retries + 1, mc_lock_timeout_ms),
				 errhint("Try again when fewer long transactions hold the table.")));
}

/* The source conninfo the member's subscription uses: no password, ever. */
static char *
source_conninfo(text *given)
{
	char	   *ci;
	char	   *err = NULL;
	PQconninfoOption *opts;
	PQconninfoOption *o;

	if (given)
		ci = text_to_cstring(given);
	else
	{
		char	   *dirs = pstrdup(Unix_socket_directories ? Unix_socket_directories : "");
		char	   *comma = strchr(dirs, ',');

		if (comma)
			*comma = '\0';
		ci = psprintf("host=%s port=%d dbname=%s user=%s",
					  quote_literal_cstr(dirs[0] ? dirs : "localhost"), PostPortNumber,
					  quote_literal_cstr(get_database_name(MyDatabaseId)),
					  quote_literal_cstr(GetUserNameFromId(GetUserId(), false)));
	}
	opts = PQconninfoParse(ci, &err);
	if (opts == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source_conninfo is not a valid connection string"),
				 errhidestmt(true), errhidecontext(true),
				 errhint("Give host, port, dbname and user as key=value pairs.")));
	for (o = opts; o->keyword; o++)
		if (remote_secret_option(o->keyword) && o->val && o->val[0])
		{
			PQconninfoFree(opts);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("source_conninfo must not contain a password"),
					 /* the statement carries it: keep it out of the server log */
					 errhidestmt(true), errhidecontext(true),
					 errhint("Put the password in the member's password file (passfile).")));
		}
	PQconninfoFree(opts);
	return ci;
}

/*
 * One change of a tenant's move at a time.  start, freeze, cutover, abort
 * and cleanup take a transaction-level lock in a key space no SQL function
 * reaches (the barrier's class and key, sub-id 1; the barrier uses 0),
 * first thing, and hold it to the end of their transaction -- across their
 * steps on the member, which commit there on their own.  Without it an
 * abort could delete the member's copy while a cutover of the same move
 * recorded the tenant as living there.  The start takes it without
 * waiting (a second start is refused at once); the others wait at most
 * lock_timeout x (lock_retries + 1), then re-read the move: what they
 * waited for may have changed or removed it.
 */
static void
start_guard(const char *tenant)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, MyDatabaseId, capacity_relid("capacity_tenant_move"), tenant_key(tenant), 1);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a move of tenant \"%s\" is being started or changed by another session", tenant),
				 errhint("Wait for it to end, then see capacity_tenant_moves.")));
}

static void
move_lock_step(void *arg)
{
	LockDatabaseObject(capacity_relid("capacity_tenant_move"), tenant_key((const char *) arg), 1, ExclusiveLock);
}

/*
 * The move of tenant, locked for what (see start_guard), read after the
 * lock with the latest snapshot; NULL if there is none.  Needs SPI.
 */
static Move *
lock_move(const char *tenant, const char *what)
{
	Move	   *m;

	require_not_in_recovery("change a tenant move");
	if (!run_bounded(move_lock_step, (void *) tenant, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("the move of tenant \"%s\" is being changed by another session", tenant),
				 errdetail("%s waited %d attempts of %d ms for a start, freeze, cutover, abort or cleanup "
						   "of the same move.", what, mc_lock_retries + 1, mc_lock_timeout_ms),
				 errhint("Let that call end, then see capacity_tenant_moves and try again if still needed.")));
	PushActiveSnapshot(GetLatestSnapshot());
	m = load_move(tenant);
	PopActiveSnapshot();
	return m;
}

/*
 * Drop the move's replication slot here if it is left (an interrupted
 * start or cutover; the member's DROP SUBSCRIPTION drops it otherwise):
 * an inactive logical slot retains WAL without bound.  A slot in use
 * means a subscription somewhere still streams from it: waited for up to
 * tenant_move_timeout (a subscription just dropped lets go of it), then
 * refused.  Runs as the caller (the slot functions check REPLICATION).
 * True if a slot was dropped.
 */
static bool
drop_slot_here(const char *name, const char *tenant)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), mc_tenant_move_timeout_ms);
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};

	for (;;)
	{
		bool		isnull;

		SPI_execute_with_args("SELECT active FROM pg_catalog.pg_replication_slots "
							  "WHERE slot_name OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, false, 0);
		if (SPI_processed == 0)
			return false;
		if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		{
			SPI_execute_with_args("SELECT pg_catalog.pg_drop_replication_slot($1)",
								  1, types, values, NULL, false, 0);
			return true;
		}
		if (GetCurrentTimestamp() >= deadline)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("replication slot %s of the move of tenant \"%s\" is in use", name, tenant),
					 errdetail("A subscription still streams from it (pg_stat_replication.application_name is %s).", name),
					 errhint("Drop subscription %s on the server that runs it, then try again.", name)));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 50, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * With no move of the tenant recorded, its publications and slots here are
 * left by an interrupted start (to any member: the member is part of the
 * name and not recorded): dropped, a slot once no subscription streams
 * from it (drop_slot_here).  Returns their names, or NULL.  With
 * pubs, publications are not dropped but their names are added to it: the
 * start drops them through the loopback, which would wait for a DROP of
 * ours not yet committed.
 */
static char *
drop_leftovers_here(const char *tenant, bool *pub, bool *slot, StringInfo pubs)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(move_prefix(tenant))};
	List	   *names = NIL;
	ListCell   *lc;
	StringInfoData out;
	int			i;

	SPI_execute_with_args("SELECT n, bool_or(pub) FROM "
						  "(SELECT pubname::pg_catalog.text, true FROM pg_catalog.pg_publication "
						  " UNION ALL SELECT slot_name::pg_catalog.text, false FROM pg_catalog.pg_replication_slots) AS l(n, pub) "
						  "WHERE pg_catalog.starts_with(n, $1) GROUP BY n ORDER BY n",
						  1, types, values, NULL, false, 0);
	for (i = 0; i < (int) SPI_processed; i++)
	{
		bool		isnull;

		names = lappend(names, psprintf("%c%s", DatumGetBool(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull)) ? 'p' : '-',
										spi_text(i, 1)));
	}
	initStringInfo(&out);
	foreach(lc, names)
	{
		char	   *name = (char *) lfirst(lc) + 1;

		if (drop_slot_here(name, tenant))
			*slot = true;
		if (*(char *) lfirst(lc) == 'p' && pubs)
			appendStringInfo(pubs, ", %s", quote_identifier(name));
		else if (*(char *) lfirst(lc) == 'p')
		{
			exec_sql(psprintf("DROP PUBLICATION IF EXISTS %s", quote_identifier(name)), SPI_OK_UTILITY);
			*pub = true;
		}
		appendStringInfo(&out, "%s%s", out.len ? ", " : "", name);
	}
	return out.len ? out.data : NULL;
}

/* Undo what the move created so far, quietly (we are failing already). */
static void
undo_move(Move *m, PGconn *conn, bool subscription)
{
	char	   *error = NULL;

	if (conn && subscription)
		member_exec_quiet(conn, psprintf("DROP SUBSCRIPTION IF EXISTS %s", quote_identifier(m->name)), &error);
	/* the member may have created the slot here and then given up */
	(void) loopback_run(psprintf("SET statement_timeout = %d; DROP PUBLICATION IF EXISTS %s; "
								 "SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM pg_catalog.pg_replication_slots "
								 "WHERE slot_name = %s AND NOT active",
								 mc_tenant_move_timeout_ms, quote_identifier(m->name),
								 quote_literal_cstr(m->name)), &error);
}

Datum
capacity_tenant_move(PG_FUNCTION_ARGS)
{
	Move	   *m = palloc0(sizeof(Move));
	char	   *kind;
	char	   *conninfo;
	char	   *error = NULL;
	StringInfoData pub;
	StringInfoData leftover_pubs;
	PGconn	   *conn;
	volatile bool published = false;
	volatile bool subscribed = false;
	int			i;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tenant and target must not be NULL"),
				 errhint("Name the tenant and a fleet member of kind tier.")));
	m->tenant = text_to_cstring(PG_GETARG_TEXT_PP(0));
	m->member = text_to_cstring(PG_GETARG_TEXT_PP(1));
	m->name = move_name(m->tenant, m->member);
	conninfo = source_conninfo(PG_ARGISNULL(3) ? NULL : PG_GETARG_TEXT_PP(3));
	require_not_in_recovery("capacity_tenant_move");
	/* first thing after the arguments (a standby takes no such lock) */
	start_guard(m->tenant);
	if (TransactionIdIsValid(GetTopTransactionIdIfAny()))
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("capacity_tenant_move must run in a transaction that has not written yet"),
				 errdetail("The member's replication slot waits for every transaction that has written."),
				 errhint("Call it on its own (autocommit), not after writes in the same transaction.")));

	SPI_connect();
	{
		Move	   *old = load_move(m->tenant);
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(m->tenant)};

		if (old && (strcmp(old->state, "cut over") == 0 || strcmp(old->state, "cleaned") == 0))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("tenant \"%s\" has already moved to fleet member \"%s\"", m->tenant, old->member),
					 errhint("See capacity_tenant_tier and capacity_tenant_moves.")));
		if (old)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("tenant \"%s\" is already being moved to fleet member \"%s\" (%s)",
							m->tenant, old->member, old->state),
					 errhint("Finish it with capacity_tenant_move_cutover() or undo it with capacity_tenant_move_abort().")));
		catalog_execute(psprintf("SELECT member FROM %s WHERE tenant OPERATOR(pg_catalog.=) $1",
								 capacity_object("capacity_tenant_tier")),
						1, types, values, NULL, true);
		if (SPI_processed > 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("tenant \"%s\" has already moved to fleet member \"%s\"", m->tenant, spi_text(0, 1)),
					 errhint("See capacity_tenant_tier.")));
		values[0] = CStringGetTextDatum(m->member);
		catalog_execute(psprintf("SELECT kind, server FROM %s WHERE name OPERATOR(pg_catalog.=) $1",
								 capacity_object("capacity_fleet_member")),
						1, types, values, NULL, true);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("fleet member \"%s\" does not exist", m->member),
					 errhint("Register the dedicated cluster with capacity_fleet_add(name, 'tier', server).")));
		kind = spi_text(0, 1);
		m->server = spi_text(0, 2);
		if (strcmp(kind, "tier") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("fleet member \"%s\" is a %s, not a tier", m->member, kind),
					 errhint("A tenant moves to a member registered with kind 'tier'.")));
	}
	resolve_tables(m, PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2));
	check_source_tables(m);

	conn = member_connect(m->member, m->server);

	initStringInfo(&pub);
	appendStringInfo(&pub, "CREATE PUBLICATION %s FOR TABLE ", quote_identifier(m->name));
	for (i = 0; i < m->ntables; i++)
		appendStringInfo(&pub, "%s%s WHERE (%s OPERATOR(pg_catalog.=) %s)", i ? ", " : "", m->tables[i].qname,
						 quote_identifier(m->tables[i].column),
						 tenant_literal(m->tenant, m->tables[i].coltype));
	appendStringInfoString(&pub, " WITH (publish_via_partition_root = true)");

	PG_TRY();
	{
		check_member_tables(m, conn);
		/* no move is recorded: slots of its names are left by interrupted starts */
		initStringInfo(&leftover_pubs);
		appendStringInfoString(&leftover_pubs, quote_identifier(m->name));
		{
			bool		pub = false;
			bool		slot = false;
			char	   *left = drop_leftovers_here(m->tenant, &pub, &slot, &leftover_pubs);

			if (slot)
				ereport(NOTICE,
						(errmsg("dropped replication slot %s, left here by an interrupted move of tenant \"%s\"",
								left, m->tenant)));
		}
		/* committed at once: the member's slot must not wait for us */
		published = true;
		if (!loopback_run(psprintf("SET statement_timeout = %d; SET lock_timeout = %d; "
								   "DROP PUBLICATION IF EXISTS %s; %s",
								   mc_tenant_move_timeout_ms, mc_tenant_move_timeout_ms,
								   leftover_pubs.data, pub.data),
						  &error))
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("could not create publication %s for tenant \"%s\": %s", m->name, m->tenant, error),
					 errhint("The publication is created through matter_capacity.loopback_conninfo.")));
		/* never drop, on failure, a subscription this call did not create */
		if (member_has_subscription(conn, m))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("subscription %s for tenant \"%s\" already exists on fleet member \"%s\"",
							m->name, m->tenant, m->member),
					 errdetail("No move of the tenant is recorded here; it is left over from an earlier attempt "
							   "or was made by hand."),
					 errhint("Drop it on the member (DROP SUBSCRIPTION) once you know it is not in use, then try again.")));
		subscribed = true;
		PQclear(member_exec(conn, m->member,
							psprintf("CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION %s "
									 "WITH (slot_name = %s, copy_data = true)",
									 quote_identifier(m->name), quote_literal_cstr(conninfo),
									 quote_identifier(m->name), quote_identifier(m->name)),
							0, NULL));

		for (i = 0; i < m->ntables; i++)
			run_ddl_bounded(psprintf("CREATE TRIGGER %s BEFORE INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW "
									 "EXECUTE FUNCTION %s(%s, %s)",
									 quote_identifier(trigger_name(m->tenant)), m->tables[i].qname,
									 capacity_object("capacity_tenant_move_guard"),
									 quote_literal_cstr(m->tables[i].column), quote_literal_cstr(m->tenant)),
							psprintf("add the tenant guard trigger to %s", m->tables[i].qname));
	}
	PG_CATCH();
	{
		if (published)
			undo_move(m, PQstatus(conn) == CONNECTION_OK ? conn : NULL, subscribed);
		remote_close(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	remote_close(conn);

	{
		Oid			types[3] = {TEXTOID, TEXTOID, TEXTOID};
		Datum		values[3] = {CStringGetTextDatum(m->tenant), CStringGetTextDatum(m->member),
		CStringGetTextDatum(m->name)};

		catalog_execute(psprintf("INSERT INTO %s (tenant, member, name, state) VALUES ($1, $2, $3, 'syncing')",
								 capacity_object("capacity_tenant_move")),
						3, types, values, NULL, false);
		for (i = 0; i < m->ntables; i++)
		{
			Oid			t2[3] = {TEXTOID, OIDOID, TEXTOID};
			Datum		v2[3] = {values[0], ObjectIdGetDatum(m->tables[i].relid),
			CStringGetTextDatum(m->tables[i].column)};

			catalog_execute(psprintf("INSERT INTO %s (tenant, table_name, tenant_column) VALUES ($1, $2, $3)",
									 capacity_object("capacity_tenant_move_table")),
							3, t2, v2, NULL, false);
		}
	}
	SPI_finish();
	PG_RETURN_VOID();
}

/* ----------------------------------------------------- freeze and cutover */

Datum
capacity_tenant_move_freeze(PG_FUNCTION_ARGS)
{
	static const char *const ok_states[] = {"syncing", NULL};
	char	   *tenant = tenant_arg(fcinfo, "capacity_tenant_move_freeze");
	Move	   *m;

	SPI_connect();
	if ((m = lock_move(tenant, "freeze")) == NULL)
		report_no_move(tenant, "freeze");
	require_state(m, ok_states, "freeze");
	/* in-flight writes of the tenant finish; later ones see frozen */
	(void) barrier_take(tenant);
	set_state(m, "frozen", "frozen_at", NULL);
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * Drop the move's subscription on the member, if it is there.  When its
 * slot here is gone already (a forced abort dropped it), DROP SUBSCRIPTION
 * would fail trying to drop it: the subscription lets go of it first.
 */
static void
member_drop_subscription(PGconn *conn, Move *m)
{
	const char *sub = quote_identifier(m->name);
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(m->name)};

	if (!member_has_subscription(conn, m))
		return;
	SPI_execute_with_args("SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name OPERATOR(pg_catalog.=) $1",
						  1, types, values, NULL, false, 0);
	if (SPI_processed == 0)
	{
		PQclear(member_exec(conn, m->member, psprintf("ALTER SUBSCRIPTION %s DISABLE", sub), 0, NULL));
		PQclear(member_exec(conn, m->member, psprintf("ALTER SUBSCRIPTION %s SET (slot_name = NONE)", sub), 0, NULL));
	}
	PQclear(member_exec(conn, m->member, psprintf("DROP SUBSCRIPTION %s", sub), 0, NULL));
}

/*
 * Cutover, in steps that can be taken again: a cutover interrupted after
 * the member dropped its subscription (committed there) and before our
 * commit here is resumed by the next call.  A frozen move whose member has
 * no subscription any more is compared as it is -- the tenant's writes here
 * stopped at the freeze and nothing streams -- and finished only if every
 * table is equal; otherwise it stays frozen.
 */
Datum
capacity_tenant_move_cutover(PG_FUNCTION_ARGS)
{
	static const char *const ok_states[] = {"frozen", NULL};
	char	   *tenant = tenant_arg(fcinfo, "capacity_tenant_move_cutover");
	Move	   *m;
	PGconn	   *conn;
	Tally	   *src,
			   *dst;
	volatile bool subscribed = true;
	int			i;

	SPI_connect();
	if ((m = lock_move(tenant, "cutover")) == NULL)
		report_no_move(tenant, "cutover");
	require_state(m, ok_states, "cutover");
	conn = member_connect(m->member, m->server);
	src = palloc0(sizeof(Tally) * m->ntables);
	dst = palloc0(sizeof(Tally) * m->ntables);
	PG_TRY();
	{
		subscribed = member_has_subscription(conn, m);
		if (subscribed)
			require_synced(conn, m);
		else
			ereport(NOTICE,
					(errmsg("fleet member \"%s\" has no subscription %s: comparing both sides of frozen tenant \"%s\" "
							"to resume an interrupted cutover", m->member, m->name, tenant)));
		tally_both(m, conn, src, dst, subscribed);
		if (!record_tallies(m, src, dst))
		{
			for (i = 0; i < m->ntables; i++)
				if (strcmp(src[i].rows, dst[i].rows) != 0 || strcmp(src[i].checksum, dst[i].checksum) != 0)
					break;
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("tenant \"%s\" differs on fleet member \"%s\": %s has %s rows here, %s there",
							tenant, m->member, m->tables[i].qname, src[i].rows, dst[i].rows),
					 errdetail("Checksums %s here, %s there.%s", src[i].checksum, dst[i].checksum,
							   subscribed ? "" : " The member's subscription is gone: nothing will catch up."),
					 subscribed
					 ? errhint("The move stays frozen; investigate, then capacity_tenant_move_abort() or cut over again.")
					 : errhint("The move stays frozen; capacity_tenant_move_abort() removes the member's copy and "
							   "unfreezes the tenant here, then start the move again.")));
		}
		if (subscribed)
			PQclear(member_exec(conn, m->member,
								psprintf("DROP SUBSCRIPTION %s", quote_identifier(m->name)), 0, NULL));
	}
	PG_CATCH();
	{
		remote_close(conn);
		PG_RE_THROW();
	}
	PG_END_TRY();
	remote_close(conn);

	(void) drop_slot_here(m->name, tenant);
	exec_sql(psprintf("DROP PUBLICATION IF EXISTS %s", quote_identifier(m->name)), SPI_OK_UTILITY);
	{
		Oid			types[2] = {TEXTOID, TEXTOID};
		Datum		values[2] = {CStringGetTextDatum(tenant), CStringGetTextDatum(m->member)};

		/* the tier registry, and the member's own label */
		catalog_execute(psprintf("INSERT INTO %s (tenant, tier, member) SELECT $1, "
								 "COALESCE(f.labels OPERATOR(pg_catalog.->>) 'tier', 'dedicated'), $2 FROM %s f "
								 "WHERE f.name OPERATOR(pg_catalog.=) $2",
								 capacity_object("capacity_tenant_tier"), capacity_object("capacity_fleet_member")),
						2, types, values, NULL, false);
		catalog_execute(psprintf("UPDATE %s SET labels = pg_catalog.jsonb_set(labels, '{tenants}', "
								 "COALESCE(labels OPERATOR(pg_catalog.->) 'tenants', '[]') OPERATOR(pg_catalog.||) "
								 "pg_catalog.to_jsonb($1)) WHERE name OPERATOR(pg_catalog.=) $2 AND NOT "
								 "COALESCE(labels OPERATOR(pg_catalog.->) 'tenants', '[]') OPERATOR(pg_catalog.?) $1",
								 capacity_object("capacity_fleet_member")),
						2, types, values, NULL, false);
	}
	set_state(m, "cut over", "cutover_at", NULL);
	SPI_finish();
	PG_RETURN_VOID();
}

/* ------------------------------------------------------- abort, cleanup */

/*
 * Abort of a tenant with no move recorded: what an interrupted start left
 * here (its publication, its slot: the start records the move only when
 * it commits) is dropped; nothing left is 42704 as before.  No start can
 * be running: the caller holds the move lock.
 */
static void
abort_leftovers(const char *tenant)
{
	bool		pub = false;
	bool		slot = false;
	char	   *name = drop_leftovers_here(tenant, &pub, &slot, NULL);

	if (!pub && !slot)
		report_no_move(tenant, "abort");
	ereport(NOTICE,
			(errmsg("tenant \"%s\" is not being moved: dropped %s%s%s %s left here by an interrupted start",
					tenant, pub ? "publication" : "", pub && slot ? " and " : "", slot ? "replication slot" : "",
					name),
			 errhint("A fleet member may still have a subscription %s (without rows of the tenant if it was never "
					 "recorded here): drop it there.", name)));
}

/*
 * Abort before cutover: both sides as before.  force: this side only, for
 * a member that cannot be reached (the tenant must not stay frozen because
 * its dedicated cluster is gone); the move is kept as "aborted here" so
 * that a later abort removes the member's subscription and copy, and a
 * forced abort of that forgets it.  Never deletes a row here.
 */
Datum
capacity_tenant_move_abort(PG_FUNCTION_ARGS)
{
	static const char *const ok_states[] = {"syncing", "frozen", "failed", "aborted here", NULL};
	char	   *tenant = tenant_arg(fcinfo, "capacity_tenant_move_abort");
	bool		force = false;
	Move	   *m;
	int			i;

	if (PG_NARGS() > 1)
	{
		require_arg(fcinfo, 1, "capacity_tenant_move_abort", "force",
					"Pass false (the default) to undo both sides, true to undo this side only.");
		force = PG_GETARG_BOOL(1);
	}
	SPI_connect();
	if ((m = lock_move(tenant, "abort")) == NULL)
	{
		abort_leftovers(tenant);
		SPI_finish();
		PG_RETURN_VOID();
	}
	require_state(m, ok_states, "abort");

	if (force && strcmp(m->state, "aborted here") == 0)
	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(tenant)};

		catalog_execute(psprintf("DELETE FROM %s WHERE tenant OPERATOR(pg_catalog.=) $1",
								 capacity_object("capacity_tenant_move")),
						1, types, values, NULL, false);
		ereport(WARNING,
				(errmsg("forgot the move of tenant \"%s\" to fleet member \"%s\" without reaching it", tenant, m->member),
				 errdetail("Subscription %s and the tenant's copied rows may be left on \"%s\".", m->name, m->member),
				 errhint("If \"%s\" comes back, drop them there before moving the tenant to it again.", m->member)));
		SPI_finish();
		PG_RETURN_VOID();
	}

	if (!force)
	{
		PGconn	   *conn = member_connect(m->member, m->server);

		PG_TRY();
		{
			/* the member as before: no subscription, none of the tenant's rows */
			char	   *ext = member_extschema(conn, m->member);

			member_drop_subscription(conn, m);
			/* as the owner of each table there (member_extschema) */
			for (i = 0; i < m->ntables; i++)
			{
				const char *params[2] = {m->tables[i].qname,
					psprintf("DELETE FROM %s WHERE %s OPERATOR(pg_catalog.=) %s", m->tables[i].qname,
							 quote_identifier(m->tables[i].column),
							 tenant_literal(tenant, m->tables[i].coltype))};

				PQclear(member_exec(conn, m->member,
									psprintf("SELECT %s.capacity_run_as_owner($1::pg_catalog.regclass, "
											 "ARRAY[$2::pg_catalog.text])", ext),
									2, params));
			}
		}
		PG_CATCH();
		{
			remote_close(conn);
			PG_RE_THROW();
		}
		PG_END_TRY();
		remote_close(conn);
	}

	/* this side: done already by a forced abort ("aborted here") */
	if (strcmp(m->state, "aborted here") != 0)
	{
		/* a slot still streaming to a member is refused before anything changes here */
		(void) drop_slot_here(m->name, tenant);
		for (i = 0; i < m->ntables; i++)
			run_ddl_bounded(psprintf("DROP TRIGGER IF EXISTS %s ON %s", quote_identifier(trigger_name(tenant)),
									 m->tables[i].qname),
							psprintf("drop the tenant guard trigger of %s", m->tables[i].qname));
		exec_sql(psprintf("DROP PUBLICATION IF EXISTS %s", quote_identifier(m->name)), SPI_OK_UTILITY);
	}
	if (force)
	{
		set_state(m, "aborted here", NULL,
				  psprintf("aborted here without fleet member %s: its subscription %s and the tenant's copied rows "
						   "are left there until capacity_tenant_move_abort() reaches it", m->member, m->name));
		ereport(WARNING,
				(errmsg("the move of tenant \"%s\" is aborted here only: fleet member \"%s\" was not reached",
						tenant, m->member),
				 errdetail("The tenant writes here again.  Subscription %s and the tenant's copied rows are left on \"%s\".",
						   m->name, m->member),
				 errhint("When \"%s\" is reachable, run capacity_tenant_move_abort(%s) to remove them; if it is gone for "
						 "good, capacity_tenant_move_abort(%s, force => true) forgets the move.",
						 m->member, quote_literal_cstr(tenant), quote_literal_cstr(tenant))));
	}
	else
	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(tenant)};

		catalog_execute(psprintf("DELETE FROM %s WHERE tenant OPERATOR(pg_catalog.=) $1",
								 capacity_object("capacity_tenant_move_table")),
						1, types, values, NULL, false);
		catalog_execute(psprintf("DELETE FROM %s WHERE tenant OPERATOR(pg_catalog.=) $1",
								 capacity_object("capacity_tenant_move")),
						1, types, values, NULL, false);
	}
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * Cleanup deletes the only copy left here: never while the member lacks
 * the tenant's rows in a table that still has some here (a registry that
 * says "moved" is not proof).  Needs the member.
 */
static void
require_member_copy(Move *m)
{
	PGconn	   *conn = NULL;
	char	   *volatile ext = NULL;
	int			i;

	for (i = 0; i < m->ntables; i++)
	{
		MoveTable  *t = &m->tables[i];

		if (!tenant_has_rows(t, m->tenant))
			continue;
		if (conn == NULL)
			conn = member_connect(m->member, m->server);
		PG_TRY();
		{
			if (ext == NULL)
				ext = member_extschema(conn, m->member);
			if (!member_has_rows(conn, m, ext, t))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("fleet member \"%s\" has no rows of tenant \"%s\" in %s: its rows here are not deleted",
								m->member, m->tenant, t->qname),
						 errdetail("The rows here may be the only copy left."),
						 errhint("Find out where the tenant's rows on \"%s\" went; cleanup deletes nothing here until "
								 "the member has them.", m->member)));
		}
		PG_CATCH();
		{
			remote_close(conn);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	if (conn)
		remote_close(conn);
}

typedef struct DeleteArg
{
	Oid			relid;
	const char *sql;
	uint64		deleted;
} DeleteArg;

/* As the table's owner: its triggers fire with its rights, not ours. */
static void
delete_step(void *arg)
{
	DeleteArg  *d = arg;
	AsOwner		a;

	as_owner(&a, d->relid, true);
	if (SPI_execute(d->sql, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "matter_capacity: cleanup delete failed");
	as_caller(&a);
	d->deleted = SPI_processed;
}

Datum
capacity_tenant_move_cleanup(PG_FUNCTION_ARGS)
{
	static const char *const ok_states[] = {"cut over", NULL};
	char	   *tenant = tenant_arg(fcinfo, "capacity_tenant_move_cleanup");
	int32		batch;
	Move	   *m;
	int64		total = 0;
	int			i;

	require_arg(fcinfo, 1, "capacity_tenant_move_cleanup", "batch_rows",
				"Pass a positive number of rows, or leave it out for 10000.");
	batch = PG_GETARG_INT32(1);
	if (batch < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_rows must be positive"),
				 errhint("It bounds the rows deleted per table per call.")));
	SPI_connect();
	if ((m = lock_move(tenant, "cleanup")) == NULL)
		report_no_move(tenant, "cleanup");
	require_state(m, ok_states, "cleanup");
	require_member_copy(m);
	cleanup_tenant = tenant;
	PG_TRY();
	{
		for (i = 0; i < m->ntables; i++)
		{
			MoveTable  *t = &m->tables[i];
			DeleteArg	d;

			d.deleted = 0;
			d.relid = t->relid;
			d.sql = psprintf("DELETE FROM %s WHERE (tableoid, ctid) IN (SELECT tableoid, ctid FROM %s "
							 "WHERE %s OPERATOR(pg_catalog.=) %s LIMIT %d)",
							 t->qname, t->qname, quote_identifier(t->column),
							 tenant_literal(tenant, t->coltype), batch);
			if (!run_bounded(delete_step, &d, NULL))
				ereport(ERROR,
						(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
						 errmsg("could not delete rows of tenant \"%s\" from %s within matter_capacity.lock_timeout",
								tenant, t->qname),
						 errhint("Try again; the rows deleted so far in this call are rolled back.")));
			total += d.deleted;
		}
	}
	PG_FINALLY();
	{
		cleanup_tenant = NULL;
	}
	PG_END_TRY();
	if (total == 0)
		set_state(m, "cleaned", "cleaned_at", NULL);
	SPI_finish();
	PG_RETURN_INT64(total);
}

/* ------------------------------------------------------------ the guard */

static bool
tuple_is_tenant(HeapTuple tuple, TupleDesc desc, int attnum, const char *tenant)
{
	char	   *v;

	if (tuple == NULL)
		return false;
	v = SPI_getvalue(tuple, desc, attnum);
	return v != NULL && strcmp(v, tenant) == 0;
}

Datum
capacity_tenant_move_guard(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	newt = NULL,
				oldt = NULL;
	const char *column;
	const char *tenant;
	int			attnum;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!TRIGGER_FIRED_BEFORE(td->tg_event) || td->tg_trigger->tgnargs != 2)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("capacity_tenant_move_guard: must be a BEFORE ROW trigger with two arguments"),
				 errhint("capacity_tenant_move() adds it (tenant column, tenant); do not call it directly.")));
	desc = RelationGetDescr(td->tg_relation);
	column = td->tg_trigger->tgargs[0];
	tenant = td->tg_trigger->tgargs[1];
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		newt = td->tg_trigtuple;
	else if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		oldt = td->tg_trigtuple;
		newt = td->tg_newtuple;
	}
	else
		oldt = td->tg_trigtuple;

	attnum = SPI_fnumber(desc, column);
	if (attnum > 0 && (tuple_is_tenant(newt, desc, attnum, tenant) ||
					   tuple_is_tenant(oldt, desc, attnum, tenant)) &&
		!(cleanup_tenant && strcmp(cleanup_tenant, tenant) == 0))
	{
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(tenant)};
		char	   *state = NULL;
		char	   *member = NULL;

		/* shared with other writers; verify and freeze wait for us */
		LockDatabaseObject(capacity_relid("capacity_tenant_move"), tenant_key(tenant), 0, RowExclusiveLock);
		SPI_connect();
		/* the latest state, whatever this transaction's isolation */
		PushActiveSnapshot(GetLatestSnapshot());
		catalog_execute(psprintf("SELECT state, member FROM %s WHERE tenant OPERATOR(pg_catalog.=) $1",
								 capacity_object("capacity_tenant_move")),
						1, types, values, NULL, true);
		PopActiveSnapshot();
		if (SPI_processed > 0)
		{
			state = spi_text(0, 1);
			member = spi_text(0, 2);
		}
		if (state && strcmp(state, "syncing") != 0 &&
			!(rescue_allowed && strcmp(state, "frozen") != 0 && strcmp(state, "failed") != 0))
			ereport(ERROR,
					(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
					 strcmp(state, "frozen") == 0
					 ? errmsg("tenant \"%s\" is frozen: it is moving to fleet member \"%s\"", tenant, member)
					 : errmsg("tenant \"%s\" has moved to fleet member \"%s\"", tenant, member),
					 errdetail("Writes of the tenant are refused on this database (move state: %s).", state),
					 strcmp(state, "frozen") == 0
					 ? errhint("Route the tenant's connections to \"%s\"; retry there after cutover.", member)
					 : errhint("The tenant lives on \"%s\" now: route its connections there.", member)));
		SPI_finish();
	}
	return PointerGetDatum(newt ? newt : oldt);
}

/* ------------------------------------------------------------- the view */

/*
 * One row per move and table: initial sync state on the member, lag of
 * the slot here, the tenant's rows on each side now, the last
 * verification, the state.  Never an error for an unreachable member: its
 * figures are NULL and note says why (credentials are never in it).
 */
Datum
capacity_tenant_move_status(PG_FUNCTION_ARGS)
{
	Tuplestorestate *store;
	TupleDesc	desc;
	uint64		n,
				k;
	char	  **tenants;

	init_materialized(fcinfo, &store, &desc);
	SPI_connect();
	catalog_execute(psprintf("SELECT tenant FROM %s ORDER BY tenant", capacity_object("capacity_tenant_move")),
					0, NULL, NULL, NULL, true);
	n = SPI_processed;
	tenants = palloc(sizeof(char *) * Max(n, 1));
	for (k = 0; k < n; k++)
		tenants[k] = spi_text(k, 1);

	for (k = 0; k < n; k++)
	{
		Move	   *m = load_move(tenants[k]);
		PGconn	   *conn = NULL;
		PGresult   *sync = NULL;
		char	   *note = NULL;
		char	   *ext = NULL;
		XLogRecPtr	confirmed;
		bool		live = strcmp(m->state, "syncing") == 0 || strcmp(m->state, "frozen") == 0;
		bool		all_ready = true;
		int			i;
		Datum	   *vals = palloc(sizeof(Datum) * 14 * Max(m->ntables, 1));
		bool	   *nulls = palloc0(sizeof(bool) * 14 * Max(m->ntables, 1));

		confirmed = live ? slot_confirmed(m->name) : InvalidXLogRecPtr;
		if (m->server && GetForeignServerByName(m->server, true) == NULL)
			note = psprintf("foreign server %s of fleet member %s does not exist", m->server, m->member);
		else if (m->server)
		{
			bool		denied;

			conn = member_open(m->server, mc_fleet_timeout_ms, &note, &denied);
		}
		else
			note = psprintf("fleet member %s is not registered", m->member);
		if (conn)
		{
			char	   *why = NULL;

			ext = member_extschema_or_null(conn, mc_fleet_timeout_ms, &why);
			if (ext == NULL && note == NULL)
				note = why;
		}
		if (conn && live)
		{
			const char *params[1] = {m->name};

			sync = remote_exec(conn, "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname), r.srsubstate::text "
							   "FROM pg_catalog.pg_subscription_rel r JOIN pg_catalog.pg_subscription s "
							   "ON s.oid = r.srsubid JOIN pg_catalog.pg_class c ON c.oid = r.srrelid "
							   "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE s.subname = $1",
							   1, params, mc_fleet_timeout_ms, &note);
		}
		for (i = 0; i < m->ntables; i++)
		{
			MoveTable  *t = &m->tables[i];
			Datum	   *v = vals + i * 14;
			bool	   *nl = nulls + i * 14;
			char	   *st = NULL;
			Oid			types[2] = {TEXTOID, OIDOID};
			Datum		args[2] = {CStringGetTextDatum(m->tenant), ObjectIdGetDatum(t->relid)};
			int			r;

			v[0] = CStringGetTextDatum(m->tenant);
			v[1] = CStringGetTextDatum(m->member);
			v[2] = ObjectIdGetDatum(t->relid);
			if (sync)
			{
				for (r = 0; r < PQntuples(sync); r++)
					if (strcmp(PQgetvalue(sync, r, 0), t->qname) == 0)
						st = PQgetvalue(sync, r, 1);
				st = st == NULL ? "not subscribed" :
					*st == 'i' ? "init" : *st == 'd' ? "copying" : *st == 'f' ? "copied" :
					*st == 's' ? "synchronized" : *st == 'r' ? "ready" : st;
				all_ready = all_ready && strcmp(st, "ready") == 0;
			}
			else
				all_ready = false;
			if (st)
				v[3] = CStringGetTextDatum(st);
			else
				nl[3] = true;
			if (confirmed != InvalidXLogRecPtr)
				v[4] = Int64GetDatum((int64) (GetXLogInsertRecPtr() - Min(confirmed, GetXLogInsertRecPtr())));
			else
				nl[4] = true;
			/* rows on each side now, as the table's owner (pg_monitor may not read them) */
			{
				AsOwner		a;

				as_owner(&a, t->relid, true);
				SPI_execute(psprintf("SELECT pg_catalog.count(*) FROM %s WHERE %s OPERATOR(pg_catalog.=) %s",
									 t->qname, quote_identifier(t->column), tenant_literal(m->tenant, t->coltype)),
							true, 0);
				as_caller(&a);
				v[5] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &nl[5]);
			}
			nl[6] = true;
			if (conn && ext && PQstatus(conn) == CONNECTION_OK)
			{
				char	   *err = NULL;
				const char *params[2] = {t->qname,
					psprintf("SELECT pg_catalog.count(*) FROM %s WHERE %s OPERATOR(pg_catalog.=) %s",
							 t->qname, quote_identifier(t->column), tenant_literal(m->tenant, t->coltype))};
				PGresult   *res = remote_exec(conn, member_owner_value_sql(ext), 2, params, mc_fleet_timeout_ms, &err);

				if (res)
				{
					v[6] = DirectFunctionCall1(int8in, CStringGetDatum(PQgetvalue(res, 0, 0)));
					nl[6] = false;
					PQclear(res);
				}
				else if (note == NULL)
					note = err;
			}
			catalog_execute(psprintf("SELECT verified_at, equal, source_rows, target_rows FROM %s "
									 "WHERE tenant OPERATOR(pg_catalog.=) $1 "
									 "AND table_name::pg_catalog.oid OPERATOR(pg_catalog.=) $2",
									 capacity_object("capacity_tenant_move_table")),
							2, types, args, NULL, true);
			v[7] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &nl[7]);
			v[8] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &nl[8]);
			v[9] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &nl[9]);
			v[10] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &nl[10]);
		}
		if (conn)
			remote_close(conn);
		{
			Oid			types[1] = {TEXTOID};
			Datum		args[1] = {CStringGetTextDatum(m->tenant)};
			char	   *state;
			char	   *reason;
			Datum		started;
			bool		snull;

			catalog_execute(psprintf("SELECT reason, started_at FROM %s WHERE tenant OPERATOR(pg_catalog.=) $1",
									 capacity_object("capacity_tenant_move")),
							1, types, args, NULL, true);
			reason = spi_text(0, 1);
			started = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &snull);
			state = strcmp(m->state, "syncing") == 0 && all_ready ? "verifying" : m->state;
			/* the member lost the subscription: the move cannot go on */
			if (live && sync && PQntuples(sync) == 0)
			{
				state = "failed";
				reason = strcmp(m->state, "frozen") == 0
					? psprintf("fleet member %s has no subscription %s: capacity_tenant_move_cutover() finishes an "
							   "interrupted cutover if both sides are equal", m->member, m->name)
					: psprintf("fleet member %s has no subscription %s", m->member, m->name);
			}
			for (i = 0; i < m->ntables; i++)
			{
				Datum	   *v = vals + i * 14;
				bool	   *nl = nulls + i * 14;

				v[11] = CStringGetTextDatum(state);
				if (reason)
					v[12] = CStringGetTextDatum(reason);
				else
					nl[12] = true;
				if (note)
					v[13] = CStringGetTextDatum(note);
				else
					nl[13] = true;
				(void) started;
				tuplestore_putvalues(store, desc, v, nl);
			}
		}
		if (sync)
			PQclear(sync);
	}
	SPI_finish();
	PG_RETURN_NULL();
}
