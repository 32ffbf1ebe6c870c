/*-------------------------------------------------------------------------
 * manage.c
 *		capacity_manage() and capacity_set_hash_partitions(): policies.
 *
 * Owns: validating a partition policy against the table it names and
 * storing it (with the table's default EXPLAIN-stability checks).  Every
 * check runs before anything is written, so bad input changes nothing.
 * Must not create partitions: the rollover engine makes them.  The one DDL
 * run here is capacity_set_hash_partitions' DETACH + DROP of an empty
 * future period (under locks.c's bounded loop, as the table owner), which
 * the rollover then re-creates with the new bucket count, one period after
 * the other while the call has held the table less than the lock timeout
 * and within the lock budget (the rest is deferred to the next call).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/twophase.h"
#include "access/xact.h"
#include "catalog/pg_inherits.h"
#include "executor/tuptable.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "matter_capacity.h"
#include "catalog.h"
#include "locks.h"
#include "partitions.h"
#include "periods.h"
#include "rollover.h"

PG_FUNCTION_INFO_V1(capacity_manage);
PG_FUNCTION_INFO_V1(capacity_set_hash_partitions);

#define MAX_PREMAKE 1000
#define MAX_HASH_PARTITIONS 1024

static void
require_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matter_capacity: argument %s must not be NULL", name),
				 errhint("See docs/partitioning.md for the arguments of capacity_manage().")));
}

/* capacity_manage and capacity_check_policy take the same arguments first */
static void
require_policy_args(FunctionCallInfo fcinfo)
{
	require_arg(fcinfo, 0, "tbl");
	require_arg(fcinfo, 1, "time_column");
	require_arg(fcinfo, 2, "granularity");
	require_arg(fcinfo, 5, "premake");
	require_arg(fcinfo, 7, "retention_action");
}

static void
check_hash_partitions(const char *table, int n)
{
	if (n < 2 || n > MAX_HASH_PARTITIONS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: hash_partitions %d for table %s is out of range", n, table),
				 errhint("Use between 2 and %d hash partitions per period.", MAX_HASH_PARTITIONS)));
}

/*
 * A policy's size: the current period and premake periods ahead, each of
 * hash_partitions leaves, are made at once (one transaction in the function
 * form, each holding locks): bounded by matter_capacity.max_leaves_per_policy.
 */
static void
check_policy_leaves(const char *table, int premake, int hash_n)
{
	int64		leaves = (int64) (premake + 1) * Max(hash_n, 1);

	if (leaves > mc_max_leaves_per_policy)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("matter_capacity: a policy for table %s with premake %d and %d hash partitions makes " INT64_FORMAT " leaf tables, more than matter_capacity.max_leaves_per_policy (%d)",
						table, premake, Max(hash_n, 1), leaves, mc_max_leaves_per_policy),
				 errhint("Use fewer periods ahead or fewer hash partitions; a superuser can raise matter_capacity.max_leaves_per_policy.")));
}

/*
 * The longest retention: the rollover subtracts it from as_of (any time
 * from the year 1000 on, see periods.c), and the cutoff must stay a valid
 * timestamp (4713 BC on), so 1000 years leaves a wide margin.
 */
#define MAX_RETENTION_YEARS 1000

/*
 * Refuse a retention the rollover cannot apply as meant.  Each part must
 * be zero or positive: the rollover subtracts months, then days, then time
 * from as_of with calendar arithmetic, so a negative part ('1 mon -29
 * days') can put the cutoff after as_of and retire the period just ended
 * although its nominal length passes.  The parts are bounded each (no
 * overflow in the sum) and together (the cutoff stays a valid timestamp).
 * Months count as 30 days when compared with one period.
 */
static void
check_retention(const char *table, Interval *iv, Granularity gran)
{
	const int64 max_days = (int64) MAX_RETENTION_YEARS * 366;
	int64		usecs;

	if (iv->month < 0 || iv->day < 0 || iv->time < 0 ||
		(iv->month == 0 && iv->day == 0 && iv->time == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: retention for table %s must be positive, with no negative part", table),
				 errhint("Pass an interval such as '52 weeks' or '3 months' (between one %s and %d years, every part positive), or NULL to keep every period.",
						 granularity_name(gran), MAX_RETENTION_YEARS)));
	if (iv->month > MAX_RETENTION_YEARS * 12 || iv->day > max_days ||
		iv->time / USECS_PER_DAY > max_days ||
		(int64) iv->month * 30 + iv->day + iv->time / USECS_PER_DAY > max_days)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: retention for table %s is longer than %d years", table, MAX_RETENTION_YEARS),
				 errhint("Pass at most '%d years', or NULL to keep every period.", MAX_RETENTION_YEARS)));
	usecs = iv->time + (int64) iv->day * USECS_PER_DAY + (int64) iv->month * 30 * USECS_PER_DAY;
	if (usecs < granularity_nominal_usecs(gran))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: retention for table %s is shorter than one %s",
						table, granularity_name(gran)),
				 errhint("Retention must cover at least one whole period (and at most %d years).",
						 MAX_RETENTION_YEARS)));
}

/*
 * The policy checks, the only copy: capacity_manage() makes them on a
 * partitioned table, the conversion (capacity_convert_check, through
 * capacity_check_policy()) on the table it is about to partition.  Errors
 * name the table; nothing is changed.
 */
static void
check_policy(Oid relid, const char *table, const char *time_column, const char *gran_text,
			 Granularity *granp, const char *hash_column, bool has_hash_n, int hash_n,
			 int premake, Interval *retention, const char *action)
{
	Granularity gran;

	if (!parse_granularity(gran_text, &gran))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: granularity \"%s\" for table %s is not supported", gran_text, table),
				 errhint("Use day, week or month.")));
	if (hash_column == NULL && has_hash_n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: hash_partitions given for table %s without hash_column", table),
				 errhint("Name the tenant column to hash by, or omit hash_partitions.")));
	if (hash_column != NULL)
	{
		AttrNumber	att;
		Oid			typid;

		if (!has_hash_n)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("matter_capacity: hash_column %s of table %s needs hash_partitions",
							quote_identifier(hash_column), table),
					 errhint("Pass hash_partitions => 16, for example.")));
		check_hash_partitions(table, hash_n);
		check_hash_column(relid, hash_column);
		if (strcmp(hash_column, time_column) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("matter_capacity: hash_column of table %s must differ from its time column", table),
					 errhint("Hash by the tenant column, such as \"orgId\".")));
		att = get_attnum(relid, hash_column);
		typid = get_atttype(relid, att);
		if (!OidIsValid(GetDefaultOpClass(typid, HASH_AM_OID)))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("matter_capacity: column %s of table %s has type %s, which has no hash operator class",
							quote_identifier(hash_column), table, format_type_be(typid)),
					 errhint("Hash-subpartition by a column of a hashable type.")));
	}
	{
		/* partitions are created as the table's owner, in the table's schema */
		Oid			owner = get_rel_owner_oid(relid);
		Oid			nsp = get_rel_namespace(relid);

		if (pg_namespace_aclcheck(nsp, owner, ACL_CREATE) != ACLCHECK_OK ||
			pg_namespace_aclcheck(nsp, owner, ACL_USAGE) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("matter_capacity: owner %s of table %s cannot create tables in schema %s",
							quote_identifier(GetUserNameFromId(owner, false)), table,
							quote_identifier(get_namespace_name(nsp))),
					 errhint("Partitions are created as the table's owner: GRANT USAGE, CREATE ON SCHEMA %s TO %s.",
							 quote_identifier(get_namespace_name(nsp)),
							 quote_identifier(GetUserNameFromId(owner, false)))));
	}
	if (premake < 1 || premake > MAX_PREMAKE)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: premake %d for table %s is out of range", premake, table),
				 errhint("Create between 1 and %d periods ahead.", MAX_PREMAKE)));
	check_policy_leaves(table, premake, hash_column ? hash_n : 0);
	if (retention)
		check_retention(table, retention, gran);
	if (strcmp(action, "detach") != 0 && strcmp(action, "drop") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: retention_action \"%s\" for table %s is not supported", action, table),
				 errhint("Use detach (keep the old period as a table) or drop.")));

	*granp = gran;
}

/*
 * capacity_manage(tbl, time_column, granularity, hash_column, hash_partitions,
 *				   premake, retention, retention_action, default_partition)
 */
Datum
capacity_manage(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *time_column;
	char	   *gran_text;
	Granularity gran;
	char	   *hash_column = PG_ARGISNULL(3) ? NULL : NameStr(*PG_GETARG_NAME(3));
	bool		has_hash_n = !PG_ARGISNULL(4);
	int			hash_n = has_hash_n ? PG_GETARG_INT32(4) : 0;
	int			premake;
	Interval   *retention = PG_ARGISNULL(6) ? NULL : PG_GETARG_INTERVAL_P(6);
	char	   *action;
	bool		with_default;
	char	   *table;
	List	   *existing;
	int			nest;
	Oid			types[9] = {OIDOID, NAMEOID, TEXTOID, NAMEOID, INT4OID, INT4OID,
	INTERVALOID, TEXTOID, BOOLOID};
	Datum		values[9];
	char		nulls[9] = "         ";

	require_policy_args(fcinfo);
	require_arg(fcinfo, 8, "default_partition");
	relid = PG_GETARG_OID(0);
	time_column = NameStr(*PG_GETARG_NAME(1));
	gran_text = text_to_cstring(PG_GETARG_TEXT_PP(2));
	premake = PG_GETARG_INT32(5);
	action = text_to_cstring(PG_GETARG_TEXT_PP(7));
	with_default = PG_GETARG_BOOL(8);

	require_not_in_recovery("manage a table");
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("matter_capacity: table with OID %u does not exist", relid),
				 errhint("Pass an existing partitioned table.")));
	table = qualified_name(relid);
	require_table_owner(relid);
	check_range_partitioned_by(relid, time_column, NULL);

	check_policy(relid, table, time_column, gran_text, &gran, hash_column, has_hash_n, hash_n,
				 premake, retention, action);
	if (hash_column != NULL)
		check_keys_for_hash(relid, hash_column);
	SPI_connect();
	nest = pin_search_path();

	/*
	 * A policy whose periods exist cannot change their hash shape.  Its
	 * granularity can change: periods already made stay, the next ones
	 * follow the new grid from where the last one ends (free_spans).
	 */
	existing = load_policies(relid, CurrentMemoryContext);
	if (existing != NIL)
	{
		Policy	   *old = linitial(existing);
		TableLayout *layout;

		char	   *old_hash;

		/*
		 * Columns are compared as the partition keys name them today, so a
		 * policy whose columns were renamed is repaired by naming them anew.
		 */
		layout = read_table_layout(relid, time_column);
		old_hash = hash_key_column(layout);
		if (old_hash == NULL && layout->parts == NIL)
			old_hash = hash_column;
		if (old_hash == NULL && old->hash_column &&
			get_attnum(relid, old->hash_column) != InvalidAttrNumber)
			old_hash = old->hash_column;
		if (layout->parts != NIL &&
			((old_hash == NULL) != (hash_column == NULL) ||
			 (hash_column && strcmp(old_hash, hash_column) != 0)))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("matter_capacity: table %s already has partitions by %s %s%s%s",
							table, quote_identifier(old->time_column), granularity_name(old->gran),
							old->hash_column ? " and hash of " : "",
							old->hash_column ? quote_identifier(old->hash_column) : ""),
					 errhint("Only granularity, premake, retention, hash_partitions and default_partition can change once periods exist.")));
	}

	/* names the next rollover needs must be free (or ours) */
	{
		Policy		pol = {0};

		pol.relid = relid;
		pol.time_column = time_column;
		pol.gran = gran;
		pol.hash_column = hash_column;
		pol.hash_partitions = hash_n;
		pol.premake = premake;
		pol.default_partition = with_default;
		check_policy_names(&pol, GetCurrentTransactionStartTimestamp());
	}

	values[0] = ObjectIdGetDatum(relid);
	values[1] = PG_GETARG_DATUM(1);
	values[2] = CStringGetTextDatum(gran_text);
	values[3] = hash_column ? PG_GETARG_DATUM(3) : (Datum) 0;
	nulls[3] = hash_column ? ' ' : 'n';
	values[4] = Int32GetDatum(hash_n);
	nulls[4] = hash_column ? ' ' : 'n';
	values[5] = Int32GetDatum(premake);
	values[6] = retention ? IntervalPGetDatum(retention) : (Datum) 0;
	nulls[6] = retention ? ' ' : 'n';
	values[7] = CStringGetTextDatum(action);
	values[8] = BoolGetDatum(with_default);
	catalog_execute(psprintf("INSERT INTO %s AS p (table_name, time_column, granularity, hash_column, "
							 "hash_partitions, premake, retention, retention_action, default_partition) "
							 "VALUES ($1::pg_catalog.regclass, $2, $3, $4, $5, $6, $7, $8, $9) "
							 "ON CONFLICT (table_name) DO UPDATE SET time_column = EXCLUDED.time_column, "
							 "granularity = EXCLUDED.granularity, hash_column = EXCLUDED.hash_column, "
							 "hash_partitions = EXCLUDED.hash_partitions, premake = EXCLUDED.premake, "
							 "retention = EXCLUDED.retention, retention_action = EXCLUDED.retention_action, "
							 "default_partition = EXCLUDED.default_partition, updated_at = pg_catalog.now()",
							 capacity_object("capacity_policy")),
					9, types, values, nulls, false);

	/* the EXPLAIN-stability checks every managed table gets, as its owner */
	{
		Oid			dtypes[2] = {OIDOID, OIDOID};
		Datum		dvalues[2] = {ObjectIdGetDatum(relid), ObjectIdGetDatum(get_rel_owner_oid(relid))};

		catalog_execute(psprintf("SELECT %s($1::pg_catalog.regclass, $2::pg_catalog.regrole)",
								 capacity_object("capacity_explain_register_defaults")),
						2, dtypes, dvalues, NULL, false);
	}

	AtEOXact_GUC(false, nest);
	SPI_finish();
	PG_RETURN_VOID();
}

/* Argument of drop_empty_period. */
typedef struct DropEmpty
{
	TableLayout *layout;
	Oid			partid;
	bool		dropped;
} DropEmpty;

/*
 * Does a period (or any of its leaves) hold a row?  Asked under ACCESS
 * EXCLUSIVE on each of them, so no writer is in flight; answered from the
 * storage itself, not by a query: no snapshot of the caller's (a REPEATABLE
 * READ transaction's would miss rows committed since) and no row-level
 * security (a policy can hide rows from the owner).  A leaf with pages is
 * scanned with the latest snapshot; anything but a table or partitioned
 * table counts as holding rows.
 */
static bool
period_has_rows(Oid partid)
{
	List	   *rels = find_all_inheritors(partid, AccessExclusiveLock, NULL);
	ListCell   *lc;

	foreach(lc, rels)
	{
		Relation	rel = table_open(lfirst_oid(lc), NoLock);
		bool		found = false;

		if (rel->rd_rel->relkind == RELKIND_RELATION)
		{
			if (RelationGetNumberOfBlocks(rel) > 0)
			{
				Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
				TableScanDesc scan = table_beginscan(rel, snap, 0, NULL);
				TupleTableSlot *slot = table_slot_create(rel, NULL);

				found = table_scan_getnextslot(scan, ForwardScanDirection, slot);
				ExecDropSingleTupleTableSlot(slot);
				table_endscan(scan);
				UnregisterSnapshot(snap);
			}
		}
		else if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
			found = true;
		table_close(rel, NoLock);
		if (found)
			return true;
	}
	return false;
}

/*
 * Detach and drop a future period if it is still empty.  Takes ACCESS
 * EXCLUSIVE on the parent first (the order DETACH itself uses), then on
 * the period and its leaves (rows can be written into a leaf directly),
 * all under the lock timeout, so no row can arrive between the check and
 * the drop.
 */
static void
drop_empty_period(void *arg)
{
	DropEmpty  *d = arg;
	char	   *part = qualified_name(d->partid);

	LockRelationOid(d->layout->relid, AccessExclusiveLock);
	d->dropped = !period_has_rows(d->partid);
	if (!d->dropped)
		return;
	exec_sql(psprintf("ALTER TABLE %s DETACH PARTITION %s", d->layout->qualname, part), SPI_OK_UTILITY);
	exec_sql(psprintf("DROP TABLE %s", part), SPI_OK_UTILITY);
}

/*
 * capacity_set_hash_partitions(tbl, hash_partitions, as_of): the partition
 * split runbook.  Periods made from now on get the new bucket count; empty
 * periods that start after as_of are re-created with it; periods holding
 * data keep theirs (no rewrite).
 *
 * A function cannot commit, and each DETACH holds the parent ACCESS
 * EXCLUSIVE until the caller's transaction ends, so one call is bounded:
 * it stops starting drops once it has held the parent for
 * matter_capacity.lock_timeout, or when the next period (dropped and
 * re-created) would pass the lock budget, and logs the rest as 'deferred'.
 * The policy already says the new count, so calling again (with the same
 * count) goes on from there; every call re-makes at least one period.
 */
Datum
capacity_set_hash_partitions(PG_FUNCTION_ARGS)
{
	Oid			relid;
	int			n;
	Policy	   *pol;
	List	   *pols;
	TableLayout *layout;
	ActionSink	sink = {0};
	ListCell   *lc;
	int			nest;
	Period		cur;
	Oid			types[2] = {OIDOID, INT4OID};
	Datum		values[2];
	char	   *table;
	Oid			save_userid;
	int			save_sec;
	List	   *to_remake = NIL;
	int			nindexes;
	int			per_new;
	int			max_old = 0;
	int64		budget = rollover_lock_budget();
	int64		used = 0;		/* drops and the re-creations they need */
	int			remade = 0;
	int			made = 0;
	TimestampTz held_since = 0;

	require_arg(fcinfo, 0, "tbl");
	require_arg(fcinfo, 1, "hash_partitions");
	require_arg(fcinfo, 2, "as_of");
	relid = PG_GETARG_OID(0);
	n = PG_GETARG_INT32(1);
	sink.as_of = PG_GETARG_TIMESTAMPTZ(2);
	check_time_in_range(sink.as_of, "as_of");
	require_not_in_recovery("change hash partitions");
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("matter_capacity: table with OID %u does not exist", relid),
				 errhint("Pass a managed table.")));
	table = qualified_name(relid);
	require_table_owner(relid);

	SPI_connect();
	nest = pin_search_path();
	pols = load_policies(relid, CurrentMemoryContext);
	if (pols == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("matter_capacity: table %s is not managed", table),
				 errhint("Register it first with capacity_manage().")));
	pol = linitial(pols);
	if (pol->hash_column == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("matter_capacity: table %s has no hash subpartitions", table),
				 errhint("Only policies created with hash_column can change their bucket count.")));
	check_hash_partitions(table, n);
	check_policy_leaves(table, pol->premake, n);

	/* the future periods to re-make, nearest first */
	layout = read_table_layout(relid, pol->time_column);
	cur = period_containing(sink.as_of, pol->gran);
	foreach(lc, layout->parts)
	{
		PartInfo   *pi = lfirst(lc);

		if (pi->from_unbounded || pi->from < cur.to)
			continue;
		pi->nleaves = leaf_modulus(pi->relid);
		if (pi->nleaves == n || pi->nleaves == 0)
			continue;
		to_remake = lappend(to_remake, pi);
		max_old = Max(max_old, pi->nleaves);
	}
	{
		Relation	rel = table_open(relid, AccessShareLock);

		nindexes = list_length(RelationGetIndexList(rel));
		table_close(rel, NoLock);
	}
	per_new = rollover_locks_for_period(n, nindexes);

	/* even one period too big for a transaction: refuse before any change */
	if ((int64) per_new + (to_remake ? rollover_locks_for_period(max_old, nindexes) : 0) > budget)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("matter_capacity: re-making one period of table %s with %d hash partitions takes about %d locks, more than one transaction may take (about " INT64_FORMAT ")",
						table, n,
						per_new + (to_remake ? rollover_locks_for_period(max_old, nindexes) : 0), budget),
				 errhint("Use fewer hash partitions, or raise max_locks_per_transaction (the budget is half the shared lock table: max_locks_per_transaction = %d).",
						 max_locks_per_xact)));

	values[0] = ObjectIdGetDatum(relid);
	values[1] = Int32GetDatum(n);
	catalog_execute(psprintf("UPDATE %s SET hash_partitions = $2, updated_at = pg_catalog.now() "
							 "WHERE table_name OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
							 capacity_object("capacity_policy")),
					2, types, values, NULL, false);
	pol->hash_partitions = n;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(layout->owner,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	foreach(lc, to_remake)
	{
		PartInfo   *pi = lfirst(lc);
		DropEmpty	d = {layout, pi->relid, false};
		char	   *name = get_rel_name(pi->relid);
		int			per_old = rollover_locks_for_period(pi->nleaves, nindexes);
		TimestampTz started = GetCurrentTimestamp();

		if (made > 0 &&
			(used + per_old + per_new > budget ||
			 TimestampDifferenceExceeds(held_since, GetCurrentTimestamp(), mc_lock_timeout_ms)))
		{
			int			left = list_length(to_remake) - foreach_current_index(lc);

			SetUserIdAndSecContext(save_userid, save_sec);
			log_action(relid, table, sink.as_of, "deferred", name,
					   psprintf("split: %d more %s from %s left for the next call (this call held %s for matter_capacity.lock_timeout = %d ms or took about " INT64_FORMAT " of the " INT64_FORMAT " locks one transaction may take); call capacity_set_hash_partitions(%s, %d) again",
								left, left == 1 ? "period" : "periods", utc_label(pi->from),
								table, mc_lock_timeout_ms, used, budget, quote_literal_cstr(table), n), 0);
			ereport(NOTICE,
					(errmsg("matter_capacity: split of table %s: %d more %s to re-make with %d hash partitions, from %s",
							table, left, left == 1 ? "period" : "periods", n, utc_label(pi->from)),
					 errdetail("One call holds the table ACCESS EXCLUSIVE for at most about matter_capacity.lock_timeout (%d ms) and within the lock budget (about " INT64_FORMAT " locks).",
							   mc_lock_timeout_ms, budget),
					 errhint("Call capacity_set_hash_partitions(%s, %d) again, in a transaction of its own, until no period is deferred.",
							 quote_literal_cstr(table), n)));
			SetUserIdAndSecContext(layout->owner,
								   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
			break;
		}
		if (!run_bounded(drop_empty_period, &d, NULL))
		{
			log_action(relid, table, sink.as_of, "skipped_locked", name,
					   "split: lock not available, period keeps its buckets", 0);
			continue;
		}
		/* from here on this transaction holds the parent */
		if (made++ == 0)
			held_since = started;
		used += per_old;
		if (d.dropped)
		{
			used += per_new;
			remade++;
			log_action(relid, table, sink.as_of, "dropped", name,
					   psprintf("empty future period with %d hash partitions, re-created with %d",
								pi->nleaves, n), 0);

			/*
			 * Re-create it at once, with the new count, so the time bound
			 * covers the creation too; the rollover's own budget counts the
			 * locks the drops took.
			 */
			SetUserIdAndSecContext(save_userid, save_sec);
			sink.locks_used += per_old;
			rollover_table(pol, &sink, 0);
			SetUserIdAndSecContext(layout->owner,
								   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
		}
		else
			sink.locks_used += per_old;
	}
	SetUserIdAndSecContext(save_userid, save_sec);

	/* nothing was re-made: still roll the table over, as before */
	if (remade == 0)
		rollover_table(pol, &sink, 0);

	AtEOXact_GUC(false, nest);
	SPI_finish();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(capacity_check_policy);

/*
 * capacity_check_policy(tbl regclass, time_column name, granularity text,
 *		hash_column name, hash_partitions int, premake int, retention interval,
 *		retention_action text) RETURNS void
 *
 * capacity_manage()'s checks of a policy's arguments for tbl, for the
 * conversion, which partitions a table before it is managed.
 */
Datum
capacity_check_policy(PG_FUNCTION_ARGS)
{
	Oid			relid;
	Granularity gran;

	require_policy_args(fcinfo);
	relid = PG_GETARG_OID(0);
	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("matter_capacity: table with OID %u does not exist", relid),
				 errhint("Pass an existing table.")));
	check_policy(relid, qualified_name(relid), NameStr(*PG_GETARG_NAME(1)),
				 text_to_cstring(PG_GETARG_TEXT_PP(2)), &gran,
				 PG_ARGISNULL(3) ? NULL : NameStr(*PG_GETARG_NAME(3)),
				 !PG_ARGISNULL(4), PG_ARGISNULL(4) ? 0 : PG_GETARG_INT32(4),
				 PG_GETARG_INT32(5), PG_ARGISNULL(6) ? NULL : PG_GETARG_INTERVAL_P(6),
				 text_to_cstring(PG_GETARG_TEXT_PP(7)));
	PG_RETURN_VOID();
}
