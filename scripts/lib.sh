# scripts/lib.sh — helpers shared by the demo, the test runner and the
# integration tests: throwaway PostgreSQL clusters run as an unprivileged
# user (initdb refuses root), reachable only through a Unix socket.
#
# Usage: . scripts/lib.sh; cluster_start NAME PORT [extra postgresql.conf lines]

MC_ROOT=${MC_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
MC_RUN=${MC_RUN:-/tmp/matter_capacity_run}
PGBIN=${PGBIN:-$(pg_config --bindir)}
MC_APT_PACKAGES="postgresql-15 postgresql-server-dev-15 postgresql-15-partman postgresql-15-pgtap postgresql-15-cron libtap-parser-sourcehandler-pgtap-perl build-essential faketime chromium pgbouncer"

# The OS user that runs servers: postgres when we are root, else ourselves.
if [ "$(id -u)" = 0 ]; then MC_OSUSER=postgres; else MC_OSUSER=$(id -un); fi

as_server_user() {
    if [ "$(id -u)" = 0 ]; then runuser -u "$MC_OSUSER" -- "$@"; else "$@"; fi
}

# Install what is missing (Debian, as root); a no-op when all is there.
install_dependencies() {
    local missing=""
    for p in $MC_APT_PACKAGES; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "missing packages:$missing (run as root to install them)" >&2
        return 1
    fi
    echo "installing:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
}

build_and_install() {
    (cd "$MC_ROOT" && make -s clean >/dev/null 2>&1; make -s && make -s install) >/dev/null
}

cluster_dir() { echo "$MC_RUN/$1"; }

# cluster_start NAME PORT [conf lines...]: fresh cluster, started.
cluster_start() {
    local name=$1 port=$2; shift 2
    local dir; dir=$(cluster_dir "$name")
    cluster_stop "$name" >/dev/null 2>&1 || true
    rm -rf "$dir"
    mkdir -p "$dir"
    chown "$MC_OSUSER" "$MC_RUN" "$dir" 2>/dev/null || true
    chmod 755 "$MC_RUN"
    as_server_user "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust --no-sync >/dev/null
    {
        echo "port = $port"
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$dir'"
        echo "fsync = off"
        echo "shared_preload_libraries = 'pg_cron'"
        echo "cron.database_name = 'postgres'"
        echo "cron.host = '$dir'"
        echo "max_wal_senders = 10"
        echo "wal_level = logical"
        echo "log_min_messages = warning"
        for line in "$@"; do echo "$line"; done
    } >> "$dir/data/postgresql.conf"
    echo "local replication all trust" >> "$dir/data/pg_hba.conf"
    as_server_user "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
}

cluster_stop() {
    local dir; dir=$(cluster_dir "$1")
    [ -d "$dir/data" ] && as_server_user "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1
    return 0
}

# cluster_env NAME PORT: export PGHOST/PGPORT/PGUSER for clients.
cluster_env() {
    export PGHOST; PGHOST=$(cluster_dir "$1")
    export PGPORT=$2 PGUSER=postgres
}
