/*-------------------------------------------------------------------------
 * partitions.c
 *		Read a range-partitioned table's layout; build DDL that extends it.
 *
 * Owns: checking that a table has the shape a policy needs, reading its
 * level-1 partitions (bounds from pg_class.relpartbound, never from names),
 * and the text of CREATE / ATTACH / row-moving statements.  Must not run
 * any of that SQL nor take locks beyond the parent's ACCESS SHARE:
 * executing is rollover.c's job, under locks.c's timeout.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "access/table.h"
#include "catalog/partition.h"
#include "access/genam.h"
#include "catalog/dependency.h"
#include "catalog/pg_class.h"
#include "catalog/pg_partitioned_table.h"
#include "storage/lmgr.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_index.h"
#include "utils/relcache.h"
#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "catalog.h"
#include "partitions.h"

#define BOUNDS_CONSTRAINT "matter_capacity_bounds"

/*
 * The table must be partitioned by RANGE on exactly time_column, and that
 * column must be date, timestamp or timestamptz.  Errors name the table.
 */
void
check_range_partitioned_by(Oid relid, const char *time_column, Oid *timetype)
{
	Relation	rel;
	PartitionKey key;
	AttrNumber	attnum;
	Oid			typid;
	char	   *name = qualified_name(relid);

	rel = table_open(relid, AccessShareLock);
	if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
	{
		table_close(rel, AccessShareLock);
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("matter_capacity: table %s is not partitioned", name),
				 errhint("Declare it PARTITION BY RANGE (%s), or convert it first.",
						 quote_identifier(time_column))));
	}
	key = RelationGetPartitionKey(rel);
	attnum = get_attnum(relid, time_column);
	if (attnum == InvalidAttrNumber)
	{
		table_close(rel, AccessShareLock);
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("matter_capacity: column %s of table %s does not exist",
						quote_identifier(time_column), name),
				 errhint("Name the timestamp column the table is partitioned by.")));
	}
	if (key->strategy != PARTITION_STRATEGY_RANGE || key->partnatts != 1 ||
		key->partattrs[0] != attnum)
	{
		table_close(rel, AccessShareLock);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("matter_capacity: table %s is not partitioned by RANGE (%s)",
						name, quote_identifier(time_column)),
				 errhint("matter_capacity manages tables declared PARTITION BY RANGE on the one time column given.")));
	}
	typid = get_atttype(relid, attnum);
	table_close(rel, AccessShareLock);
	if (typid != DATEOID && typid != TIMESTAMPOID && typid != TIMESTAMPTZOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("matter_capacity: column %s of table %s has type %s",
						quote_identifier(time_column), name, format_type_be(typid)),
				 errhint("The time column must be timestamptz, timestamp or date.")));
	if (timetype)
		*timetype = typid;
}

void
check_hash_column(Oid relid, const char *hash_column)
{
	AttrNumber	attnum = get_attnum(relid, hash_column);

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("matter_capacity: column %s of table %s does not exist",
						quote_identifier(hash_column), qualified_name(relid)),
				 errhint("Name the tenant column to hash-subpartition by, or pass NULL.")));
}

/*
 * Name of the single column a table is partitioned by (NULL when it is not
 * partitioned on one plain column).  Policies name their columns; after a
 * RENAME COLUMN the stored name is stale but the key still says which
 * column it is.
 */
char *
partition_key_column(Oid relid)
{
	Relation	rel;
	PartitionKey key;
	char	   *name = NULL;

	if (get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return NULL;
	rel = table_open(relid, AccessShareLock);
	key = RelationGetPartitionKey(rel);
	if (key->partnatts == 1 && key->partattrs[0] != 0)
		name = get_attname(relid, key->partattrs[0], false);
	table_close(rel, NoLock);
	return name;
}

/* Partitioning strategy of a partitioned table (PARTITION_STRATEGY_*). */
static int
partition_strategy_of(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	int			strategy = RelationGetPartitionKey(rel)->strategy;

	table_close(rel, NoLock);
	return strategy;
}

/*
 * The hash column of a managed table's existing periods (by the newest
 * hash-partitioned one), or NULL.
 */
char *
hash_key_column(TableLayout *layout)
{
	ListCell   *lc;
	char	   *name = NULL;

	foreach(lc, layout->parts)
	{
		PartInfo   *pi = lfirst(lc);

		/* a period the DBA sub-partitioned otherwise (LIST, RANGE) says nothing */
		if (get_rel_relkind(pi->relid) == RELKIND_PARTITIONED_TABLE &&
			partition_strategy_of(pi->relid) == PARTITION_STRATEGY_HASH)
		{
			char	   *col = partition_key_column(pi->relid);

			if (col)
				name = col;
		}
	}
	return name;
}

/*
 * With hash subpartitions every period is PARTITION BY HASH (hash_column),
 * and PostgreSQL refuses a unique index (or primary key) on a partitioned
 * table unless it contains the partition columns: such a key would make
 * every period's CREATE fail.  Refuse it up front, naming the index.
 */
void
check_keys_for_hash(Oid relid, const char *hash_column)
{
	Relation	rel;
	List	   *indexes;
	ListCell   *lc;
	AttrNumber	hashatt = get_attnum(relid, hash_column);

	rel = table_open(relid, AccessShareLock);
	indexes = RelationGetIndexList(rel);
	table_close(rel, AccessShareLock);
	foreach(lc, indexes)
	{
		Oid			indexid = lfirst_oid(lc);
		HeapTuple	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexid));
		Form_pg_index idx;
		bool		has = false;
		int			i;

		if (!HeapTupleIsValid(tup))
			continue;
		idx = (Form_pg_index) GETSTRUCT(tup);
		for (i = 0; i < idx->indnkeyatts; i++)
			if (idx->indkey.values[i] == hashatt)
				has = true;
		if (idx->indisunique && !has)
		{
			bool		primary = idx->indisprimary;

			ReleaseSysCache(tup);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
					 errmsg("matter_capacity: %s %s of table %s does not include the hash column %s",
							primary ? "primary key" : "unique index",
							quote_identifier(get_rel_name(indexid)), qualified_name(relid),
							quote_identifier(hash_column)),
					 errhint("PostgreSQL needs every unique key of a hash-partitioned period to contain %s: add it to the key, or manage the table without hash_column.",
							 quote_identifier(hash_column))));
		}
		ReleaseSysCache(tup);
	}
}

/*
 * The relation (or type) in nspid that already holds name, or InvalidOid;
 * *kind gets the relkind ('T' for a type that is no relation's row type).
 */
Oid
name_holder(Oid nspid, const char *name, char *kind)
{
	Oid			relid = get_relname_relid(name, nspid);
	Oid			typid;

	if (OidIsValid(relid))
	{
		*kind = get_rel_relkind(relid);
		return relid;
	}
	typid = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
							CStringGetDatum(name), ObjectIdGetDatum(nspid));
	*kind = 'T';
	return typid;
}

/* Bound value to microseconds; false when it is -infinity/infinity. */
static bool
bound_to_usecs(Const *c, int64 *out)
{
	switch (c->consttype)
	{
		case DATEOID:
			{
				DateADT		d = DatumGetDateADT(c->constvalue);

				if (DATE_NOT_FINITE(d))
					return false;
				*out = (int64) d * USECS_PER_DAY;
				return true;
			}
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			{
				int64		t = DatumGetInt64(c->constvalue);

				if (TIMESTAMP_NOT_FINITE(t))
					return false;
				*out = t;
				return true;
			}
	}
	return false;
}

/* A decoded range bound to microseconds; false when unbounded/infinite. */
static bool
range_datum_to_usecs(PartitionRangeDatumKind kind, Datum value, Oid typid, int64 *out)
{
	Const		c;

	if (kind != PARTITION_RANGE_DATUM_VALUE)
		return false;
	c.consttype = typid;
	c.constvalue = value;
	return bound_to_usecs(&c, out);
}

/*
 * The range [from, to) a partition of parent was attached for, read from
 * its own relpartbound alone (no partition descriptor of the parent is
 * built); false when relid is not such a partition or a bound is not a
 * finite time.
 */
bool
partition_range(Oid relid, Oid parent, int64 *from, int64 *to)
{
	HeapTuple	tup;
	Datum		d;
	bool		isnull;
	bool		ok = false;

	if (!get_rel_relispartition(relid) || get_partition_parent(relid, true) != parent)
		return false;
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return false;
	d = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relpartbound, &isnull);
	if (!isnull)
	{
		PartitionBoundSpec *spec = (PartitionBoundSpec *) stringToNode(TextDatumGetCString(d));

		if (spec->strategy == PARTITION_STRATEGY_RANGE && !spec->is_default &&
			list_length(spec->lowerdatums) == 1 && list_length(spec->upperdatums) == 1)
		{
			PartitionRangeDatum *lo = linitial(spec->lowerdatums);
			PartitionRangeDatum *hi = linitial(spec->upperdatums);

			ok = lo->kind == PARTITION_RANGE_DATUM_VALUE && hi->kind == PARTITION_RANGE_DATUM_VALUE &&
				IsA(lo->value, Const) && IsA(hi->value, Const) &&
				bound_to_usecs((Const *) lo->value, from) && bound_to_usecs((Const *) hi->value, to);
		}
	}
	ReleaseSysCache(tup);
	return ok;
}

/* Hash modulus of a partitioned child's leaves, 0 for a plain leaf. */
int
leaf_modulus(Oid relid)
{
	List	   *children;
	ListCell   *lc;
	int			modulus = 0;

	if (get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return 0;
	children = find_inheritance_children(relid, NoLock);
	foreach(lc, children)
	{
		HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(lfirst_oid(lc)));
		Datum		d;
		bool		isnull;

		if (!HeapTupleIsValid(tup))
			continue;
		d = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relpartbound, &isnull);
		if (!isnull)
		{
			PartitionBoundSpec *spec = (PartitionBoundSpec *)
			stringToNode(TextDatumGetCString(d));

			if (spec->strategy == PARTITION_STRATEGY_HASH && spec->modulus > modulus)
				modulus = spec->modulus;
		}
		ReleaseSysCache(tup);
	}
	return modulus;
}

static int
cmp_parts(const ListCell *a, const ListCell *b)
{
	PartInfo   *pa = lfirst(a);
	PartInfo   *pb = lfirst(b);

	if (pa->from_unbounded != pb->from_unbounded)
		return pa->from_unbounded ? -1 : 1;
	if (pa->from != pb->from)
		return pa->from < pb->from ? -1 : 1;
	return 0;
}

/*
 * Read the level-1 partitions of a table already checked with
 * check_range_partitioned_by.  The caller holds at least ACCESS SHARE on it
 * (taken here if not).
 */
TableLayout *
read_table_layout(Oid relid, const char *time_column)
{
	TableLayout *layout = palloc0(sizeof(TableLayout));
	Relation	rel;
	PartitionDesc pd;
	TupleDesc	tupdesc;
	StringInfoData cols;
	int			i;

	check_range_partitioned_by(relid, time_column, &layout->timetype);

	rel = table_open(relid, AccessShareLock);
	layout->relid = relid;
	layout->owner = rel->rd_rel->relowner;
	layout->nspid = RelationGetNamespace(rel);
	layout->nspname = get_namespace_name(RelationGetNamespace(rel));
	layout->relname = pstrdup(RelationGetRelationName(rel));
	layout->qualname = quote_qualified_identifier(layout->nspname, layout->relname);
	layout->timecol_q = pstrdup(quote_identifier(time_column));

	tupdesc = RelationGetDescr(rel);
	initStringInfo(&cols);
	for (i = 0; i < tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);

		if (att->attisdropped || att->attgenerated)
			continue;
		appendStringInfo(&cols, "%s%s", cols.len ? ", " : "",
						 quote_identifier(NameStr(att->attname)));
	}
	layout->columns_q = cols.data;

	/*
	 * Bounds come decoded from the relcache: bound i is the upper bound of
	 * partition indexes[i] (or only a lower bound when that is -1), and a
	 * partition's lower bound is the bound just before its upper one.
	 */
	pd = RelationGetPartitionDesc(rel, false);
	if (pd->nparts > 0 && pd->boundinfo != NULL)
	{
		PartitionBoundInfo bi = pd->boundinfo;

		for (i = 0; i < bi->ndatums; i++)
		{
			int			k = bi->indexes[i];
			PartInfo   *pi;

			if (k < 0 || i == 0)
				continue;
			pi = palloc0(sizeof(PartInfo));
			pi->relid = pd->oids[k];
			pi->nleaves = -1;	/* unknown until leaf_modulus() is asked */
			pi->from_unbounded = !range_datum_to_usecs(bi->kind[i - 1][0], bi->datums[i - 1][0],
													   layout->timetype, &pi->from);
			pi->to_unbounded = !range_datum_to_usecs(bi->kind[i][0], bi->datums[i][0],
													 layout->timetype, &pi->to);
			layout->parts = lappend(layout->parts, pi);
		}
		if (bi->default_index >= 0)
		{
			layout->deflt = palloc0(sizeof(PartInfo));
			layout->deflt->relid = pd->oids[bi->default_index];
			layout->deflt->is_default = true;
			layout->deflt->nleaves = -1;
		}
	}
	list_sort(layout->parts, cmp_parts);
	table_close(rel, NoLock);	/* keep ACCESS SHARE to end of transaction */
	return layout;
}

/* The first ranged partition that shares an instant with p, or NULL. */
PartInfo *
find_overlapping(TableLayout *layout, Period p)
{
	ListCell   *lc;

	foreach(lc, layout->parts)
	{
		PartInfo   *pi = lfirst(lc);
		bool		starts_before_end = pi->from_unbounded || pi->from < p.to;
		bool		ends_after_start = pi->to_unbounded || pi->to > p.from;

		if (starts_before_end && ends_after_start)
			return pi;
	}
	return NULL;
}

/*
 * The spans of p no ranged partition covers, in order (Period *): p itself
 * when nothing overlaps it, nothing when it is covered whole.  After a
 * change of granularity a period of the new grid can be partly covered by
 * periods of the old one; its free span is what the rollover creates, so
 * the new periods start exactly where the old ones end (no gap, no
 * overlap) and follow the new grid from its next boundary on.
 */
List *
free_spans(TableLayout *layout, Period p)
{
	List	   *spans = NIL;
	int64		cursor = p.from;
	ListCell   *lc;

	foreach(lc, layout->parts)
	{
		PartInfo   *pi = lfirst(lc);
		int64		from = pi->from_unbounded ? PG_INT64_MIN : pi->from;
		int64		to = pi->to_unbounded ? PG_INT64_MAX : pi->to;

		if (to <= cursor || from >= p.to)
			continue;			/* parts are sorted by from: none skipped */
		if (from > cursor)
		{
			Period	   *span = palloc(sizeof(Period));

			span->from = cursor;
			span->to = from;
			spans = lappend(spans, span);
		}
		cursor = to;
		if (cursor >= p.to)
			return spans;
	}
	if (cursor < p.to)
	{
		Period	   *span = palloc(sizeof(Period));

		span->from = cursor;
		span->to = p.to;
		spans = lappend(spans, span);
	}
	return spans;
}

char *
sql_qualify(TableLayout *layout, const char *relname)
{
	return quote_qualified_identifier(layout->nspname, relname);
}

static char *
range_predicate(TableLayout *layout, Period p)
{
	return psprintf("%s >= %s AND %s < %s",
					layout->timecol_q, period_literal(p.from, layout->timetype),
					layout->timecol_q, period_literal(p.to, layout->timetype));
}

/*
 * A standalone table shaped like the parent, with a CHECK constraint that
 * proves its bounds so ATTACH skips the validation scan.  Indexes are
 * copied so ATTACH only has to match them, not build them under lock.
 */
char *
sql_create_period(TableLayout *layout, const char *relname, Period p,
				  const char *hash_column_q)
{
	return psprintf("CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
					"INCLUDING INDEXES INCLUDING STORAGE INCLUDING GENERATED, "
					"CONSTRAINT %s CHECK (%s IS NOT NULL AND %s))%s%s%s",
					sql_qualify(layout, relname), layout->qualname,
					BOUNDS_CONSTRAINT, layout->timecol_q, range_predicate(layout, p),
					hash_column_q ? " PARTITION BY HASH (" : "",
					hash_column_q ? hash_column_q : "",
					hash_column_q ? ")" : "");
}

char *
sql_create_leaf(TableLayout *layout, const char *period_relname,
				const char *leaf_relname, int modulus, int remainder)
{
	return psprintf("CREATE TABLE %s PARTITION OF %s FOR VALUES WITH (MODULUS %d, REMAINDER %d)",
					sql_qualify(layout, leaf_relname),
					sql_qualify(layout, period_relname), modulus, remainder);
}

/*
 * The one builder of a period: the statements that make the standalone
 * table of period p, named from the table's name and suffix (the period's,
 * period_suffix(), or a version of it the rollover chose because a
 * detached period holds the name), and its hash leaves.  The rollover runs them before attaching; the conversion's
 * backfill (capacity_period_ddl) before gathering them under its staging
 * table.
 */
List *
sql_build_period(TableLayout *layout, const char *suffix, Period p,
				 const char *hash_column, int hash_partitions)
{
	char	   *relname = partition_relname(layout->relname, suffix);
	List	   *stmts;
	int			r;

	stmts = list_make1(sql_create_period(layout, relname, p,
										 hash_column ? quote_identifier(hash_column) : NULL));
	for (r = 0; hash_column && r < hash_partitions; r++)
		stmts = lappend(stmts,
						sql_create_leaf(layout, relname,
										partition_relname(layout->relname,
														  psprintf("%s_%s", suffix,
																   hash_leaf_suffix(r, hash_partitions))),
										hash_partitions, r));
	return stmts;
}

char *
sql_create_default(TableLayout *layout, const char *relname)
{
	return psprintf("CREATE TABLE %s (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
					"INCLUDING INDEXES INCLUDING STORAGE INCLUDING GENERATED)",
					sql_qualify(layout, relname), layout->qualname);
}

char *
sql_attach_period(TableLayout *layout, const char *relname, Period p)
{
	return psprintf("ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)",
					layout->qualname, sql_qualify(layout, relname),
					period_literal(p.from, layout->timetype),
					period_literal(p.to, layout->timetype));
}

char *
sql_attach_default(TableLayout *layout, const char *relname)
{
	return psprintf("ALTER TABLE %s ATTACH PARTITION %s DEFAULT",
					layout->qualname, sql_qualify(layout, relname));
}

/*
 * Move the default partition's rows of one period into a table; one
 * statement, so a row is either moved or left, never both or neither.
 */
char *
sql_move_rows(TableLayout *layout, const char *target_relname, Period p)
{
	return psprintf("WITH moved AS (DELETE FROM ONLY %s WHERE %s RETURNING %s) "
					"INSERT INTO %s (%s) SELECT %s FROM moved",
					qualified_name(layout->deflt->relid), range_predicate(layout, p),
					layout->columns_q, sql_qualify(layout, target_relname),
					layout->columns_q, layout->columns_q);
}

/* Does the default partition hold a row of p?  (one row at most is read) */
char *
sql_default_has_rows(TableLayout *layout, Period p)
{
	return psprintf("SELECT 1 FROM ONLY %s WHERE %s LIMIT 1",
					qualified_name(layout->deflt->relid), range_predicate(layout, p));
}

/*
 * Count the default partition's rows per period, in UTC; NULL times form a
 * bucket of their own (they can never leave the default partition).
 */
char *
sql_default_buckets(TableLayout *layout, Granularity g)
{
	const char *expr;

	switch (layout->timetype)
	{
		case TIMESTAMPTZOID:
			expr = psprintf("(%s AT TIME ZONE 'UTC')", layout->timecol_q);
			break;
		case DATEOID:
			expr = psprintf("%s::pg_catalog.timestamp", layout->timecol_q);
			break;
		default:
			expr = layout->timecol_q;
			break;
	}
	return psprintf("SELECT pg_catalog.date_trunc('%s', %s) AS bucket, pg_catalog.count(*) "
					"FROM ONLY %s GROUP BY 1 ORDER BY 1",
					granularity_name(g), expr, qualified_name(layout->deflt->relid));
}

/*
 * capacity_partition_tree(tbl regclass) RETURNS TABLE(partition_name regclass,
 *	 parent_name regclass, level int, range_from timestamptz,
 *	 range_to timestamptz, hash_modulus int, hash_remainder int,
 *	 is_default boolean)
 *
 * Every partition under tbl with its bounds decoded from relpartbound.
 * Hash leaves inherit the time range of their period.  Works for any
 * range-partitioned table, managed by us or not.
 */
PG_FUNCTION_INFO_V1(capacity_partition_tree);

typedef struct TreeState
{
	Tuplestorestate *store;
	TupleDesc	desc;
} TreeState;

static void
walk_tree(TreeState *st, Oid parent, int level, bool has_range, int64 from,
		  int64 to, bool from_inf, bool to_inf)
{
	List	   *children = find_inheritance_children(parent, NoLock);
	ListCell   *lc;

	foreach(lc, children)
	{
		Oid			child = lfirst_oid(lc);
		HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(child));
		PartitionBoundSpec *spec;
		Datum		values[8];
		bool		nulls[8] = {0};
		Datum		d;
		bool		isnull;
		bool		c_has_range = has_range;
		int64		c_from = from,
					c_to = to;
		bool		c_from_inf = from_inf,
					c_to_inf = to_inf;

		if (!HeapTupleIsValid(tup))
			continue;
		d = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relpartbound, &isnull);
		/* d points into the cache entry: decode it before releasing that */
		spec = isnull ? NULL : (PartitionBoundSpec *) stringToNode(TextDatumGetCString(d));
		ReleaseSysCache(tup);
		if (spec == NULL)
			continue;

		values[0] = ObjectIdGetDatum(child);
		values[1] = ObjectIdGetDatum(parent);
		values[2] = Int32GetDatum(level);
		if (spec->strategy == PARTITION_STRATEGY_RANGE && !spec->is_default)
		{
			PartitionRangeDatum *lo = linitial(spec->lowerdatums);
			PartitionRangeDatum *hi = linitial(spec->upperdatums);

			c_has_range = true;
			c_from_inf = lo->kind != PARTITION_RANGE_DATUM_VALUE ||
				!bound_to_usecs((Const *) lo->value, &c_from);
			c_to_inf = hi->kind != PARTITION_RANGE_DATUM_VALUE ||
				!bound_to_usecs((Const *) hi->value, &c_to);
		}
		else if (spec->is_default && level == 1)
			c_has_range = false;
		nulls[3] = !c_has_range;
		nulls[4] = !c_has_range;
		values[3] = TimestampTzGetDatum(c_from_inf ? DT_NOBEGIN : c_from);
		values[4] = TimestampTzGetDatum(c_to_inf ? DT_NOEND : c_to);
		nulls[5] = nulls[6] = (spec->strategy != PARTITION_STRATEGY_HASH);
		values[5] = Int32GetDatum(spec->modulus);
		values[6] = Int32GetDatum(spec->remainder);
		values[7] = BoolGetDatum(spec->is_default);
		tuplestore_putvalues(st->store, st->desc, values, nulls);

		if (get_rel_relkind(child) == RELKIND_PARTITIONED_TABLE)
			walk_tree(st, child, level + 1, c_has_range, c_from, c_to, c_from_inf, c_to_inf);
	}
}

Datum
capacity_partition_tree(PG_FUNCTION_ARGS)
{
	TreeState	st;
	Oid			relid = PG_GETARG_OID(0);

	init_materialized(fcinfo, &st.store, &st.desc);
	if (get_rel_name(relid) != NULL)
		walk_tree(&st, relid, 1, false, 0, 0, false, false);
	return (Datum) 0;
}

/*
 * capacity_partition_horizon() RETURNS TABLE(table_name regclass,
 *	 range_to timestamptz)
 *
 * The upper bound of the newest partition of every top-level table
 * partitioned by range on a date/timestamp column (extension members
 * excluded): what partition_runway_days is computed from.  Bounds come
 * decoded from the relcache, so a warm backend (the worker) pays almost
 * nothing; a table whose ACCESS SHARE lock is not free at once is skipped
 * rather than waited for.
 */
PG_FUNCTION_INFO_V1(capacity_partition_horizon);

Datum
capacity_partition_horizon(PG_FUNCTION_ARGS)
{
	Tuplestorestate *store;
	TupleDesc	desc;
	Relation	ptrel;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *tables = NIL;
	ListCell   *lc;

	init_materialized(fcinfo, &store, &desc);

	ptrel = table_open(PartitionedRelationId, AccessShareLock);
	scan = systable_beginscan(ptrel, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_partitioned_table pt = (Form_pg_partitioned_table) GETSTRUCT(tup);

		if (pt->partstrat == PARTITION_STRATEGY_RANGE && pt->partnatts == 1)
			tables = lappend_oid(tables, pt->partrelid);
	}
	systable_endscan(scan);
	table_close(ptrel, AccessShareLock);

	foreach(lc, tables)
	{
		Oid			relid = lfirst_oid(lc);
		Relation	rel;
		PartitionKey key;
		PartitionDesc pd;
		Datum		values[2];
		bool		nulls[2] = {false, false};
		int64		to;

		if (get_rel_relispartition(relid) ||
			OidIsValid(getExtensionOfObject(RelationRelationId, relid)) ||
			!ConditionalLockRelationOid(relid, AccessShareLock))
			continue;
		rel = table_open(relid, NoLock);
		key = RelationGetPartitionKey(rel);
		pd = RelationGetPartitionDesc(rel, false);
		if ((key->parttypid[0] == DATEOID || key->parttypid[0] == TIMESTAMPOID ||
			 key->parttypid[0] == TIMESTAMPTZOID) &&
			pd->nparts > 0 && pd->boundinfo != NULL && pd->boundinfo->ndatums > 0)
		{
			PartitionBoundInfo bi = pd->boundinfo;
			int			last = bi->ndatums - 1;

			if (bi->indexes[last] >= 0 &&
				range_datum_to_usecs(bi->kind[last][0], bi->datums[last][0],
									 key->parttypid[0], &to))
			{
				values[0] = ObjectIdGetDatum(relid);
				values[1] = TimestampTzGetDatum(to);
				tuplestore_putvalues(store, desc, values, nulls);
			}
		}
		table_close(rel, NoLock);
	}
	return (Datum) 0;
}

/*
 * capacity_period_ddl(tbl regclass, time_column name, granularity text,
 *	 period_start timestamptz, hash_column name, hash_partitions int)
 *	 RETURNS text[]
 *
 * sql_build_period() for SQL: the statements that make the standalone
 * table of the period of tbl containing period_start, exactly as the
 * rollover makes it.  Runs nothing.
 */
PG_FUNCTION_INFO_V1(capacity_period_ddl);

Datum
capacity_period_ddl(PG_FUNCTION_ARGS)
{
	TableLayout *layout;
	Granularity g;
	Period		p;
	List	   *stmts;
	ListCell   *lc;
	Datum	   *elems;
	int			i = 0;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("matter_capacity: table, time column, granularity and period start must not be NULL"),
				 errhint("capacity_period_ddl('t', 'created_at', 'day', '2026-11-30')")));
	if (!parse_granularity(text_to_cstring(PG_GETARG_TEXT_PP(2)), &g))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("matter_capacity: granularity \"%s\" is not day, week or month",
						text_to_cstring(PG_GETARG_TEXT_PP(2))),
				 errhint("Periods are days, ISO weeks (Monday 00:00 UTC) or months.")));
	check_time_in_range(PG_GETARG_TIMESTAMPTZ(3), "period_start");
	layout = read_table_layout(PG_GETARG_OID(0), NameStr(*PG_GETARG_NAME(1)));
	p = period_containing(PG_GETARG_TIMESTAMPTZ(3), g);
	stmts = sql_build_period(layout, period_suffix(p.from, g), p,
							 PG_ARGISNULL(4) ? NULL : NameStr(*PG_GETARG_NAME(4)),
							 PG_ARGISNULL(5) ? 0 : PG_GETARG_INT32(5));
	elems = palloc(sizeof(Datum) * list_length(stmts));
	foreach(lc, stmts)
		elems[i++] = CStringGetTextDatum(lfirst(lc));
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, i, TEXTOID, -1, false, TYPALIGN_INT));
}
