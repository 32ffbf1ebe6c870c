-- Tenant moves (stage 4 carried out): a tenant's rows move to a dedicated
-- cluster, a `tier` fleet member, with PostgreSQL's logical replication
-- (a publication with a row filter on the tenant column here, a
-- subscription there), verified before cutover.  The C side is
-- src/tenant_move.c; the runbook is docs/runbooks/tenant-tier-migration.md.

CREATE TABLE @extschema@.capacity_tenant_move (
    tenant      text PRIMARY KEY,
    member      text NOT NULL,                 -- capacity_fleet_member.name (kind tier)
    name        name NOT NULL UNIQUE,          -- publication, subscription and slot: mc_move_<md5(tenant)>_<md5(member)>
    -- aborted here: abort(force => true) undid this side only; the member's
    -- subscription and copy are left until an abort reaches it
    state       text NOT NULL CHECK (state IN ('syncing', 'frozen', 'cut over', 'cleaned', 'failed', 'aborted here')),
    reason      text,                          -- why it failed, what is left
    started_at  timestamptz NOT NULL DEFAULT now(),
    frozen_at   timestamptz,
    cutover_at  timestamptz,
    cleaned_at  timestamptz
);
COMMENT ON TABLE @extschema@.capacity_tenant_move IS
    'One row per tenant move in progress or done; written by capacity_tenant_move*() only.';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_tenant_move', '');

CREATE TABLE @extschema@.capacity_tenant_move_table (
    tenant          text NOT NULL REFERENCES @extschema@.capacity_tenant_move ON DELETE CASCADE,
    table_name      regclass NOT NULL,
    tenant_column   name NOT NULL,
    source_rows     bigint,                    -- the last verification
    target_rows     bigint,
    source_checksum text,
    target_checksum text,
    equal           boolean,
    verified_at     timestamptz,
    PRIMARY KEY (tenant, table_name)
);
COMMENT ON TABLE @extschema@.capacity_tenant_move_table IS
    'The tables of each move, their tenant column and their last verification.';
SELECT pg_catalog.pg_extension_config_dump('@extschema@.capacity_tenant_move_table', '');

CREATE FUNCTION @extschema@.capacity_tenant_move(tenant text, target text, tables regclass[] DEFAULT NULL,
                                                source_conninfo text DEFAULT NULL)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_tenant_move';
COMMENT ON FUNCTION @extschema@.capacity_tenant_move(text, text, regclass[], text) IS
    'Start moving a tenant to fleet member target (kind tier): tables default to every managed table with a tenant '
    '(hash) column.  Checks here (the tenant has rows, else P0002; a replica identity covering the tenant column 55000) '
    'and on the member (table 42P01, columns 42703 and types 42804, primary key or identity 55000, no rows of the tenant 55000); '
    'then a publication with a row filter on the tenant column (publish_via_partition_root), the subscription on the member '
    '(its initial copy is PostgreSQL''s), and a guard trigger per table.  source_conninfo: how the member reaches this '
    'database, without password (default: this server''s socket, database and role).  Call it in its own transaction (25001).';

CREATE FUNCTION @extschema@.capacity_tenant_move_verify(tenant text)
RETURNS TABLE(table_name regclass, source_rows bigint, target_rows bigint,
              source_checksum text, target_checksum text, equal boolean)
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_tenant_move_verify';
COMMENT ON FUNCTION @extschema@.capacity_tenant_move_verify(text) IS
    'Per table, count and checksum (sum of md5 of the row text) of the tenant''s rows here and on the member at one '
    'consistent point while the application writes: the tenant''s writes pause (bounded by lock_timeout, then by '
    'tenant_move_timeout for the member to confirm the WAL position), both snapshots are taken, writes resume, then the '
    'counting runs.  55000 while the initial copy is not finished.  Recorded as the move''s last verification.';

CREATE FUNCTION @extschema@.capacity_tenant_move_freeze(tenant text)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_tenant_move_freeze';
COMMENT ON FUNCTION @extschema@.capacity_tenant_move_freeze(text) IS
    'Refuse the tenant''s writes here from now on (SQLSTATE 25006 with a hint naming the member); waits at most '
    'lock_timeout x (lock_retries + 1) for the tenant''s writes in flight.  Other tenants are not affected.';

CREATE FUNCTION @extschema@.capacity_tenant_move_cutover(tenant text)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_tenant_move_cutover';
COMMENT ON FUNCTION @extschema@.capacity_tenant_move_cutover(text) IS
    'For a frozen move: waits (tenant_move_timeout) for lag zero, verifies counts and checksums (XX001 and stays frozen '
    'if they differ), records the tenant in capacity_tenant_tier and in the member''s labels.tenants, drops the '
    'subscription and the publication.  Resumable: if the member has no subscription any more (an interrupted '
    'cutover), both sides are compared as they are and the cutover finishes only if they are equal.  One change of a '
    'move at a time: waits lock_timeout x (lock_retries + 1) for another start/freeze/cutover/abort/cleanup of it '
    '(55P03).  Routing the application is the application''s.';

CREATE FUNCTION @extschema@.capacity_tenant_move_abort(tenant text, force boolean DEFAULT false)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_tenant_move_abort';
COMMENT ON FUNCTION @extschema@.capacity_tenant_move_abort(text, boolean) IS
    'Undo a move before cutover: drops the subscription and deletes the tenant''s copied rows on the member, drops the '
    'guard triggers (bounded by lock_timeout), the publication and the slot here; the tenant''s rows here are never '
    'touched.  force => true, for a member that cannot be reached: this side only, with a WARNING; the move stays as '
    '"aborted here" until an abort reaches the member (or a second forced abort forgets it).  A tenant with no move '
    'recorded: drops the publication and slot an interrupted start left here (NOTICE), else 42704.  55P03 while '
    'another call changes the same move.';

CREATE FUNCTION @extschema@.capacity_tenant_move_cleanup(tenant text, batch_rows integer DEFAULT 10000)
RETURNS bigint
LANGUAGE c CALLED ON NULL INPUT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_tenant_move_cleanup';
COMMENT ON FUNCTION @extschema@.capacity_tenant_move_cleanup(text, integer) IS
    'After cutover only, when asked: deletes up to batch_rows of the tenant''s rows per table here, each batch under '
    'lock_timeout; returns the rows deleted.  Call it (one transaction each) until it returns 0: the move is then cleaned.  '
    'Refuses (55000, nothing deleted) while the member has no rows of the tenant in a table that still has some here; '
    'needs the member (08001 if it cannot be reached).';

CREATE FUNCTION @extschema@.capacity_tenant_move_guard()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'capacity_tenant_move_guard';
COMMENT ON FUNCTION @extschema@.capacity_tenant_move_guard() IS
    'BEFORE ROW trigger (tenant column, tenant) added by capacity_tenant_move: on the tenant''s rows only, lets '
    'verification pause them, and refuses them (25006) once frozen.';

CREATE FUNCTION @extschema@.capacity_tenant_move_status()
RETURNS TABLE(tenant text, member text, table_name regclass, sync_state text, lag_bytes bigint,
              source_rows bigint, target_rows bigint, verified_at timestamptz, verified_equal boolean,
              verified_source_rows bigint, verified_target_rows bigint, state text, reason text, note text)
LANGUAGE c STRICT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_tenant_move_status';
COMMENT ON FUNCTION @extschema@.capacity_tenant_move_status() IS
    'The rows of capacity_tenant_moves; a member that cannot be reached within fleet_timeout gives NULLs and a note.';

CREATE VIEW @extschema@.capacity_tenant_moves AS
    SELECT * FROM @extschema@.capacity_tenant_move_status();
COMMENT ON VIEW @extschema@.capacity_tenant_moves IS
    'Per move and table: initial sync state on the member (init, copying, copied, synchronized, ready), lag_bytes of '
    'the subscription''s slot here, the tenant''s rows on each side now, the last verification, and the state: '
    'syncing, verifying (copy done, ready to verify and freeze), frozen, cut over, cleaned, failed (with reason), '
    'aborted here (the member''s part left, see reason).';

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_tenant_move(text, text, regclass[], text) FROM PUBLIC;
-- removing a fleet member (48_fleet.sql) must respect the moves to it
CREATE FUNCTION @extschema@.capacity_fleet_remove(name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    moves   text;
    tenants text;
BEGIN
    PERFORM @extschema@.capacity_refuse_in_recovery('remove a fleet member');
    IF name IS NULL THEN
        RAISE EXCEPTION 'matter_capacity: capacity_fleet_remove needs a member name, not NULL'
            USING ERRCODE = '22004', HINT = 'SELECT name FROM capacity_fleet_member lists the members.';
    END IF;
    -- serialise with a concurrent registration or move of this member
    PERFORM 1 FROM @extschema@.capacity_fleet_member m WHERE m.name = capacity_fleet_remove.name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'matter_capacity: fleet member "%" does not exist',
            CASE WHEN length(name) > 63 THEN left(name, 63) || '…' ELSE name END
            USING ERRCODE = '42704', HINT = 'SELECT name FROM capacity_fleet_member lists the members.';
    END IF;
    -- a move's abort and cleanup need the member; a tenant living there is
    -- recorded against it
    SELECT string_agg(format('%s (%s)', t.tenant, t.state), ', ' ORDER BY t.tenant) INTO moves
      FROM @extschema@.capacity_tenant_move t
     WHERE t.member = capacity_fleet_remove.name AND t.state <> 'cleaned';
    SELECT string_agg(t.tenant, ', ' ORDER BY t.tenant) INTO tenants
      FROM @extschema@.capacity_tenant_tier t
     WHERE t.member = capacity_fleet_remove.name;
    IF moves IS NOT NULL OR tenants IS NOT NULL THEN
        RAISE EXCEPTION 'matter_capacity: fleet member "%" is in use: %', name,
            concat_ws('; ', 'tenant moves to it: ' || moves, 'tenants living on it: ' || tenants)
            USING ERRCODE = '55000',
                  HINT = 'Finish (capacity_tenant_move_cutover, capacity_tenant_move_cleanup) or abort (capacity_tenant_move_abort) '
                         'the moves first; tenants cut over to it are recorded in capacity_tenant_tier and live there.';
    END IF;
    DELETE FROM @extschema@.capacity_fleet_member m WHERE m.name = capacity_fleet_remove.name;
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_fleet_remove(text) IS
    'Forgets a fleet member (its recorded samples stay).  22004 for NULL, 42704 if there is none of that name, '
    '55000 while tenant moves to it are not cleaned up or tenants live on it (capacity_tenant_tier).  '
    'The foreign server and user mapping are left to the DBA.  Defined here, not in 48_fleet.sql, because it reads '
    'capacity_tenant_move.';
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_fleet_remove(text) FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_tenant_move_verify(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_tenant_move_freeze(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_tenant_move_cutover(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_tenant_move_abort(text, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_tenant_move_cleanup(text, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_tenant_move_status() FROM PUBLIC;
-- CREATE TRIGGER checks EXECUTE; only capacity_tenant_move adds the guard
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_tenant_move_guard() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_tenant_move_status() TO pg_monitor;
GRANT SELECT ON @extschema@.capacity_tenant_moves TO pg_monitor;
