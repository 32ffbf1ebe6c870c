/*-------------------------------------------------------------------------
 * explain.c
 *		capacity_explain_partitions(): how many partitions a query would
 *		scan, found through the planner and executor start-up, never by
 *		running the query or parsing EXPLAIN text.
 *
 * The query must be one SELECT (SELECT ... FOR UPDATE is accepted: it is
 * only planned, and no row is locked; data-modifying CTEs and SELECT INTO
 * are refused).  It is planned, then started with EXEC_FLAG_EXPLAIN_ONLY:
 * start-up runs the executor's initial partition pruning (now(), stable
 * functions, parameters) but executes nothing.  The leaf partitions left in
 * the initialised plan tree are counted.
 *
 * With parameters ($1 ... given as text), the query is checked twice:
 * as a custom plan, with the values folded in at plan time, and as the
 * generic plan a prepared statement ends up with, where only run-time
 * pruning at start-up can help.  The larger count is the answer, so a
 * pruning that works only in custom plans is caught.
 *
 * The plan signature hashes the shape of the started plan: node types,
 * relations and indexes, a partition named by its partitioned root (so
 * the weekly move to a new partition is not a "change"), no costs.
 *
 * Owns: planning and starting one query.  Must not store results
 * (capacity_explain_run, in SQL, does).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/xact.h"
#include "catalog/partition.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/params.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/sinval.h"
#include "utils/memutils.h"
#include "rewrite/rewriteHandler.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "catalog.h"
#include "explain.h"
#include "matter_capacity.h"
#include "usercode.h"

PG_FUNCTION_INFO_V1(capacity_explain_partitions);
PG_FUNCTION_INFO_V1(capacity_explain_detail);

typedef struct WalkState
{
	EState	   *estate;
	List	   *partitions;		/* distinct partition OIDs scanned */
	StringInfoData shape;
} WalkState;

/* The partitioned root of a partition (or of a partition's index). */
static Oid
partition_root(Oid relid)
{
	List	   *ancestors = get_partition_ancestors(relid);

	return ancestors == NIL ? relid : llast_oid(ancestors);
}

static void
note_relation(WalkState *ws, Oid relid, bool is_index)
{
	bool		part = get_rel_relispartition(relid);
	Oid			named = part ? partition_root(relid) : relid;

	if (part && !is_index)
		ws->partitions = list_append_unique_oid(ws->partitions, relid);
	appendStringInfo(&ws->shape, " %s%s", is_index ? "index:" : "rel:",
					 quote_identifier(get_rel_name(named)));
}

static bool
walk_planstate(PlanState *ps, void *context)
{
	WalkState  *ws = context;
	Plan	   *plan = ps->plan;

	appendStringInfo(&ws->shape, " (%d", (int) nodeTag(plan));
	switch (nodeTag(plan))
	{
		case T_SeqScan:
		case T_SampleScan:
		case T_BitmapHeapScan:
		case T_TidScan:
		case T_TidRangeScan:
		case T_ForeignScan:
		case T_CustomScan:
			if (((Scan *) plan)->scanrelid > 0)
				note_relation(ws, exec_rt_fetch(((Scan *) plan)->scanrelid, ws->estate)->relid, false);
			break;
		case T_IndexScan:
			note_relation(ws, exec_rt_fetch(((Scan *) plan)->scanrelid, ws->estate)->relid, false);
			note_relation(ws, ((IndexScan *) plan)->indexid, true);
			break;
		case T_IndexOnlyScan:
			note_relation(ws, exec_rt_fetch(((Scan *) plan)->scanrelid, ws->estate)->relid, false);
			note_relation(ws, ((IndexOnlyScan *) plan)->indexid, true);
			break;
		case T_BitmapIndexScan:
			note_relation(ws, ((BitmapIndexScan *) plan)->indexid, true);
			break;
		default:
			break;
	}
	planstate_tree_walker(ps, walk_planstate, context);
	appendStringInfoChar(&ws->shape, ')');
	return false;
}

/*
 * Generic plans, reused between checks with the same query, role and
 * search_path.  A generic plan does not depend on the parameter values
 * (start-up pruning, which does, runs for every check), and planning one
 * over a table with thousands of leaves is the expensive part of a check.
 * A registered check runs in a subtransaction that is rolled back, releasing
 * the locks planning took: a reused plan's relations are locked again first.
 * Dropped at transaction end and whenever invalidation messages have been
 * processed (any DDL, such as a rollover attaching a partition), so a plan
 * is never used after the catalog it was made from has changed.
 */
typedef struct GenericPlanEntry
{
	Oid			userid;
	char	   *search_path;
	char	   *query;
	PlannedStmt *plan;
} GenericPlanEntry;

static MemoryContext generic_cxt = NULL;
static List *generic_plans = NIL;
static LocalTransactionId generic_lxid = InvalidLocalTransactionId;
static uint64 generic_inval_count = 0;

static PlannedStmt *
generic_plan_for(Query *q, const char *query)
{
	const char *sp = GetConfigOption("search_path", false, false);
	ListCell   *lc;
	GenericPlanEntry *e;
	MemoryContext old;
	PlannedStmt *plan;

	if (generic_cxt == NULL)
		generic_cxt = AllocSetContextCreate(TopMemoryContext, "matter_capacity generic plans",
											ALLOCSET_DEFAULT_SIZES);
	if (generic_lxid != MyProc->lxid || generic_inval_count != SharedInvalidMessageCounter)
	{
		MemoryContextReset(generic_cxt);
		generic_plans = NIL;
		generic_lxid = MyProc->lxid;
		generic_inval_count = SharedInvalidMessageCounter;
	}
	foreach(lc, generic_plans)
	{
		e = lfirst(lc);
		if (e->userid == GetUserId() && strcmp(e->search_path, sp) == 0 && strcmp(e->query, query) == 0)
		{
			ListCell   *rl;

			/*
			 * The locks planning took may be gone (a registered check runs
			 * in a subtransaction that is rolled back): take them again, as
			 * the plan cache does before reusing a plan; if that processed
			 * an invalidation, the plan may be stale: plan afresh.
			 */
			foreach(rl, e->plan->rtable)
			{
				RangeTblEntry *rte = lfirst_node(RangeTblEntry, rl);

				if (rte->rtekind == RTE_RELATION)
					LockRelationOid(rte->relid, rte->rellockmode);
			}
			if (generic_inval_count == SharedInvalidMessageCounter)
				return e->plan;
			MemoryContextReset(generic_cxt);
			generic_plans = NIL;
			generic_inval_count = SharedInvalidMessageCounter;
			break;
		}
	}
	plan = pg_plan_query(copyObject(q), query, CURSOR_OPT_PARALLEL_OK | CURSOR_OPT_GENERIC_PLAN, NULL);
	if (generic_inval_count != SharedInvalidMessageCounter)
	{
		/* the catalog changed while planning: keep nothing */
		MemoryContextReset(generic_cxt);
		generic_plans = NIL;
		generic_inval_count = SharedInvalidMessageCounter;
		return plan;
	}
	/* same transaction: the locks planning took are still held */
	old = MemoryContextSwitchTo(generic_cxt);
	e = palloc(sizeof(GenericPlanEntry));
	e->userid = GetUserId();
	e->search_path = pstrdup(sp);
	e->query = pstrdup(query);
	e->plan = copyObject(plan);
	generic_plans = lappend(generic_plans, e);
	MemoryContextSwitchTo(old);
	return e->plan;
}

/* Start a plan without running it; count partitions and describe its shape. */
static int
count_started_plan(PlannedStmt *pstmt, const char *query, ParamListInfo params,
				   StringInfo shape)
{
	QueryDesc  *qd;
	WalkState	ws = {0};
	int			n;

	qd = CreateQueryDesc(pstmt, query, GetActiveSnapshot(), InvalidSnapshot,
						 None_Receiver, params, NULL, 0);
	ExecutorStart(qd, EXEC_FLAG_EXPLAIN_ONLY);
	ws.estate = qd->estate;
	initStringInfo(&ws.shape);
	walk_planstate(qd->planstate, &ws);
	ExecutorEnd(qd);
	FreeQueryDesc(qd);
	n = list_length(ws.partitions);
	if (shape)
		appendStringInfoString(shape, ws.shape.data);
	return n;
}

static void
refuse(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_WRONG_OBJECT_TYPE),
			 errmsg("matter_capacity: only a single SELECT can be checked; this is %s", what),
			 errhint("Pass one read-only SELECT; it is planned and never executed.")));
}

PruneResult
check_query_pruning(const char *query, ArrayType *params)
{
	PruneResult result = {0};
	RawStmt    *rs;
	const char *cte;
	Oid		   *ptypes = NULL;
	int			nptypes = 0;
	int			nvalues = 0;
	Datum	   *values = NULL;
	bool	   *nulls = NULL;
	List	   *queries;
	Query	   *q;
	StringInfoData shape;
	int			i;

	/* planning never takes row locks, so FOR UPDATE is checked as written */
	switch (single_select_shape(query, &rs, &cte))
	{
		case SELECT_ONE:
		case SELECT_LOCKING:
			break;
		case SELECT_EMPTY:
			refuse("an empty string");
			break;
		case SELECT_SEVERAL:
			refuse("several statements");
			break;
		case SELECT_NOT_SELECT:
			refuse("not a SELECT");
			break;
		case SELECT_INTO:
			refuse("SELECT INTO");
			break;
		case SELECT_MODIFYING_WITH:
			refuse("a SELECT with a data-modifying WITH");
			break;
	}

	if (params)
		deconstruct_array(params, TEXTOID, -1, false, TYPALIGN_INT, &values, &nulls, &nvalues);

#if PG_VERSION_NUM >= 150000
	queries = pg_analyze_and_rewrite_varparams(rs, query, &ptypes, &nptypes, NULL);
#else
	queries = QueryRewrite(parse_analyze_varparams(rs, query, &ptypes, &nptypes));
#endif
	if (list_length(queries) != 1)
		refuse("a statement rewritten into several");
	q = linitial_node(Query, queries);
	if (q->commandType != CMD_SELECT || q->utilityStmt != NULL)
		refuse("not a SELECT");
	if (q->hasModifyingCTE)
		refuse("a SELECT with a data-modifying WITH");
	if (nptypes != nvalues)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: the query uses %d parameter(s) but %d value(s) were given",
						nptypes, nvalues),
				 errhint("Pass params => ARRAY['value for $1', ...] with one text value per $n.")));

	initStringInfo(&shape);
	PushActiveSnapshot(GetTransactionSnapshot());
	if (nptypes == 0)
	{
		PlannedStmt *p = pg_plan_query(copyObject(q), query, CURSOR_OPT_PARALLEL_OK, NULL);

		result.custom_partitions = count_started_plan(p, query, NULL, &shape);
		result.generic_partitions = -1;
		result.partitions = result.custom_partitions;
	}
	else
	{
		ParamListInfo pl = makeParamList(nptypes);
		PlannedStmt *custom;
		PlannedStmt *generic;

		for (i = 0; i < nptypes; i++)
		{
			Oid			typ = ptypes[i] == InvalidOid || ptypes[i] == UNKNOWNOID ? TEXTOID : ptypes[i];
			Oid			typinput,
						typioparam;

			getTypeInputInfo(typ, &typinput, &typioparam);
			pl->params[i].ptype = typ;
			pl->params[i].isnull = nulls[i];
			pl->params[i].pflags = PARAM_FLAG_CONST;
			pl->params[i].value = nulls[i] ? (Datum) 0 :
				OidInputFunctionCall(typinput, TextDatumGetCString(values[i]), typioparam, -1);
		}
		/* custom plan: values known to the planner */
		custom = pg_plan_query(copyObject(q), query, CURSOR_OPT_PARALLEL_OK, pl);
		result.custom_partitions = count_started_plan(custom, query, pl, NULL);
		/* generic plan: only start-up pruning sees the values */
		generic = generic_plan_for(q, query);
		result.generic_partitions = count_started_plan(generic, query, pl, &shape);
		result.partitions = Max(result.custom_partitions, result.generic_partitions);
	}
	PopActiveSnapshot();
	result.signature = psprintf("%016" INT64_MODIFIER "x",
								(uint64) hash_bytes_extended((const unsigned char *) shape.data,
															 shape.len, 0));
	return result;
}

/* (query text, params text[]) of the two SQL entry points, checked. */
static PruneResult
prune_call_args(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matter_capacity: query must not be NULL"),
				 errhint("Pass the SELECT to check.")));
	return check_query_pruning(text_to_cstring(PG_GETARG_TEXT_PP(0)),
							   PG_ARGISNULL(1) ? NULL : PG_GETARG_ARRAYTYPE_P(1));
}

/*
 * capacity_explain_partitions(query text, params text[] DEFAULT NULL) RETURNS integer
 */
Datum
capacity_explain_partitions(PG_FUNCTION_ARGS)
{
	PruneResult r;

	r = prune_call_args(fcinfo);
	PG_RETURN_INT32(r.partitions);
}

/* The one-row result of capacity_explain_detail and capacity_explain_as. */
static void
return_prune_result(FunctionCallInfo fcinfo, PruneResult *r)
{
	Tuplestorestate *store;
	TupleDesc	desc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	init_materialized(fcinfo, &store, &desc);
	values[0] = Int32GetDatum(r->partitions);
	values[1] = Int32GetDatum(r->custom_partitions);
	values[2] = Int32GetDatum(r->generic_partitions);
	nulls[2] = r->generic_partitions < 0;
	values[3] = CStringGetTextDatum(r->signature);
	tuplestore_putvalues(store, desc, values, nulls);
}

/*
 * capacity_explain_detail(query text, params text[]) RETURNS TABLE(partitions int,
 *	 custom_partitions int, generic_partitions int, signature text)
 */
Datum
capacity_explain_detail(PG_FUNCTION_ARGS)
{
	PruneResult r;

	r = prune_call_args(fcinfo);
	return_prune_result(fcinfo, &r);
	return (Datum) 0;
}

/*
 * capacity_explain_as(owner oid, search_path text, query text, params text[])
 *	 RETURNS TABLE(partitions int, custom_partitions int, generic_partitions int, signature text)
 *
 * One registered check, run as the role that registered it and with its
 * search_path, so it can see nothing that role could not.  Not granted to
 * anyone: only capacity_explain_run (and the worker) call it.
 */
PG_FUNCTION_INFO_V1(capacity_explain_as);

Datum
capacity_explain_as(PG_FUNCTION_ARGS)
{
	PruneResult r;
	volatile PruneResult vr;
	UserCode	uc;
	char	   *query;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matter_capacity: owner and query must not be NULL"),
				 errhint("This function runs registered checks; use capacity_explain_run().")));
	query = text_to_cstring(PG_GETARG_TEXT_PP(2));

	/*
	 * Planning runs the owner's code (IMMUTABLE functions folded, RLS
	 * policies): as the owner, bounded, and rolled back, so no setting,
	 * row or lock of it outlives the check (usercode.c).
	 */
	usercode_begin(&uc, "an EXPLAIN check", PG_GETARG_OID(0),
				   PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)),
				   mc_probe_timeout_ms);
	PG_TRY();
	{
		PruneResult t = check_query_pruning(query, PG_ARGISNULL(3) ? NULL : PG_GETARG_ARRAYTYPE_P(3));

		vr = t;
	}
	PG_CATCH();
	{
		ReThrowError(usercode_fail(&uc));
	}
	PG_END_TRY();
	usercode_finish(&uc);
	r = vr;
	return_prune_result(fcinfo, &r);
	return (Datum) 0;
}

/*
 * capacity_explain_register(name text, query text, max_partitions int,
 *							 params text[] DEFAULT NULL)
 *
 * Stores a check owned by the calling role, with its search_path, after
 * trying it once as that role: an error (syntax, not a SELECT, no
 * permission) is reported with the check's name, and nothing is stored.
 */
PG_FUNCTION_INFO_V1(capacity_explain_register);

Datum
capacity_explain_register(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *query;
	int			max_partitions;
	MemoryContext oldcxt = CurrentMemoryContext;
	Oid			types[6] = {TEXTOID, TEXTOID, INT4OID, TEXTARRAYOID, OIDOID, TEXTOID};
	Datum		values[6];
	char		nulls[6] = "      ";

	if (PG_ARGISNULL(0) || strlen(text_to_cstring(PG_GETARG_TEXT_PP(0))) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: an EXPLAIN check needs a name"),
				 errhint("Name it after the query it guards, e.g. 'event: tenant timeline'.")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matter_capacity: EXPLAIN check \"%s\" needs a query", name),
				 errhint("Pass the SELECT the application runs, with $1 ... for its parameters.")));
	query = text_to_cstring(PG_GETARG_TEXT_PP(1));
	max_partitions = PG_ARGISNULL(2) ? -1 : PG_GETARG_INT32(2);
	if (max_partitions < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: max_partitions for EXPLAIN check \"%s\" must be 0 or more", name),
				 errhint("The number of leaf partitions the query may scan, e.g. 1 for tenant + period.")));
	require_not_in_recovery("register an EXPLAIN check");

	/* try it now, as the caller; name the check in any error */
	PG_TRY();
	{
		(void) check_query_pruning(query, PG_ARGISNULL(3) ? NULL : PG_GETARG_ARRAYTYPE_P(3));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		if (strncmp(edata->message, "matter_capacity: ", 17) == 0)
			edata->message += 17;
		edata->message = psprintf("matter_capacity: EXPLAIN check \"%s\": %s", name, edata->message);
		if (edata->hint == NULL)
			edata->hint = pstrdup("Fix the query; nothing was registered.");
		ReThrowError(edata);
	}
	PG_END_TRY();

	SPI_connect();
	values[0] = CStringGetTextDatum(name);
	catalog_execute(psprintf("SELECT owner::pg_catalog.oid FROM %s WHERE name = $1",
							 capacity_object("capacity_explain_check")),
					1, types, values, NULL, true);
	if (SPI_processed == 1)
	{
		bool		isnull;
		Oid			owner = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

		if (owner != GetUserId() && role_exists(owner) && !has_privs_of_role(GetUserId(), owner))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("matter_capacity: EXPLAIN check \"%s\" belongs to another role", name),
					 errhint("Only its owner (or a member of the owning role) can replace it.")));
	}
	values[1] = CStringGetTextDatum(query);
	values[2] = Int32GetDatum(max_partitions);
	values[3] = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	nulls[3] = PG_ARGISNULL(3) ? 'n' : ' ';
	values[4] = ObjectIdGetDatum(GetUserId());
	values[5] = CStringGetTextDatum(GetConfigOption("search_path", false, false));
	catalog_execute(psprintf("INSERT INTO %s AS c (name, query, max_partitions, params, owner, search_path) "
							 "VALUES ($1, $2, $3, $4, $5::pg_catalog.regrole, $6) "
							 "ON CONFLICT (name) DO UPDATE SET query = $2, max_partitions = $3, "
							 "params = $4, owner = $5::pg_catalog.regrole, search_path = $6, table_name = NULL",
							 capacity_object("capacity_explain_check")),
					6, types, values, nulls, false);
	SPI_finish();
	PG_RETURN_VOID();
}
