/*-------------------------------------------------------------------------
 * probes.c
 *		capacity_register_probe(): an application-defined indicator whose
 *		value comes from a query.
 *
 * The search_path in force at registration is stored with the probe and
 * set again when it runs, as a function's SET search_path would be.
 *
 * Owns: the indicator-name rule (capacity_check_indicator_name), and
 * checking a probe before it is stored: exactly one SELECT (no INTO,
 * no FOR UPDATE, no data-modifying WITH: a probe must only read), and a result of one numeric
 * column or (labels jsonb, value numeric), found by planning the query
 * without running it.  The probe remembers who registered it; the sampler
 * runs it as that role, so it can read nothing its owner could not.
 *
 * Must not run the query (sampler.c does, through usercode.c: as the
 * owner, read-only, bounded, rolled back).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/plancache.h"

#include "catalog.h"
#include "sampler.h"
#include "usercode.h"

PG_FUNCTION_INFO_V1(capacity_register_probe);

static void
probe_error_context(void *arg)
{
	errcontext("registering probe %s", (const char *) arg);
}

/*
 * The indicator-name rule, the only copy: a lower-case letter, then
 * lower-case letters, digits and underscores, at most 63 bytes (a name).
 * SQL checks it through capacity_check_indicator_name() (the
 * capacity_indicator table's CHECK, capacity_register_push) and
 * capacity_indicator_name_valid() (plan documents, which report their own
 * error with the document path).
 */
static bool
indicator_name_valid(const char *name)
{
	const char *p;
	bool		ok = name != NULL && strlen(name) > 0 && strlen(name) < NAMEDATALEN &&
		name[0] >= 'a' && name[0] <= 'z';

	for (p = name; ok && *p; p++)
		ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
	return ok;
}

static void
check_indicator_name(const char *name)
{
	if (!indicator_name_valid(name))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_NAME),
				 errmsg("matter_capacity: indicator name \"%s%s\" is not valid",
						name ? pnstrdup(name, pg_mbcliplen(name, strlen(name), 64)) : "<NULL>",
						name && strlen(name) > 64 ? "..." : ""),
				 errhint("Use lower-case letters, digits and underscores, starting with a letter, e.g. webhook_p99_ms.")));
}

PG_FUNCTION_INFO_V1(capacity_indicator_name_valid);

/* capacity_indicator_name_valid(name text) RETURNS boolean (NULL: false) */
Datum
capacity_indicator_name_valid(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(!PG_ARGISNULL(0) && indicator_name_valid(text_to_cstring(PG_GETARG_TEXT_PP(0))));
}

PG_FUNCTION_INFO_V1(capacity_check_indicator_name);

/*
 * capacity_check_indicator_name(name text) RETURNS boolean: true, or the
 * error (42602) naming the bad name.
 */
Datum
capacity_check_indicator_name(PG_FUNCTION_ARGS)
{
	check_indicator_name(PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_BOOL(true);
}

/*
 * A probe is one SELECT that only reads: no INTO, no FOR UPDATE, no
 * data-modifying WITH (PostgreSQL allows those only at the top level).
 * Checked at registration and again before each run (probes stored by an
 * older version were not checked for WITH).
 */
void
probe_check_select(const char *name, const char *query)
{
	RawStmt    *rs;
	const char *cte;

	switch (single_select_shape(query, &rs, &cte))
	{
		case SELECT_ONE:
			return;
		case SELECT_MODIFYING_WITH:
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("matter_capacity: probe %s has a data-modifying WITH (%s)", name, cte),
					 errhint("A probe only reads: use WITH ... AS (SELECT ...) only.")));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("matter_capacity: probe %s must be a single SELECT", name),
					 errhint("A probe only reads: one SELECT statement, without INTO or FOR UPDATE.")));
	}
}

/*
 * capacity_register_probe(indicator text, query text, unit text DEFAULT NULL)
 */
Datum
capacity_register_probe(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *query;
	SPIPlanPtr	plan;
	CachedPlanSource *ps;
	TupleDesc	td;
	ErrorContextCallback errcb;
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, OIDOID, TEXTOID};
	Datum		values[5];
	char		nulls[5] = "     ";
	char	   *search_path = pstrdup(GetConfigOption("search_path", false, false));

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matter_capacity: probe name and query must not be NULL"),
				 errhint("capacity_register_probe('kms_calls_per_min', 'SELECT ...', 'per minute')")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	query = text_to_cstring(PG_GETARG_TEXT_PP(1));
	require_not_in_recovery("register a probe");
	check_indicator_name(name);

	errcb.callback = probe_error_context;
	errcb.arg = name;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	probe_check_select(name, query);

	SPI_connect();
	plan = SPI_prepare(query, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "matter_capacity: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	ps = linitial(SPI_plan_get_plan_sources(plan));
	td = ps->resultDesc;
	if (td == NULL ||
		!((td->natts == 1 && is_numeric_type(TupleDescAttr(td, 0)->atttypid)) ||
		  (td->natts == 2 && TupleDescAttr(td, 0)->atttypid == JSONBOID &&
		   is_numeric_type(TupleDescAttr(td, 1)->atttypid))))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("matter_capacity: probe %s returns %d column(s) of the wrong types", name,
						td ? td->natts : 0),
				 errhint("Return one numeric column, or (labels jsonb, value numeric) rows.")));
	error_context_stack = errcb.previous;

	/* an existing indicator of another kind, or someone else's probe */
	values[0] = CStringGetTextDatum(name);
	catalog_execute(psprintf("SELECT source, owner::oid FROM %s WHERE name = $1",
							 capacity_object("capacity_indicator")),
					1, types, values, NULL, true);
	if (SPI_processed == 1)
	{
		char	   *source = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		bool		isnull;
		Oid			owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));

		if (strcmp(source, "sql") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_OBJECT),
					 errmsg("matter_capacity: indicator %s already exists as a %s indicator", name, source),
					 errhint("Choose another name for the probe.")));
		if (!isnull && owner != GetUserId() && role_exists(owner) && !has_privs_of_role(GetUserId(), owner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("matter_capacity: probe %s belongs to another role", name),
					 errhint("Only its owner (or a member of the owning role) can replace it.")));
	}

	values[1] = CStringGetTextDatum(query);
	values[2] = PG_ARGISNULL(2) ? (Datum) 0 : PG_GETARG_DATUM(2);
	nulls[2] = PG_ARGISNULL(2) ? 'n' : ' ';
	values[3] = ObjectIdGetDatum(GetUserId());
	values[4] = CStringGetTextDatum(search_path);
	catalog_execute(psprintf("INSERT INTO %s (name, unit, source, query, owner, search_path) "
							 "VALUES ($1, $3, 'sql', $2, $4::pg_catalog.regrole, $5) "
							 "ON CONFLICT (name) DO UPDATE SET query = $2, unit = $3, "
							 "owner = $4::pg_catalog.regrole, search_path = $5, enabled = true",
							 capacity_object("capacity_indicator")),
					5, types, values, nulls, false);
	SPI_finish();
	PG_RETURN_VOID();
}
