-- The fleet: other servers and poolers the hub (this database) watches.
--
-- A member is a PostgreSQL server reached through a postgres_fdw foreign
-- server and a user mapping (replica, tier, region), or a PgBouncer admin
-- console reached with a password-free conninfo (pooler).  Credentials
-- live only in user mappings and password files, never in this table.
-- The connecting, checking and polling is C (src/fleet.c over
-- src/remote.c); what is registered is decided here.  docs/fleet.md.

CREATE TABLE @extschema@.capacity_fleet_member (
    name      text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_.-]{1,63}$'),
    kind      text NOT NULL CHECK (kind IN ('replica', 'tier', 'region', 'pooler')),
    server    name,                        -- postgres_fdw foreign server (replica/tier/region)
    conninfo  text,                        -- pooler only; never holds a password (password file)
    labels    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(labels) = 'object'),
    added_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'pooler') = (conninfo IS NOT NULL)),
    CHECK ((kind = 'pooler') = (server IS NULL))
);
COMMENT ON TABLE @extschema@.capacity_fleet_member IS
    'Fleet members watched by the hub.  name is the member label of their samples; server is a postgres_fdw '
    'foreign server (credentials in its user mapping), conninfo a PgBouncer admin console (no password: password file). '
    'labels: tier {"tenants": [...]}, region {"region": "eu"}, pooler optionally {"role_of_pool": {...}}.';
-- dumped (the user's rows): registered in 80_dump.sql, in update order

CREATE FUNCTION @extschema@.capacity_fleet_check(name text, kind text, target text)
RETURNS jsonb
LANGUAGE c STRICT VOLATILE
AS 'MODULE_PATHNAME', 'capacity_fleet_check';
COMMENT ON FUNCTION @extschema@.capacity_fleet_check(text, text, text) IS
    'Connects to a prospective member within matter_capacity.fleet_timeout and raises if it cannot be one '
    '(unknown server 42704, no user mapping 42704, unreachable 08001, this very database 42P17, '
    'a pooler that is not PgBouncer 42809, a password in a pooler conninfo 22023, a connection postgres_fdw''s password '
    'rule refuses 42501: no password in the mapping, or the member did not ask for it, unless the server''s owner and '
    'the extension owner are superusers or the mapping says password_required ''false'').  Returns its version and role.';

CREATE FUNCTION @extschema@.capacity_fleet_check_target(name text, kind text, target text)
RETURNS void
LANGUAGE c CALLED ON NULL INPUT IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'capacity_fleet_check_target';
COMMENT ON FUNCTION @extschema@.capacity_fleet_check_target(text, text, text) IS
    'Refuses (22023) a fleet target that carries a password (any kind), a connection string that does not parse, '
    'or a connection string where a postgres_fdw server name is expected, without echoing it; these errors keep the '
    'statement (which holds the password) out of the server log.  capacity_fleet_add calls it before anything else.';

CREATE FUNCTION @extschema@.capacity_fleet_add(name text, kind text, target text, labels jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    other text;
BEGIN
    -- first: any later error would write the statement, password and all, to the server log
    PERFORM @extschema@.capacity_fleet_check_target(name, kind, target);
    -- the poll connects with the extension owner's user mappings: only that
    -- role (or a superuser) registers what it will connect to
    IF NOT pg_catalog.has_table_privilege('@extschema@.capacity_fleet_member', 'SELECT, INSERT')
       OR NOT pg_catalog.has_function_privilege('@extschema@.capacity_fleet_check(text, text, text)', 'EXECUTE') THEN
        RAISE EXCEPTION 'matter_capacity: role % may not register fleet members: capacity_fleet_add also needs SELECT and INSERT on capacity_fleet_member and EXECUTE on capacity_fleet_check', current_user
            USING ERRCODE = '42501',
                  HINT = 'Register members as the extension owner: the poll connects to them with its user mappings, '
                         'so granting this lets a role choose servers the owner connects to.';
    END IF;
    PERFORM @extschema@.capacity_refuse_in_recovery('register a fleet member');
    IF name IS NULL OR name !~ '^[A-Za-z0-9_.-]{1,63}$' THEN
        -- hostile input is not echoed in full: 63 characters at most
        RAISE EXCEPTION 'matter_capacity: fleet member name % is not valid',
            coalesce(quote_literal(CASE WHEN length(name) > 63 THEN left(name, 63) || '…' ELSE name END), 'NULL')
            USING ERRCODE = '22023', HINT = 'Use 1 to 63 letters, digits, _ . or -: it becomes the member label of samples.';
    END IF;
    IF kind IS NULL OR kind NOT IN ('replica', 'tier', 'region', 'pooler') THEN
        RAISE EXCEPTION 'matter_capacity: fleet member "%" has unknown kind %', name,
            coalesce(quote_literal(CASE WHEN length(kind) > 63 THEN left(kind, 63) || '…' ELSE kind END), 'NULL')
            USING ERRCODE = '22023', HINT = 'kind is one of replica, tier, region, pooler.';
    END IF;
    IF target IS NULL OR target = '' THEN
        RAISE EXCEPTION 'matter_capacity: fleet member "%" needs a target', name
            USING ERRCODE = '22023',
                  HINT = CASE WHEN kind = 'pooler' THEN 'Pass the PgBouncer admin conninfo, e.g. ''host=/run/pgbouncer port=6432 user=stats''.'
                              ELSE 'Pass the name of a postgres_fdw foreign server.' END;
    END IF;
    IF labels IS NULL OR jsonb_typeof(labels) <> 'object' THEN
        RAISE EXCEPTION 'matter_capacity: labels of fleet member "%" must be a JSON object', name
            USING ERRCODE = '22023', HINT = 'Pass ''{}'' or e.g. ''{"region": "eu"}''.';
    END IF;
    IF kind = 'region' AND jsonb_typeof(labels->'region') IS DISTINCT FROM 'string' THEN
        RAISE EXCEPTION 'matter_capacity: region member "%" needs labels {"region": "..."}', name
            USING ERRCODE = '22023', HINT = 'The region name is compared with the pushed values'' region label, e.g. ''{"region": "eu"}''.';
    END IF;
    IF kind = 'tier' AND jsonb_typeof(labels->'tenants') IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'matter_capacity: tier member "%" needs labels {"tenants": [...]}', name
            USING ERRCODE = '22023', HINT = 'List the tenants the tier serves, e.g. ''{"tenants": ["acme"]}''.';
    END IF;
    IF EXISTS (SELECT 1 FROM @extschema@.capacity_fleet_member m WHERE m.name = capacity_fleet_add.name) THEN
        RAISE EXCEPTION 'matter_capacity: fleet member "%" already exists', name
            USING ERRCODE = '42710', HINT = 'Remove it first with capacity_fleet_remove(name).';
    END IF;
    -- one server, one member: two names would count its series twice
    SELECT m.name INTO other FROM @extschema@.capacity_fleet_member m
     WHERE capacity_fleet_add.kind <> 'pooler' AND m.server::text = target;
    IF FOUND THEN
        RAISE EXCEPTION 'matter_capacity: foreign server "%" is already fleet member "%"', target, other
            USING ERRCODE = '42710', HINT = 'One member per server: its samples would be counted twice.  Use that member, or remove it first.';
    END IF;
    -- raises when the member cannot be one; nothing is registered then
    PERFORM @extschema@.capacity_fleet_check(name, kind, target);
    INSERT INTO @extschema@.capacity_fleet_member (name, kind, server, conninfo, labels)
    VALUES (name, kind,
            CASE WHEN kind <> 'pooler' THEN target END,
            CASE WHEN kind = 'pooler' THEN target END,
            labels);
END
$$;
COMMENT ON FUNCTION @extschema@.capacity_fleet_add(text, text, text, jsonb) IS
    'Registers a fleet member after connecting to it (within matter_capacity.fleet_timeout).  kind: replica | tier | '
    'region | pooler; target: a postgres_fdw foreign server name (credentials in its user mapping for the extension '
    'owner), or for a pooler a PgBouncer admin conninfo without password.  labels: region {"region": ...}, tier '
    '{"tenants": [...]}.  Errors (nothing registered): 22023 bad name/kind/labels or a connection string where a server '
    'name is expected, 42710 the name exists or the server is already another member, 42501 the role may not write '
    'the registry (run it as the extension owner), and those of capacity_fleet_check_target and capacity_fleet_check.';

-- capacity_fleet_remove(name) is defined in 49_tenant_moves.sql: removing a
-- member must refuse while tenant moves to it are open, and a piece never
-- refers to an object a later piece defines (capacity_tenant_move).

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_fleet_check(text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION @extschema@.capacity_fleet_add(text, text, text, jsonb) FROM PUBLIC;

-- What the fleet sampling records besides the hub's own indicators (which
-- it also records per member, labels {member}).
INSERT INTO @extschema@.capacity_indicator (name, unit, source, description, shipped) VALUES
 ('fleet_member_up',      'bool',    'builtin', 'Fleet member answered within matter_capacity.fleet_timeout (1) or not (0), labels {member}', true),
 ('fleet_rtt_ms',         'ms',      'builtin', 'Round trip of the fleet poll statement to a member, labels {member}', true),
 ('pool_clients_waiting', 'count',   'builtin', 'PgBouncer clients waiting for a server connection (cl_waiting), labels {member, pool, database, user}', true),
 ('pool_maxwait_seconds', 'seconds', 'builtin', 'PgBouncer: age of the oldest waiting client (maxwait + maxwait_us), labels {member, pool, database, user}', true);

-- One row per member, polled now; SECURITY DEFINER so that the owner's
-- user mappings are used whoever reads the view (they never see them).
CREATE FUNCTION @extschema@.capacity_fleet_poll(
    member text DEFAULT NULL,
    OUT name text, OUT kind text, OUT labels jsonb, OUT reachable boolean, OUT error text,
    OUT polled_at timestamptz, OUT connect_ms double precision, OUT rtt_ms double precision,
    OUT server_version text, OUT role text, OUT stage integer, OUT recommended_stage integer,
    OUT decision text, OUT read_qps double precision, OUT write_qps double precision,
    OUT read_p99_ms double precision, OUT write_p99_ms double precision,
    OUT cpu_utilization double precision, OUT member_sampled_at timestamptz,
    OUT replica_lag_seconds double precision, OUT connections integer,
    OUT connections_utilization double precision, OUT pool_utilization double precision,
    OUT pool_clients_waiting integer, OUT pool_maxwait_seconds double precision,
    OUT pools jsonb, OUT database_bytes bigint, OUT largest_tables jsonb)
RETURNS SETOF record
LANGUAGE c CALLED ON NULL INPUT VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'capacity_fleet_poll';
COMMENT ON FUNCTION @extschema@.capacity_fleet_poll(text) IS
    'Polls every fleet member (or just the one named by member) concurrently, each within matter_capacity.fleet_timeout, as the extension owner; '
    'an unreachable or slow member is a row with reachable false and error set; a member not registered is 42704.  Read it through capacity_fleet.';

CREATE VIEW @extschema@.capacity_fleet AS
SELECT p.name, p.kind, p.labels, p.reachable, p.error,
       CASE WHEN p.reachable THEN p.polled_at
            ELSE (SELECT l.sampled_at FROM @extschema@.capacity_latest_sample l
                   WHERE l.indicator = 'fleet_rtt_ms' AND l.labels = jsonb_build_object('member', p.name)) END AS last_seen,
       p.rtt_ms, p.connect_ms, p.server_version, p.role, p.stage, p.recommended_stage, p.decision,
       p.read_qps, p.write_qps, p.read_p99_ms, p.write_p99_ms, p.cpu_utilization,
       p.replica_lag_seconds, p.connections, p.connections_utilization,
       p.pool_utilization, p.pool_clients_waiting, p.pool_maxwait_seconds, p.pools,
       p.database_bytes, p.largest_tables,
       p.polled_at AS live_figures_at,
       p.member_sampled_at AS member_figures_at
  FROM @extschema@.capacity_fleet_poll(NULL) p;
COMMENT ON VIEW @extschema@.capacity_fleet IS
    'One row per fleet member, polled now (concurrently, each within matter_capacity.fleet_timeout): reachable, '
    'last_seen, round trip, version, primary/standby/pooler, its own stage and decision and newest read/write QPS, p99 '
    'and CPU where it runs matter_capacity (as of member_figures_at), replica lag, connections, PgBouncer pools '
    '(utilisation % = (sv_active+sv_used+sv_tested+sv_login)/pool_size), database bytes, largest tables (live, as of '
    'live_figures_at).  Never an error for an unreachable member.  docs/fleet.md.';

REVOKE EXECUTE ON FUNCTION @extschema@.capacity_fleet_poll(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @extschema@.capacity_fleet_poll(text) TO pg_monitor;
GRANT SELECT ON @extschema@.capacity_fleet TO pg_monitor;
