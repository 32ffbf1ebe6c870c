/*-------------------------------------------------------------------------
 * catalog.c
 *		Where the extension lives and what its catalog tables hold.
 *
 * Owns: finding the extension's schema and owner through pg_extension (the
 * extension is not relocatable, but the schema is chosen at CREATE
 * EXTENSION), reading policies, writing the rollover log, and the checks
 * every mutating entry point makes first (not in recovery, caller owns the
 * table).  Catalog tables are written as the extension owner, so callers
 * need EXECUTE on our functions, not rights on our tables.  Also the
 * generic helpers every other file uses, so that this file depends on no
 * other of ours: qualified_name(), pin_search_path(), init_materialized(),
 * table ownership checks.
 *
 * Must not touch user tables.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/heapam.h"
#include "access/xlog.h"
#include "catalog/indexing.h"
#include "commands/dbcommands.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/parsenodes.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "catalog/pg_class.h"
#include "utils/timestamp.h"
#include "utils/snapmgr.h"

#include "catalog.h"

#define EXTENSION_NAME "matter_capacity"

static void
extension_row(Oid *nsp, Oid *owner)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	bool		found = false;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum(EXTENSION_NAME));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		Form_pg_extension ext = (Form_pg_extension) GETSTRUCT(tup);

		*nsp = ext->extnamespace;
		*owner = ext->extowner;
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!found)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("matter_capacity: extension \"%s\" is not installed in database \"%s\"",
						EXTENSION_NAME, get_database_name(MyDatabaseId)),
				 errhint("Run CREATE EXTENSION matter_capacity.")));
}

/* Quoted, schema-qualified name of any relation (generic helper). */
char *
qualified_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/* Quoted name of the extension's schema. */
char *
capacity_schema(void)
{
	Oid			nsp,
				owner;

	extension_row(&nsp, &owner);
	return pstrdup(quote_identifier(get_namespace_name(nsp)));
}

/* "schema".name for one of our objects; name is a trusted literal. */
char *
capacity_object(const char *name)
{
	return psprintf("%s.%s", capacity_schema(), name);
}

/* OID of one of our own relations. */
Oid
capacity_relid(const char *name)
{
	Oid			nsp,
				owner;
	Oid			relid;

	extension_row(&nsp, &owner);
	relid = get_relname_relid(name, nsp);
	if (!OidIsValid(relid))
		elog(ERROR, "matter_capacity: relation %s of the extension is missing", name);
	return relid;
}

Oid
capacity_owner(void)
{
	Oid			nsp,
				owner;

	extension_row(&nsp, &owner);
	return owner;
}

/*
 * Run SQL on our own catalog tables as the extension owner.  Returns the
 * SPI result code; results stay in SPI_tuptable.
 *
 * The statement runs with the extension owner's rights, so nothing of the
 * caller may reach it: search_path is pinned to pg_catalog, pg_temp for
 * the statement (whatever the caller or any earlier user code set), in a
 * GUC nest level closed as on abort, so no setting made during the
 * statement survives it either.  Our tables are named schema-qualified by
 * capacity_object(); functions and operators then resolve in pg_catalog.
 */
int
catalog_execute(const char *sql, int nargs, Oid *types, Datum *values,
				const char *nulls, bool read_only)
{
	Oid			save_userid;
	int			save_sec;
	int			rc;
	int			nest;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	nest = pin_search_path();
	SetUserIdAndSecContext(capacity_owner(), save_sec | SECURITY_LOCAL_USERID_CHANGE);
	rc = SPI_execute_with_args(sql, nargs, types, values, nulls, read_only, 0);
	SetUserIdAndSecContext(save_userid, save_sec);
	AtEOXact_GUC(false, nest);
	if (rc < 0)
		elog(ERROR, "matter_capacity: SPI error %d for: %s", rc, sql);
	return rc;
}

/* Attribute number of a column of one of our catalog tables. */
static AttrNumber
catalog_attnum(TupleDesc td, const char *name)
{
	int			i;

	for (i = 0; i < td->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(td, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	elog(ERROR, "matter_capacity: catalog table column %s is missing", name);
	return InvalidAttrNumber;	/* keep compiler quiet */
}

static int
cmp_policies(const ListCell *a, const ListCell *b)
{
	Oid			ra = ((Policy *) lfirst(a))->relid;
	Oid			rb = ((Policy *) lfirst(b))->relid;

	return (ra > rb) - (ra < rb);
}

/*
 * Policies for one table, or all of them when relid is InvalidOid, in mcxt
 * (so they outlive SPI_finish), by table OID.  Rows of tables dropped since
 * are skipped.  Read with a plain scan of capacity_policy, not a query: a
 * rollover with nothing to do is mostly this read, and in a fresh session
 * parsing and planning a query cost more than the scan (docs/benchmarks.md).
 */
List *
load_policies(Oid relid, MemoryContext mcxt)
{
	List	   *result = NIL;
	Relation	rel = table_open(capacity_relid("capacity_policy"), AccessShareLock);
	TupleDesc	td = RelationGetDescr(rel);
	Snapshot	snap = RegisterSnapshot(ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot());
	TableScanDesc scan = table_beginscan(rel, snap, 0, NULL);
	AttrNumber	a_table = catalog_attnum(td, "table_name");
	AttrNumber	a_time = catalog_attnum(td, "time_column");
	AttrNumber	a_gran = catalog_attnum(td, "granularity");
	AttrNumber	a_hash = catalog_attnum(td, "hash_column");
	AttrNumber	a_hash_n = catalog_attnum(td, "hash_partitions");
	AttrNumber	a_premake = catalog_attnum(td, "premake");
	AttrNumber	a_retention = catalog_attnum(td, "retention");
	AttrNumber	a_action = catalog_attnum(td, "retention_action");
	AttrNumber	a_default = catalog_attnum(td, "default_partition");
	HeapTuple	tup;

	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		MemoryContext old;
		Policy	   *p;
		bool		isnull;
		Datum		d;
		Oid			tbl = DatumGetObjectId(heap_getattr(tup, a_table, td, &isnull));

		if (OidIsValid(relid) && tbl != relid)
			continue;
		if (get_rel_name(tbl) == NULL)
			continue;
		old = MemoryContextSwitchTo(mcxt);
		p = palloc0(sizeof(Policy));
		p->relid = tbl;
		p->time_column = pstrdup(NameStr(*DatumGetName(heap_getattr(tup, a_time, td, &isnull))));
		parse_granularity(TextDatumGetCString(heap_getattr(tup, a_gran, td, &isnull)), &p->gran);
		d = heap_getattr(tup, a_hash, td, &isnull);
		p->hash_column = isnull ? NULL : pstrdup(NameStr(*DatumGetName(d)));
		d = heap_getattr(tup, a_hash_n, td, &isnull);
		p->hash_partitions = isnull ? 0 : DatumGetInt32(d);
		p->premake = DatumGetInt32(heap_getattr(tup, a_premake, td, &isnull));
		d = heap_getattr(tup, a_retention, td, &isnull);
		p->retention = isnull ? NULL : DatumGetIntervalP(datumCopy(d, false, sizeof(Interval)));
		p->retention_drop = strcmp(TextDatumGetCString(heap_getattr(tup, a_action, td, &isnull)), "drop") == 0;
		p->default_partition = DatumGetBool(heap_getattr(tup, a_default, td, &isnull));
		result = lappend(result, p);
		MemoryContextSwitchTo(old);
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	list_sort(result, cmp_policies);
	return result;
}

void
log_action(Oid relid, const char *table_name, int64 as_of, const char *action,
		   const char *partition, const char *detail, double duration_ms)
{
	Oid			types[7] = {OIDOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID, FLOAT8OID};
	Datum		values[7];
	char		nulls[7] = "       ";

	values[0] = ObjectIdGetDatum(relid);
	values[1] = CStringGetTextDatum(table_name);
	values[2] = TimestampTzGetDatum(as_of);
	values[3] = CStringGetTextDatum(action);
	values[4] = partition ? CStringGetTextDatum(partition) : (Datum) 0;
	nulls[4] = partition ? ' ' : 'n';
	values[5] = detail ? CStringGetTextDatum(detail) : (Datum) 0;
	nulls[5] = detail ? ' ' : 'n';
	values[6] = Float8GetDatum(duration_ms);
	catalog_execute(psprintf("INSERT INTO %s (table_oid, table_name, as_of, action, "
							 "partition_name, detail, duration_ms) "
							 "VALUES ($1, $2, $3, $4, $5, $6, $7)",
							 capacity_object("capacity_rollover_history")),
					7, types, values, nulls, false);
}

void
require_not_in_recovery(const char *what)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("matter_capacity: cannot %s while the server is in recovery", what),
				 errhint("Run it on the primary; views and capacity_stage() work on a standby.")));
}

Oid
get_rel_owner_oid(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* Does the current user own the table (directly or through a role)? */
bool
caller_owns_table(Oid relid)
{
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(RelationRelationId, relid, GetUserId());
#else
	return pg_class_ownercheck(relid, GetUserId());
#endif
}

void
require_table_owner(Oid relid)
{
	if (!caller_owns_table(relid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("matter_capacity: must be owner of table %s", qualified_name(relid)),
				 errhint("Run it as the table's owner or a member of the owning role.")));
}

/*
 * search_path = pg_catalog, pg_temp until the returned GUC nest level is
 * closed with AtEOXact_GUC: generated SQL then never resolves to objects a
 * user put on their search path.
 */
int
pin_search_path(void)
{
	int			nest = NewGUCNestLevel();

	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

/*
 * Set up a materialized result for a set-returning function (the same code
 * on PostgreSQL 14 to 17).
 */
void
init_materialized(FunctionCallInfo fcinfo, Tuplestorestate **store, TupleDesc *desc)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext old;
	TupleDesc	td;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("matter_capacity: set-valued function called in a context that cannot accept a set"),
				 errhint("Call it in a FROM clause: SELECT * FROM capacity_rollover().")));
	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "matter_capacity: return type must be a row type");
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	*desc = CreateTupleDescCopy(td);
	*store = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(old);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = *store;
	rsinfo->setDesc = *desc;
}

PG_FUNCTION_INFO_V1(capacity_require_commit);

/*
 * CALL capacity_require_commit(what text): the procedures that commit
 * between steps (the conversion) call it first.  A procedure may commit
 * only when its CALL is not atomic: not inside BEGIN ... COMMIT, not in
 * an implicit block of several statements sent as one query, not from a
 * function.  PostgreSQL would otherwise fail at the first COMMIT with a
 * bare "invalid transaction termination".
 */
Datum
capacity_require_commit(PG_FUNCTION_ARGS)
{
	const char *what = PG_ARGISNULL(0) ? "this procedure" : text_to_cstring(PG_GETARG_TEXT_PP(0));
	CallContext *call = (fcinfo->context && IsA(fcinfo->context, CallContext))
		? (CallContext *) fcinfo->context : NULL;

	if (call == NULL || call->atomic)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("matter_capacity: %s cannot run inside a transaction block", what),
				 errdetail("It commits between its steps, which PostgreSQL allows only to a CALL that runs on its own."),
				 errhint("CALL it as a statement of its own in autocommit mode: not after BEGIN, not together with other statements in one query string (a cron job string, PQexec), not from a function. Nothing was changed.")));
	PG_RETURN_VOID();
}
