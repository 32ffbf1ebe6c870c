#!/usr/bin/env bash
# The fleet on real servers: a hub (primary), a streaming standby made with
# pg_basebackup, a second cluster as region eu (running matter_capacity
# itself) and PgBouncer in front of the hub.  The fleet role logs in with
# SCRAM passwords everywhere, so the check that its password shows nowhere
# (views, errors, server and pooler logs) is a real one.
#   - bad input is refused with its SQLSTATE and registers nothing;
#   - pgbench through PgBouncer (session pooling, 6 clients on a pool of 4)
#     keeps the pool at 100 % while the hub samples at pinned times over an
#     hour: the pool_utilization trigger fires on that pool;
#   - the eu member's own read p99 becomes region_p99_ms {region: eu} and,
#     against pushed US values, fires the non-US region comparison;
#   - a member held up by a lock (at connect, or in its statement, which is
#     then cancelled on the member) is a row saying so within
#     matter_capacity.fleet_timeout (lock-bound); a stopped one is a row
#     saying so; the others are sampled;
#   - the background worker's samplings record the members too.
# Prints TAP lines.
set -u
. "$(dirname "$0")/../../scripts/lib.sh"
P=55471; S=55472; E=55473; B=55474
PW='Fl33t-pw-9c1e7b'                 # the fleet role's password: must show nowhere
HUB=$(cluster_dir fl_hub); SDIR=$(cluster_dir fl_standby); EU=$(cluster_dir fl_eu); PGB=$MC_RUN/fl_pgbouncer
ERRS=$MC_RUN/fl_errors.txt
ok() { if [ "$1" = 0 ]; then echo "ok - $2"; else echo "not ok - $2"; fi; }
hq() { psql -X -q -At -h "$HUB" -p $P -U postgres -d postgres "$@" 2>>"$ERRS"; }
eq() { psql -X -q -At -h "$EU" -p $E -U postgres -d postgres "$@" 2>>"$ERRS"; }
wait_for() {  # wait_for SECONDS 'CONDITION'
    local t=$1 cond=$2
    for _ in $(seq 1 $((t * 4))); do eval "$cond" >/dev/null 2>&1 && return 0; sleep 0.25; done
    return 1
}
# sqlstate_of SQL: the SQLSTATE the statement fails with on the hub (VERBOSITY verbose)
sqlstate_of() {
    psql -X -q -At -h "$HUB" -p $P -U postgres -d postgres -v VERBOSITY=verbose -c "$1" 2>&1 >/dev/null \
        | tee -a "$ERRS" | sed -nE 's/^ERROR: +([0-9A-Z]{5}):.*/\1/p' | head -1
}
PGBENCH_PID=
cleanup() {
    [ -n "$PGBENCH_PID" ] && kill "$PGBENCH_PID" 2>/dev/null
    [ -f "$PGB/pgbouncer.pid" ] && kill "$(cat "$PGB/pgbouncer.pid")" 2>/dev/null
    cluster_stop fl_standby; cluster_stop fl_eu; cluster_stop fl_hub
    rm -f "$MC_RUN/fl_lock.fifo"
}
trap cleanup EXIT
: > "$ERRS"

# scram for the fleet role (and pgbench's bench role) on every server
scram_hba() { sed -i '1i local all fleet,bench scram-sha-256' "$1/data/pg_hba.conf"; }
# a generous member timeout, so a busy machine never makes a member late;
# the timeout itself is tested with a lock and its own, shorter setting
cluster_start fl_hub $P "password_encryption = 'scram-sha-256'" "matter_capacity.fleet_timeout = 30000"
cluster_start fl_eu $E "shared_preload_libraries = 'matter_capacity'" "matter_capacity.database = 'postgres'" \
    "matter_capacity.sample_interval = 86400" "matter_capacity.rollover_interval = 0"
scram_hba "$HUB"; scram_hba "$EU"
hq -c "SELECT pg_reload_conf()" >/dev/null; eq -c "SELECT pg_reload_conf()" >/dev/null
for qf in hq eq; do
    $qf -c "SET log_statement = 'none'" -c "CREATE ROLE fleet LOGIN PASSWORD '$PW' IN ROLE pg_monitor" >/dev/null
done
eq -c "CREATE EXTENSION matter_capacity" >/dev/null

# the standby, streaming from the hub (the fleet role comes with it)
mkdir -p "$SDIR"; rm -rf "$SDIR/data"; chown "$MC_OSUSER" "$SDIR" 2>/dev/null || true
as_server_user "$PGBIN/pg_basebackup" -h "$HUB" -p $P -U postgres -D "$SDIR/data" -R -X stream -c fast >/dev/null 2>&1
sed -i "s/^port = .*/port = $S/; s|^unix_socket_directories = .*|unix_socket_directories = '$SDIR'|" "$SDIR/data/postgresql.conf"
as_server_user "$PGBIN/pg_ctl" -D "$SDIR/data" -l "$SDIR/server.log" -w start >/dev/null
wait_for 20 '[ "$(psql -X -At -h "$SDIR" -p $S -U postgres -d postgres -c "SELECT pg_is_in_recovery()")" = t ]'
ok $? "streaming standby made with pg_basebackup is up"

# PgBouncer in front of the hub: database app, a pool of 4 server connections
# (session pooling: a connected client holds its server connection); the
# fleet role reads the admin console as a stats user
mkdir -p "$PGB"; rm -f "$PGB"/*
cat > "$PGB/pgbouncer.ini" <<EOF
[databases]
app = host=$HUB port=$P dbname=postgres user=postgres pool_size=4
[pgbouncer]
listen_addr =
listen_port = $B
unix_socket_dir = $PGB
auth_type = scram-sha-256
auth_file = $PGB/userlist.txt
stats_users = fleet
pool_mode = session
max_client_conn = 50
logfile = $PGB/pgbouncer.log
pidfile = $PGB/pgbouncer.pid
EOF
printf '"fleet" "%s"\n"bench" "bench-pw"\n' "$PW" > "$PGB/userlist.txt"
# the hub's server OS user reads the pooler password from a password file
printf '*:%s:pgbouncer:fleet:%s\n' $B "$PW" > "$PGB/hub.pgpass"
chown -R "$MC_OSUSER" "$PGB" 2>/dev/null || true
chmod 600 "$PGB/userlist.txt" "$PGB/hub.pgpass"
as_server_user pgbouncer -d -q "$PGB/pgbouncer.ini"
wait_for 10 '[ -S "$PGB/.s.PGSQL.$B" ]'; ok $? "pgbouncer $(pgbouncer --version | head -1 | cut -d" " -f2) runs in front of the hub"

# the hub: postgres_fdw servers and user mappings (the password lives there only)
hq <<SQL >/dev/null
CREATE EXTENSION matter_capacity;
CREATE EXTENSION postgres_fdw;
CREATE SERVER fl_standby FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$SDIR', port '$S', dbname 'postgres');
CREATE SERVER fl_eu FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$EU', port '$E', dbname 'postgres');
CREATE SERVER fl_self FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$HUB', port '$P', dbname 'postgres');
CREATE SERVER fl_nowhere FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$HUB', port '1', dbname 'postgres');
SET log_statement = 'none';
CREATE USER MAPPING FOR postgres SERVER fl_standby OPTIONS (user 'fleet', password '$PW');
CREATE USER MAPPING FOR postgres SERVER fl_eu OPTIONS (user 'fleet', password '$PW');
CREATE USER MAPPING FOR postgres SERVER fl_self OPTIONS (user 'fleet', password '$PW');
CREATE USER MAPPING FOR postgres SERVER fl_nowhere OPTIONS (user 'fleet', password '$PW');
CREATE ROLE fl_monitor LOGIN IN ROLE pg_monitor;
SQL

# ---- bad input: a clear error, nothing registered
st=$(sqlstate_of "SELECT capacity_fleet_add('x', 'cluster', 'fl_eu')")
[ "$st" = 22023 ]; ok $? "unknown kind refused with 22023 ($st)"
st=$(sqlstate_of "SELECT capacity_fleet_add('x', 'replica', 'fl_nosuch')")
[ "$st" = 42704 ]; ok $? "unknown foreign server refused with 42704 ($st)"
st=$(sqlstate_of "SELECT capacity_fleet_add('x', 'replica', 'fl_nowhere')")
[ "$st" = 08001 ]; ok $? "unreachable member refused with 08001 ($st)"
st=$(sqlstate_of "SELECT capacity_fleet_add('x', 'replica', 'fl_self')")
[ "$st" = 42P17 ]; ok $? "this very database refused with 42P17 ($st)"
st=$(sqlstate_of "SELECT capacity_fleet_add('x', 'pooler', 'host=$HUB port=$P user=postgres')")
[ "$st" = 42809 ]; ok $? "a pooler conninfo that reaches PostgreSQL, not PgBouncer, refused with 42809 ($st)"
st=$(sqlstate_of "SELECT capacity_fleet_add('x', 'pooler', 'host=$PGB port=$B user=fleet password=typed-in-here')")
[ "$st" = 22023 ]; ok $? "a password in a pooler conninfo refused with 22023 ($st)"
st=$(sqlstate_of "SELECT capacity_fleet_add('x', 'pooler', 'host=$PGB port=$B user=fleet sslpassword=KeyPw_31')")
[ "$st" = 22023 ] && ! grep -q KeyPw_31 "$HUB/server.log"
ok $? "an sslpassword (any option libpq hides) in a pooler conninfo refused with 22023, kept out of the log ($st, review 4 F5)"
st=$(sqlstate_of "SELECT capacity_fleet_add('x', 'region', 'fl_eu', '{}')")
[ "$st" = 22023 ]; ok $? "a region member without its region label refused with 22023 ($st)"
hint=$(psql -X -q -At -h "$HUB" -p $P -U postgres -v VERBOSITY=verbose -c "SELECT capacity_fleet_add('x', 'replica', 'fl_self')" 2>&1 | grep -c '^HINT:')
[ "$hint" = 1 ]; ok $? "refusals carry a HINT"
st=$(psql -X -q -At -h "$HUB" -p $P -U fl_monitor -d postgres -v VERBOSITY=verbose \
        -c "SELECT capacity_fleet_add('x', 'replica', 'fl_eu')" 2>&1 | tee -a "$ERRS" | sed -nE 's/^ERROR: +([0-9A-Z]{5}):.*/\1/p')
[ "$st" = 42501 ]; ok $? "a pg_monitor role cannot register members (42501: only the extension owner manages them)"
# a connection string (with a password) where a server name is expected:
# refused without echoing it (ERROR, DETAIL, HINT)
CI="host=$HUB port=$P user=fleet password=ReplPw_14"
out=$(psql -X -q -At -h "$HUB" -p $P -U postgres -d postgres -v VERBOSITY=verbose -c "SELECT capacity_fleet_add('p14', 'replica', '$CI')" 2>&1)
echo "$out" >> "$ERRS"
echo "# $(echo "$out" | head -1)"
case "$out" in *"22023: matter_capacity: kind replica takes a postgres_fdw server name, not a connection string"*) r=0 ;; *) r=1 ;; esac
ok $r "a connection string given as a replica's server is refused with 22023"
! echo "$out" | grep -q -e ReplPw_14 -e "user=fleet"; ok $? "that refusal echoes neither the password nor the connection string"
CI2="postgresql://fleet:ReplPw_14@localhost/postgres"
out=$(psql -X -q -At -h "$HUB" -p $P -U postgres -d postgres -v VERBOSITY=verbose -c "SELECT capacity_fleet_check('p14', 'tier', '$CI2')" 2>&1)
case "$out" in *22023*) ! echo "$out" | grep -q ReplPw_14 ;; *) false ;; esac
ok $? "a URI with a password is refused too (capacity_fleet_check), without echoing it"
# a 5000-character name is not echoed in full
LONG=$(printf 'n%.0s' $(seq 1 5000))
out=$(psql -X -q -At -h "$HUB" -p $P -U postgres -d postgres -c "SELECT capacity_fleet_add('$LONG-', 'replica', 'fl_eu')" 2>&1 | head -1)
[ ${#out} -lt 200 ] && echo "$out" | grep -q "…"; ok $? "a 5000-character name is truncated in the error (${#out} characters)"
out=$(psql -X -q -At -h "$HUB" -p $P -U postgres -d postgres -c "SELECT capacity_fleet_check('$LONG', 'replica', 'fl_nosuch')" 2>&1 | head -1)
[ ${#out} -lt 250 ] && echo "$out" | grep -q "…"; ok $? "and in capacity_fleet_check's (${#out} characters)"
st=$(sqlstate_of "SELECT capacity_fleet_remove(NULL)")
[ "$st" = 22004 ]; ok $? "removing NULL is refused with 22004 ($st)"
[ "$(hq -c "SELECT count(*) FROM capacity_fleet_member")" = 0 ]; ok $? "nothing was registered by the refused calls"

# ---- refused passwords stay out of the server log (errhidestmt): the call
# that carries one is the one statement that must not be written to disk
st=$(sqlstate_of "SELECT capacity_fleet_add('x', 'cluster', 'host=$HUB password=KindPw_77')")
[ "$st" = 22023 ]; ok $? "a password-bearing target is refused before anything else (bad kind too) with 22023 ($st)"
st=$(sqlstate_of "SELECT capacity_fleet_add('x', 'replica', 'postgresql://fleet:UriPw_78@localhost/postgres')")
[ "$st" = 22023 ]; ok $? "a URI with a password as a replica's server is refused with 22023 ($st)"
grep -q "STATEMENT:  SELECT capacity_fleet_add('x', 'cluster', 'fl_eu')" "$HUB/server.log"
ok $? "the hub logs the statement of a failing call (log_min_error_statement), so the next check can fail"
found=$(grep -c -e typed-in-here -e ReplPw_14 -e KindPw_77 -e UriPw_78 "$HUB/server.log")
[ "$found" = 0 ]; ok $? "no refused password reached the hub's server log ($found lines)"

# ---- a role granted capacity_fleet_add is told why it still cannot register
hq -c "CREATE ROLE fl_granted LOGIN" -c "GRANT EXECUTE ON FUNCTION capacity_fleet_add(text, text, text, jsonb) TO fl_granted" >/dev/null
out=$(psql -X -q -At -h "$HUB" -p $P -U fl_granted -d postgres -v VERBOSITY=verbose -c "SELECT capacity_fleet_add('x', 'replica', 'fl_eu')" 2>&1)
echo "$out" >> "$ERRS"; echo "# $(echo "$out" | head -1)"
case "$out" in *'42501: matter_capacity: role fl_granted may not register fleet members: capacity_fleet_add also needs'*) r=0 ;; *) r=1 ;; esac
echo "$out" | grep -q '^HINT:  Register members as the extension owner'; ok $(( r + $? )) "a granted non-owner gets 42501 naming capacity_fleet_add, with a hint"
hq -c "DROP OWNED BY fl_granted" -c "DROP ROLE fl_granted" >/dev/null

# ---- the owner of a member's foreign server (not a superuser) re-points it
# after registration: at the hub as postgres, with startup options of its
# own and an operator of its own.  The poll runs as the extension owner.
hq <<SQL >/dev/null
SET log_statement = 'none';
CREATE ROLE hostile LOGIN;
GRANT USAGE ON FOREIGN DATA WRAPPER postgres_fdw TO hostile;
CREATE SCHEMA hostile AUTHORIZATION hostile;
SET ROLE hostile;
CREATE SERVER fl_hostile FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$EU', port '$E', dbname 'postgres');
CREATE USER MAPPING FOR PUBLIC SERVER fl_hostile OPTIONS (user 'fleet', password '$PW');
CREATE FUNCTION hostile.pwnt(text, text) RETURNS boolean LANGUAGE plpgsql AS \$f\$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) current_user) THEN
    EXECUTE 'ALTER ROLE hostile SUPERUSER';
  END IF;
  RETURN pg_catalog.texteq(\$1, \$2);
END \$f\$;
CREATE OPERATOR hostile.= (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile.pwnt);
RESET ROLE;
SQL
# a newest value in the hub's capacity_latest: the member statement compares
# its indicator (text = text) there, where the operator would be resolved
hq -c "INSERT INTO capacity_latest_sample VALUES ('read_qps', '{}', '2026-01-01', 1)" \
   -c "SELECT capacity_fleet_add('hostile', 'replica', 'fl_hostile')" >/dev/null
[ "$(hq -c "SELECT reachable FROM capacity_fleet_poll('hostile')")" = t ]
ok $? "a server owned by a non-superuser, with a password in its mapping, is registered and polled"
hpoll() { hq -c "SELECT reachable || ':' || coalesce(error, '') FROM capacity_fleet_poll('hostile')"; }
hsuper() { hq -c "SELECT rolsuper FROM pg_roles WHERE rolname = 'hostile'"; }
hq -c "SET ROLE hostile" \
   -c "ALTER SERVER fl_hostile OPTIONS (SET host '$HUB', SET port '$P', ADD options '-c search_path=hostile,pg_catalog')" \
   -c "ALTER USER MAPPING FOR PUBLIC SERVER fl_hostile OPTIONS (SET user 'postgres', DROP password)" >/dev/null
r1=$(hpoll); echo "# re-pointed at the hub as postgres without password: $r1"
case "$r1" in "false:the user mapping on server \"fl_hostile\" has no password, which is required because the server's owner is not a superuser"*) r=0 ;; *) r=1 ;; esac
ok $r "re-pointed at the hub as postgres without a password: refused at the poll, not connected"
hq -c "SET ROLE hostile" -c "ALTER USER MAPPING FOR PUBLIC SERVER fl_hostile OPTIONS (ADD password 'not-asked-for')" >/dev/null
r2=$(hpoll); echo "# with a password the hub never asks for (trust): $r2"
case "$r2" in "false:the connection did not use the user mapping's password"*) r=0 ;; *) r=1 ;; esac
ok $r "with a password the peer never asks for (trust as postgres): the connection is dropped unused"
[ "$(hsuper)" = f ]; ok $? "the server's owner did not become superuser through the poll"
st=$(psql -X -q -At -h "$HUB" -p $P -U hostile -d postgres -v VERBOSITY=verbose \
        -c "ALTER USER MAPPING FOR PUBLIC SERVER fl_hostile OPTIONS (ADD password_required 'false')" 2>&1 | sed -nE 's/^ERROR: +([0-9A-Z]{5}):.*/\1/p')
[ "$st" = 42501 ]; ok $? "only a superuser may say password_required 'false' (postgres_fdw refuses the server's owner: $st)"
# a superuser did say so: honoured, as in postgres_fdw; the server's startup
# options are still not passed and the poll sees it reached the hub itself
hq -c "ALTER USER MAPPING FOR PUBLIC SERVER fl_hostile OPTIONS (ADD password_required 'false')" >/dev/null
r3=$(hpoll); echo "# password_required false (set by a superuser): $r3"
[ "$r3" = "false:the server now points at this very database (the hub): nothing recorded" ]
ok $? "password_required 'false' set by a superuser is honoured; the poll re-checks that the server is not the hub itself"
[ "$(hsuper)" = f ]; ok $? "and the server owner's operator did not run as postgres (search_path pinned, operators qualified)"
# the member's user with a password, a superuser-only setting in the server's
# options: were they passed, the login would fail (permission denied)
hq -c "SET log_statement = 'none'" \
   -c "ALTER USER MAPPING FOR PUBLIC SERVER fl_hostile OPTIONS (DROP password_required, SET user 'fleet', SET password '$PW')" \
   -c "SET ROLE hostile" -c "ALTER SERVER fl_hostile OPTIONS (SET options '-c log_min_messages=debug5')" >/dev/null
r4=$(hpoll); echo "# fleet's own password, options with a superuser-only setting: $r4"
[ "$r4" = "false:the server now points at this very database (the hub): nothing recorded" ]
ok $? "the server's 'options' are never passed to the member"
# on the member: a role search_path that puts the member user's operator first
eq <<'SQL' >/dev/null
CREATE SCHEMA hostile;
GRANT USAGE ON SCHEMA hostile TO PUBLIC;
CREATE FUNCTION hostile.eq(text, text) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN RAISE EXCEPTION 'the member user''s operator ran'; END $f$;
CREATE OPERATOR hostile.= (LEFTARG = text, RIGHTARG = text, FUNCTION = hostile.eq);
ALTER ROLE fleet SET search_path = hostile, pg_catalog;
INSERT INTO capacity_latest_sample VALUES ('read_qps', '{}', '2026-01-01', 1) ON CONFLICT DO NOTHING;
SQL
hq -c "SET ROLE hostile" -c "ALTER SERVER fl_hostile OPTIONS (SET host '$EU', SET port '$E', DROP options)" >/dev/null
r5=$(hq -c "SELECT reachable || ':' || coalesce(error, '') || ':' || (stage IS NOT NULL) FROM capacity_fleet_poll('hostile')")
echo "# eu with fleet's search_path = hostile, pg_catalog: $r5"
[ "$r5" = "true::true" ]; ok $? "the member's session is pinned (search_path pg_catalog): no operator of a member user runs"
eq -c "ALTER ROLE fleet RESET search_path" -c "DROP SCHEMA hostile CASCADE" \
   -c "DELETE FROM capacity_latest_sample WHERE sampled_at = '2026-01-01'" >/dev/null
hq -c "DELETE FROM capacity_latest_sample WHERE sampled_at = '2026-01-01'" -c "SELECT capacity_fleet_remove('hostile')" -c "DROP SERVER fl_hostile CASCADE" -c "DROP SCHEMA hostile CASCADE" \
   -c "REVOKE USAGE ON FOREIGN DATA WRAPPER postgres_fdw FROM hostile" -c "DROP ROLE hostile" >/dev/null
[ "$(hq -c "SELECT count(*) FROM capacity_fleet_member")" = 0 ]; ok $? "the hostile member is gone again"

# ---- the members
hq -c "SELECT capacity_fleet_add('standby', 'replica', 'fl_standby')" \
   -c "SELECT capacity_fleet_add('eu', 'region', 'fl_eu', '{\"region\": \"eu\"}')" \
   -c "SELECT capacity_fleet_add('pgb', 'pooler', 'host=$PGB port=$B user=fleet passfile=$PGB/hub.pgpass')" >/dev/null
[ "$(hq -c "SELECT string_agg(name || ':' || kind, ' ' ORDER BY name) FROM capacity_fleet_member")" = "eu:region pgb:pooler standby:replica" ]
ok $? "standby, eu and pgbouncer registered"
out=$(psql -X -q -At -h "$HUB" -p $P -U postgres -d postgres -v VERBOSITY=verbose -c "SELECT capacity_fleet_add('standby2', 'replica', 'fl_standby')" 2>&1)
echo "$out" >> "$ERRS"
case "$out" in *'42710: matter_capacity: foreign server "fl_standby" is already fleet member "standby"'*) r=0 ;; *) r=1 ;; esac
ok $r "the same server under a second name is refused with 42710, naming the member it is"
# a member with a tenant move to it, or tenants living on it, stays
hq -c "INSERT INTO capacity_tenant_move (tenant, member, name, state) VALUES ('acme', 'standby', 'mc_move_x', 'frozen')" >/dev/null
out=$(psql -X -q -At -h "$HUB" -p $P -U postgres -d postgres -v VERBOSITY=verbose -c "SELECT capacity_fleet_remove('standby')" 2>&1)
echo "$out" >> "$ERRS"; echo "# $(echo "$out" | head -1)"
case "$out" in *'55000: matter_capacity: fleet member "standby" is in use: tenant moves to it: acme (frozen)'*) r=0 ;; *) r=1 ;; esac
echo "$out" | grep -q '^HINT:.*capacity_tenant_move_abort'; ok $(( r + $? )) "removing a member with a move in progress is refused with 55000 naming the move, with a hint"
hq -c "UPDATE capacity_tenant_move SET state = 'cleaned'" -c "INSERT INTO capacity_tenant_tier (tenant, tier, member) VALUES ('acme', 'dedicated', 'standby')" >/dev/null
st=$(sqlstate_of "SELECT capacity_fleet_remove('standby')")
[ "$st" = 55000 ]; ok $? "and so is removing a member tenants live on (capacity_tenant_tier) ($st)"
hq -c "DELETE FROM capacity_tenant_tier" -c "DELETE FROM capacity_tenant_move" >/dev/null
[ "$(hq -c "SELECT count(*) FROM capacity_fleet_member WHERE name = 'standby'")" = 1 ]; ok $? "the refused removals left the member registered"

# the eu member measures its own latency: two samplings around known statements
eq -c "SELECT capacity_sample_now()" >/dev/null
for _ in $(seq 20); do echo "SELECT pg_sleep(0.01);"; done | eq >/dev/null
eq -c "SELECT capacity_sample_now()" >/dev/null
EU_P99=$(eq -c "SELECT value FROM capacity_latest WHERE indicator = 'read_latency_p99_ms' AND labels = '{}'")
echo "# eu's own read p99: $EU_P99 ms"

view=$(psql -X -q -At -h "$HUB" -p $P -U fl_monitor -d postgres \
        -c "SELECT name, reachable, role, server_version IS NOT NULL, rtt_ms > 0, stage IS NOT NULL, decision IS NOT NULL FROM capacity_fleet ORDER BY name" 2>>"$ERRS")
echo "$view" | sed 's/^/# /'
[ "$view" = "eu|t|primary|t|t|t|t
pgb|t|pooler|t|t|f|f
standby|t|standby|t|t|t|t" ]
ok $? "pg_monitor reads capacity_fleet: every member reachable, its role and version; eu and the standby (matter_capacity replicated) show their own stage and decision"
[ "$(hq -c "SELECT read_p99_ms = $EU_P99 FROM capacity_fleet WHERE name = 'eu'")" = t ]
ok $? "eu's row carries its own newest read p99"

# ---- load through PgBouncer: 6 clients on a pool of 4, held while the hub samples
psql -X -q -h "$HUB" -p $P -U postgres -d postgres -c "SET log_statement = 'none'" -c "CREATE ROLE bench LOGIN PASSWORD 'bench-pw'" >/dev/null
"$PGBIN/pgbench" -i -s 1 -q -h "$HUB" -p $P -U postgres postgres >/dev/null 2>&1
PGPASSWORD=bench-pw "$PGBIN/pgbench" -n -S -c 6 -T 600 -h "$PGB" -p $B -U bench app >/dev/null 2>&1 &
PGBENCH_PID=$!
pools() { PGPASSFILE=$PGB/hub.pgpass psql -X -q -At -h "$PGB" -p $B -U fleet -d pgbouncer -c "SHOW POOLS" 2>/dev/null; }
wait_for 30 '[ "$(pools | awk -F"|" '\''$1 == "app" { print $7 }'\'')" = 4 ]'
ok $? "pgbench holds all 4 server connections of pool app/postgres"
T0='2026-03-02 10:00:00+00'
# every 5 minutes over the hour (a window counts as covered when its first
# sample is within a tenth of it from its start)
for k in $(seq 0 12); do
    hq -c "SELECT capacity_sample_now(timestamptz '$T0' + $k * interval '5 minutes')" >/dev/null
    # the pushed US p99 (region comparison's reference) at the same times
    hq -c "SELECT capacity_record('region_p99_ms', 0.5, '{\"region\": \"us\"}', timestamptz '$T0' + $k * interval '5 minutes')" >/dev/null
done
hq -c "SELECT pools FROM capacity_fleet WHERE name = 'pgb'" | sed 's/^/# pools: /'
waiting=$(hq -c "SELECT pool_clients_waiting FROM capacity_fleet WHERE name = 'pgb'")
kill "$PGBENCH_PID" 2>/dev/null; wait "$PGBENCH_PID" 2>/dev/null; PGBENCH_PID=
[ "$waiting" = 2 ]; ok $? "the two clients beyond the pool wait (pool_clients_waiting $waiting)"
util=$(hq -c "SELECT string_agg(DISTINCT value::text, ',') FROM capacity_sample
               WHERE indicator = 'pool_utilization' AND labels = '{\"member\": \"pgb\", \"pool\": \"app/postgres\", \"database\": \"app\", \"user\": \"postgres\"}'")
[ "$util" = 100 ]; ok $? "pool_utilization{member pgb, pool app/postgres} sampled at 100 % each time ($util)"
fire=$(hq -c "SELECT status || ' ' || value FROM capacity_trigger_eval(timestamptz '$T0' + interval '1 hour', capacity_bindings())
               WHERE trigger_name = 'pool_utilization' AND labels @> '{\"member\": \"pgb\", \"pool\": \"app/postgres\"}'")
[ "$fire" = "firing 100" ]; ok $? "the pool trigger (> 80 % sustained 1 h) fires on the PgBouncer pool ($fire)"

# the region comparison from the eu member's own p99, against the pushed US values
eu_rec=$(hq -c "SELECT count(*) || ' ' || bool_and(value = $EU_P99) FROM capacity_sample
                 WHERE indicator = 'region_p99_ms' AND labels = '{\"region\": \"eu\", \"member\": \"eu\"}'")
[ "$eu_rec" = "13 true" ]; ok $? "each sampling recorded eu's own read p99 as region_p99_ms {region: eu} ($eu_rec)"
ratio=$(hq -c "SELECT status || ' ' || (round(value::numeric, 6) = round(($EU_P99 / 0.5)::numeric, 6))
                FROM capacity_trigger_eval(timestamptz '$T0' + interval '1 hour', capacity_bindings())
               WHERE trigger_name = 'non_us_region_p99'")
# eu's p99 is at least its 10 ms statements: far above 1.5 x 0.5 ms
[ "$ratio" = "firing true" ]; ok $? "non-US region p99 = eu member p99 / pushed US p99 ($ratio, eu p99 $EU_P99 ms over 0.5 ms)"
[ "$(hq -c "SELECT count(DISTINCT labels->>'member') FROM capacity_sample WHERE indicator = 'fleet_rtt_ms'")" = 3 ]
ok $? "fleet history: every member's figures recorded with a member label"
[ "$(hq -c "SELECT value FROM capacity_latest WHERE indicator = 'replica_lag_seconds' AND labels = '{\"member\": \"standby\"}'")" != "" ]
ok $? "the standby's replica lag is recorded under its member label"

# ---- a member's figures that are not finite numbers are dropped, never
# recorded (a NaN would breach every '>' threshold and break the review)
eq <<'SQL' >/dev/null
CREATE TABLE public.fl_keep AS SELECT * FROM capacity_latest_sample WHERE labels = '{}';
INSERT INTO capacity_latest_sample VALUES ('cpu_utilization', '{}', now(), 'NaN'), ('read_qps', '{}', now(), 'Infinity'),
   ('read_latency_p99_ms', '{}', now(), '-Infinity'), ('write_qps', '{}', now(), 1e308)
ON CONFLICT (indicator, labels) DO UPDATE SET value = EXCLUDED.value, sampled_at = now();
SQL
nan=$(hq -c "SELECT reachable || '|' || error || '|' || (cpu_utilization IS NULL) || (read_qps IS NULL) || (read_p99_ms IS NULL) || '|' || write_qps FROM capacity_fleet WHERE name = 'eu'")
echo "# eu with NaN/Infinity figures: $nan"
[ "$nan" = "true|figures that are not finite numbers were dropped, not recorded: read_qps = Infinity, read_latency_p99_ms = -Infinity, cpu_utilization = NaN|truetruetrue|1e+308" ]
ok $? "capacity_fleet reports eu's non-finite figures as dropped, naming them; the finite ones stay"
TN=$(hq -c "SELECT timestamptz '$T0' - interval '1 day'")
hq -c "SELECT capacity_sample_now('$TN')" >/dev/null
rec=$(hq -c "SELECT string_agg(indicator || '=' || value, ' ' ORDER BY indicator) FROM capacity_sample
              WHERE sampled_at = '$TN' AND labels = '{\"member\": \"eu\"}'
                AND indicator IN ('cpu_utilization', 'read_qps', 'read_latency_p99_ms', 'write_qps', 'fleet_member_up')")
echo "# recorded for eu at $TN: $rec"
[ "$rec" = "fleet_member_up=1 write_qps=1e+308" ]; ok $? "the sampling recorded eu's finite figures only"
[ "$(hq -c "SELECT count(*) FROM capacity_sample WHERE value IN ('NaN', 'Infinity', '-Infinity')") $(hq -c "SELECT count(*) FROM capacity_latest_sample WHERE value IN ('NaN', 'Infinity', '-Infinity')")" = "0 0" ]
ok $? "no NaN or infinity anywhere in the hub's history"
eq -c "DELETE FROM capacity_latest_sample WHERE labels = '{}'" -c "INSERT INTO capacity_latest_sample SELECT * FROM public.fl_keep" -c "DROP TABLE public.fl_keep" >/dev/null

# ---- a member held up by a lock: the view answers within the timeout.
# pg_database locked: eu cannot even finish a connection; pg_extension
# locked: the member's statement waits, and is cancelled on eu at the timeout.
fleet_backends() {  # eu's backends of the fleet poll that are still there
    psql -X -q -At -h "$EU" -p $E -U postgres -d postgres \
        -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'matter_capacity fleet' AND state = 'active'"
}
locked_view() {  # locked_view CATALOG: the view, with CATALOG locked on eu; sets slow, ms, left
    mkfifo "$MC_RUN/fl_lock.fifo" 2>/dev/null
    ( { echo "BEGIN; LOCK TABLE pg_catalog.$1 IN ACCESS EXCLUSIVE MODE; SELECT 'locked';"; cat "$MC_RUN/fl_lock.fifo"; echo "ROLLBACK;"; } \
        | psql -X -q -At -h "$EU" -p $E -U postgres -d postgres > "$MC_RUN/fl_lock.out" 2>&1 ) &
    local locker=$! start
    wait_for 10 'grep -q locked "$MC_RUN/fl_lock.out"'
    start=$(date +%s%N)
    slow=$(PGOPTIONS="-c matter_capacity.fleet_timeout=1500" hq -c "SELECT string_agg(name || ':' || reachable || ':' || coalesce(error, ''), ' ' ORDER BY name) FROM capacity_fleet")
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    # while the lock is still held (a new session can start unless pg_database is locked)
    # eu ends the statement itself (statement_timeout = fleet_timeout, sent in
    # the startup options): wait, bounded, for it (without that the statement
    # would wait for the lock, which is held until below)
    if [ "$1" = pg_database ]; then left=; else wait_for 10 '[ "$(fleet_backends)" = 0 ]'; left=$(fleet_backends); fi
    echo "done" > "$MC_RUN/fl_lock.fifo"; wait "$locker" 2>/dev/null; rm -f "$MC_RUN/fl_lock.fifo" "$MC_RUN/fl_lock.out"
    echo "# with eu's $1 locked: $slow ($ms ms; fleet statements left running on eu: $left)"
}
locked_view pg_database
[ "$slow" = "eu:false:could not connect within 1500 ms pgb:true: standby:true:" ]
ok $? "a member that cannot finish connecting (lock) is a row saying so; the others answer"
[ "$ms" -ge 1500 ] && [ "$ms" -lt 6000 ]; ok $? "the view answered after the 1500 ms timeout, not the lock's end ($ms ms)"
locked_view pg_extension
[ "$slow" = "eu:false:timed out after 1500 ms pgb:true: standby:true:" ]
ok $? "a member whose statement waits on a lock is a row that says it timed out; the others answer"
[ "$ms" -ge 1500 ] && [ "$ms" -lt 6000 ]; ok $? "the view answered after the 1500 ms timeout, not the lock's end ($ms ms)"
[ "$left" = 0 ]; ok $? "the late statement was ended on the member by its statement_timeout, not left waiting ($left left)"

# ---- a hostile member: answers the startup, then ignores queries and never
# closes a cancel request's connection.  The poll must come back at the
# timeout without sending a cancel (libpq < 17's PQcancel would wait forever).
FAKE=$MC_RUN/fl_fake; F=55475
mkdir -p "$FAKE"; chmod 777 "$FAKE"; : > "$FAKE/log"
python3 "$(dirname "$0")/fake_hung_member.py" "$FAKE" $F "$FAKE/log" & FAKE_PID=$!
wait_for 10 'grep -q listening "$FAKE/log"'
hq -c "CREATE SERVER fl_fake FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '$FAKE', port '$F', dbname 'postgres')" \
   -c "CREATE USER MAPPING FOR postgres SERVER fl_fake OPTIONS (user 'fleet')" \
   -c "INSERT INTO capacity_fleet_member (name, kind, server) VALUES ('fake', 'replica', 'fl_fake')" >/dev/null
hung=$(PGOPTIONS="-c matter_capacity.fleet_timeout=1500" timeout 60 \
       psql -X -q -At -h "$HUB" -p $P -U postgres -d postgres -c "SELECT name || ':' || reachable || ':' || error FROM capacity_fleet_poll('fake')" 2>>"$ERRS")
echo "# a member that never answers: $hung; it was sent: $(sort "$FAKE/log" | uniq -c | tr -s ' \n' ' ')"
[ "$hung" = "fake:false:timed out after 1500 ms" ]; ok $? "a member that ignores queries is a row that timed out, the poll does not hang"
! grep -q cancel "$FAKE/log"; ok $? "no cancel request was sent to it (the member's statement_timeout does that job)"
hq -c "DELETE FROM capacity_fleet_member WHERE name = 'fake'" >/dev/null
kill $FAKE_PID 2>/dev/null; wait $FAKE_PID 2>/dev/null

# ---- a member stopped: a row saying so, the others sampled
cluster_stop fl_eu
T7=$(hq -c "SELECT timestamptz '$T0' + interval '70 minutes'")
n=$(hq -c "SELECT capacity_sample_now('$T7')")
down=$(hq -c "SELECT string_agg(name || ':' || reachable, ' ' ORDER BY name) FROM capacity_fleet")
[ "$down" = "eu:false pgb:true standby:true" ]; ok $? "with eu stopped the view still answers, eu unreachable ($down)"
[ "$(hq -c "SELECT last_seen = timestamptz '$T0' + interval '60 minutes' FROM capacity_fleet WHERE name = 'eu'")" = t ]
ok $? "eu's last_seen is its last sampling that reached it"
up=$(hq -c "SELECT string_agg(labels->>'member' || '=' || value, ' ' ORDER BY labels->>'member') FROM capacity_sample
             WHERE indicator = 'fleet_member_up' AND sampled_at = '$T7'")
[ "$up" = "eu=0 pgb=1 standby=1" ]; ok $? "that sampling recorded eu down and sampled the others ($up)"

# ---- the background worker samples the fleet too (last: its real-time
# samplings would expire the pinned ones above)
as_server_user "$PGBIN/pg_ctl" -D "$HUB/data" -l "$HUB/server.log" -w restart \
    -o "-c shared_preload_libraries=matter_capacity -c matter_capacity.sample_interval=1 -c matter_capacity.rollover_interval=0" >/dev/null
worker_up() {
    hq -c "SELECT string_agg(labels->>'member' || '=' || value, ' ' ORDER BY labels->>'member') FROM capacity_sample
            WHERE indicator = 'fleet_member_up'
              AND sampled_at = (SELECT max(sampled_at) FROM capacity_sample WHERE indicator = 'fleet_member_up' AND sampled_at > '$T7')"
}
wait_for 30 '[ "$(worker_up)" = "eu=0 pgb=1 standby=1" ]'; ok $? "the worker's samplings record the members too ($(worker_up))"

# ---- the password shows nowhere
hq -c "SELECT * FROM capacity_fleet" -c "SELECT * FROM capacity_fleet_member" -c "SELECT * FROM capacity_latest" \
   -c "SELECT * FROM capacity_indicator_status" > "$MC_RUN/fl_views.txt"
psql -X -q -At -h "$HUB" -p $P -U fl_monitor -d postgres -c "SELECT * FROM pg_user_mappings" >> "$MC_RUN/fl_views.txt" 2>&1
hq -c "ALTER USER MAPPING FOR postgres SERVER fl_standby OPTIONS (SET password 'wrong-one')" >/dev/null
wrong=$(hq -c "SELECT error FROM capacity_fleet WHERE name = 'standby'")
echo "$wrong" >> "$MC_RUN/fl_views.txt"
echo "# with a wrong password: $wrong"
case "$wrong" in *"password authentication failed"*) r=0 ;; *) r=1 ;; esac
ok $r "a wrong password is reported as an authentication failure"
[ -s "$MC_RUN/fl_views.txt" ] && [ -s "$ERRS" ] && [ -s "$PGB/pgbouncer.log" ] && [ -s "$HUB/server.log" ]
ok $? "views, errors and logs were captured"
found=$(grep -l -F -- "$PW" "$MC_RUN/fl_views.txt" "$ERRS" "$HUB/server.log" "$SDIR/server.log" "$EU/server.log" "$PGB/pgbouncer.log" 2>/dev/null)
[ -z "$found" ]; ok $? "the fleet password appears in no view, error or server/pooler log${found:+ (found in $found)}"
