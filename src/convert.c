/*-------------------------------------------------------------------------
 * convert.c
 *		The parts of the online conversion (src/sql/60_convert.sql) that
 *		move a user's rows: run as that table's owner, never with the
 *		rights of whoever runs the conversion.
 *
 * The conversion is run by a superuser (the runbook) or the worker's
 * loopback (the bootstrap superuser).  The rows it copies go into tables
 * the converted table's owner owns and may put triggers, constraints,
 * index expressions, defaults and policies on: all of that is the owner's
 * code.  So every statement that writes the owner's rows runs as the
 * owner under SECURITY_RESTRICTED_OPERATION (as REFRESH MATERIALIZED VIEW
 * and CREATE INDEX do: the owner's code cannot SET ROLE back to the
 * session's superuser), with search_path pinned and every setting made
 * during it undone.  Only our own catalog (capacity_conversion) is read
 * as the extension owner, and written by the trigger when a replay failed
 * (the copy is then stale: the backfill makes it again).
 *
 * Owns: capacity_run_as_owner() and the write-replay trigger
 * capacity_convert_sync().  Must not decide anything about the conversion.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/regproc.h"
#include "utils/resowner.h"
#include "utils/syscache.h"

#include "catalog.h"

PG_FUNCTION_INFO_V1(capacity_run_as_owner);
PG_FUNCTION_INFO_V1(capacity_owner_value);
PG_FUNCTION_INFO_V1(capacity_convert_sync);

/* Run statements (SPI connected) as `owner`, restricted; rows processed. */
/*
 * A statement SPI would not run (transaction control, a utility SPI cannot
 * take, a non-query where a query is needed) is the caller's error: say so
 * with a SQLSTATE of its own, not as an internal error.
 */
static void
refuse_spi_result(int rc, int expected, const char *sql)
{
	if (rc == SPI_ERROR_TRANSACTION)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_TERMINATION),
				 errmsg("matter_capacity: transaction control cannot run as a table's owner: %s", sql),
				 errhint("Pass statements that read or write rows; the caller's transaction is the one that commits.")));
	if (rc < 0 || (expected != 0 && rc != expected))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("matter_capacity: statement cannot run as a table's owner (%s): %s",
						SPI_result_code_string(rc), sql),
				 errhint(expected == SPI_OK_SELECT ? "Pass one SELECT returning one column." :
						 "Pass SQL statements that read or write rows.")));
}

static int64
execute_as(Oid owner, int n, char **stmts, int nargs, Oid *types, Datum *values)
{
	Oid			save_userid;
	int			save_sec;
	int			nest;
	int64		total = 0;
	int			i;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	nest = pin_search_path();
	/*
	 * SECURITY_NOFORCE_RLS: the owner sees all of its own rows even when it
	 * FORCEd row-level security on a table after the conversion began (as
	 * RI checks do), so no row is left out of a copy and no policy runs.
	 */
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION | SECURITY_NOFORCE_RLS);
	for (i = 0; i < n; i++)
	{
		int			rc = SPI_execute_with_args(stmts[i], nargs, types, values, NULL, false, 0);

		if (rc < 0)
			refuse_spi_result(rc, 0, stmts[i]);
		total += (int64) SPI_processed;
	}
	SetUserIdAndSecContext(save_userid, save_sec);
	AtEOXact_GUC(false, nest);
	return total;
}

/*
 * capacity_run_as_owner(tbl regclass, stmts text[]) RETURNS bigint
 *
 * The statements, as tbl's owner; the caller must own tbl (or be a member
 * of the owning role, or a superuser), so nobody gains a right through it.
 */
Datum
capacity_run_as_owner(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Datum	   *elems;
	bool	   *nulls;
	int			n,
				i;
	char	  **stmts;
	int64		total;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matter_capacity: table and statements must not be NULL")));
	relid = PG_GETARG_OID(0);
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("matter_capacity: relation with OID %u does not exist", relid)));
	require_table_owner(relid);
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	stmts = palloc(sizeof(char *) * Max(n, 1));
	for (i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("matter_capacity: a statement must not be NULL")));
		stmts[i] = TextDatumGetCString(elems[i]);
	}
	SPI_connect();
	total = execute_as(get_rel_owner_oid(relid), n, stmts, 0, NULL, NULL);
	SPI_finish();
	PG_RETURN_INT64(total);
}

/*
 * capacity_owner_value(tbl regclass, query text) RETURNS text
 *
 * The first column of the first row of a read-only query, as tbl's owner
 * under SECURITY_RESTRICTED_OPERATION (NULL when it returns no row): for
 * the conversion's reads of a user's rows that need a value (the oldest
 * time of the historical partition), so a policy the owner put on it never
 * runs as the caller.  The caller must own tbl, as for run_as_owner.
 */
Datum
capacity_owner_value(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *query;
	char	   *val = NULL;
	MemoryContext cxt = CurrentMemoryContext;
	Oid			save_userid;
	int			save_sec;
	int			nest;
	int			rc;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matter_capacity: table and query must not be NULL")));
	relid = PG_GETARG_OID(0);
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("matter_capacity: relation with OID %u does not exist", relid)));
	require_table_owner(relid);
	query = text_to_cstring(PG_GETARG_TEXT_PP(1));

	SPI_connect();
	GetUserIdAndSecContext(&save_userid, &save_sec);
	nest = pin_search_path();
	SetUserIdAndSecContext(get_rel_owner_oid(relid),
						   save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION | SECURITY_NOFORCE_RLS);
	rc = SPI_execute(query, true, 1);
	if (rc != SPI_OK_SELECT)
		refuse_spi_result(rc, SPI_OK_SELECT, query);
	if (SPI_processed > 0)
	{
		char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		if (v != NULL)
			val = MemoryContextStrdup(cxt, v);
	}
	SetUserIdAndSecContext(save_userid, save_sec);
	AtEOXact_GUC(false, nest);
	SPI_finish();
	if (val == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(val));
}

/*
 * The columns a replayed row is written through: the historical
 * partition's columns that are neither dropped nor generated (a generated
 * column cannot be written; the copy computes it), each of which the copy
 * must have with the same type.  NULL when the copy no longer fits (a
 * column was added, dropped or retyped during the backfill): the backfill
 * sees the same difference (capacity_convert_drift) and makes its copy
 * again, so the write is not replayed into a copy that will be discarded.
 */
static char *
replay_columns(Relation hist, Oid stg, const char *row)
{
	TupleDesc	desc = RelationGetDescr(hist);
	StringInfoData cols;
	StringInfoData vals;
	int			written = 0;
	int			copy_cols = 0;
	HeapTuple	tup;
	int			i;

	initStringInfo(&cols);
	initStringInfo(&vals);
	for (i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *name = NameStr(att->attname);
		AttrNumber	sattno;

		if (att->attisdropped || att->attgenerated)
			continue;
		sattno = get_attnum(stg, name);
		if (sattno == InvalidAttrNumber || get_atttype(stg, sattno) != att->atttypid)
			return NULL;
		appendStringInfo(&cols, "%s%s", written ? ", " : "", quote_identifier(name));
		appendStringInfo(&vals, "%s(%s).%s", written ? ", " : "", row, quote_identifier(name));
		written++;
	}
	/* and the copy has no column the table lost */
	for (i = 1;; i++)
	{
		Form_pg_attribute att;

		tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(stg), Int16GetDatum(i));
		if (!HeapTupleIsValid(tup))
			break;
		att = (Form_pg_attribute) GETSTRUCT(tup);
		if (!att->attisdropped && !att->attgenerated)
			copy_cols++;
		ReleaseSysCache(tup);
	}
	if (copy_cols != written)
		return NULL;
	return psprintf("(%s) SELECT %s", cols.data, vals.data);
}

/* Errors the application's statement keeps: it was cancelled or must retry. */
static bool
application_must_see(int sqlerrcode)
{
	return ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_TO_CATEGORY(ERRCODE_QUERY_CANCELED) ||	/* 57 */
		ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_TO_CATEGORY(ERRCODE_T_R_SERIALIZATION_FAILURE) ||	/* 40 */
		ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_TO_CATEGORY(ERRCODE_OUT_OF_MEMORY) ||	/* 53 */
		sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE;
}

/* The replay of one write (or of a TRUNCATE) into the copy, as its owner. */
static void
replay(TriggerData *td, Relation hist, Oid stg, Datum *keys, int nkeys)
{
	Oid			rowtype[1];
	Datum		row[1];
	char	   *stgname;
	char	   *stmt;
	char	   *fit;
	int			i;

	stgname = psprintf("%s.%s", quote_identifier(get_namespace_name(get_rel_namespace(stg))),
					   quote_identifier(get_rel_name(stg)));
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
	{
		/* the table was emptied: so is the copy, or the rows would come back */
		stmt = psprintf("TRUNCATE %s", stgname);
		(void) execute_as(get_rel_owner_oid(stg), 1, &stmt, 0, NULL, NULL);
		return;
	}
	fit = replay_columns(hist, stg, "$1");
	if (fit == NULL)
		return;
	rowtype[0] = hist->rd_rel->reltype;
	if (!TRIGGER_FIRED_BY_INSERT(td->tg_event))
	{
		StringInfoData cols,
					vals;

		initStringInfo(&cols);
		initStringInfo(&vals);
		for (i = 0; i < nkeys; i++)
		{
			const char *k = quote_identifier(TextDatumGetCString(keys[i]));

			appendStringInfo(&cols, "%s%s", i ? ", " : "", k);
			appendStringInfo(&vals, "%s($1).%s", i ? ", " : "", k);
		}
		stmt = psprintf("DELETE FROM %s WHERE (%s) = (%s)", stgname, cols.data, vals.data);
		row[0] = heap_copy_tuple_as_datum(td->tg_trigtuple, RelationGetDescr(hist));
		(void) execute_as(get_rel_owner_oid(stg), 1, &stmt, 1, rowtype, row);
	}
	if (!TRIGGER_FIRED_BY_DELETE(td->tg_event))
	{
		HeapTuple	newtup = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;

		stmt = psprintf("INSERT INTO %s %s ON CONFLICT DO NOTHING", stgname, fit);
		row[0] = heap_copy_tuple_as_datum(newtup, RelationGetDescr(hist));
		(void) execute_as(get_rel_owner_oid(stg), 1, &stmt, 1, rowtype, row);
	}
}

/*
 * capacity_convert_sync(): AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW,
 * and AFTER TRUNCATE FOR EACH STATEMENT, on the historical partition
 * during a backfill; replays the write into the staging copy (trigger
 * argument), as the staging table's owner.
 *
 * The replay must never fail the application's write: it runs in a
 * subtransaction, and when it fails (a constraint the copy has and the
 * table lost, the owner's code on the copy, ...) the write is kept, the
 * conversion is marked stale in the same transaction (so only if the write
 * commits) and the backfill makes its copy again instead of switching it
 * in.  A cancel, a lock timeout, a serialization failure or running out of
 * memory is the application's statement's own error and is kept.
 */
Datum
capacity_convert_sync(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	Relation	hist;
	Oid			stg;
	Oid			types[3] = {OIDOID, OIDOID, TEXTOID};
	Datum		values[3];
	Datum	   *keys;
	bool	   *knulls;
	int			nkeys;
	bool		isnull;
	Datum		d;
	int			nest;
	MemoryContext cxt;
	ResourceOwner owner;
	ErrorData  *edata = NULL;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
		!(TRIGGER_FIRED_FOR_ROW(td->tg_event) || TRIGGER_FIRED_BY_TRUNCATE(td->tg_event)) ||
		td->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("matter_capacity: capacity_convert_sync must be an AFTER ... FOR EACH ROW (or AFTER TRUNCATE) trigger with one argument"),
				 errhint("Only capacity_convert_backfill() installs this trigger.")));
	hist = td->tg_relation;

	SPI_connect();
	nest = pin_search_path();
	stg = RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(td->tg_trigger->tgargs[0])),
						   NoLock, true);
	values[0] = ObjectIdGetDatum(stg);
	values[1] = ObjectIdGetDatum(RelationGetRelid(hist));
	catalog_execute(psprintf("SELECT c.key_columns::pg_catalog.text[] FROM %s c "
							 "WHERE c.staging OPERATOR(pg_catalog.=) $1::pg_catalog.regclass "
							 "AND c.historical OPERATOR(pg_catalog.=) $2::pg_catalog.regclass "
							 "AND c.state OPERATOR(pg_catalog.=) 'backfilling'",
							 capacity_object("capacity_conversion")),
					2, types, values, NULL, false);	/* a fresh snapshot: the backfill may have
													 * begun after our statement's */
	d = SPI_processed == 1 ? SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull) : (Datum) 0;
	if (SPI_processed != 1 || isnull || !OidIsValid(stg))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("matter_capacity: %s is not the backfill copy of %s", td->tg_trigger->tgargs[0],
						RelationGetRelationName(hist)),
				 errhint("Only capacity_convert_backfill() installs this trigger.")));
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT, &keys, &knulls, &nkeys);

	cxt = CurrentMemoryContext;
	owner = CurrentResourceOwner;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		replay(td, hist, stg, keys, nkeys);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (application_must_see(edata->sqlerrcode))
			ReThrowError(edata);
	}
	PG_END_TRY();
	if (edata != NULL)
	{
		char	   *why = psprintf("a write to %s was not replayed: %s",
								   RelationGetRelationName(hist), edata->message);

		values[2] = CStringGetTextDatum(why);
		catalog_execute(psprintf("UPDATE %s c SET stale = $3 "
								 "WHERE c.staging OPERATOR(pg_catalog.=) $1::pg_catalog.regclass "
								 "AND c.historical OPERATOR(pg_catalog.=) $2::pg_catalog.regclass "
								 "AND c.stale IS NULL",
								 capacity_object("capacity_conversion")),
						3, types, values, NULL, false);
		ereport(WARNING,
				(errcode(ERRCODE_WARNING),
				 errmsg("matter_capacity: %s; the backfill will make its copy again", why),
				 errhint("Your write is kept. capacity_conversions shows the backfill's progress.")));
	}
	AtEOXact_GUC(false, nest);
	SPI_finish();
	return PointerGetDatum(NULL);
}
