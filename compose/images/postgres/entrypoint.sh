#!/usr/bin/env bash
# Entrypoint of goodgo/postgres:15: the official postgres image's environment contract on
# Debian's PostgreSQL 15, so compose files written for `postgres:15` work unchanged.
#
#   POSTGRES_USER            superuser to create (default: postgres)
#   POSTGRES_PASSWORD        its password; required unless POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_DB              database to create (default: POSTGRES_USER)
#   POSTGRES_INITDB_ARGS     extra initdb arguments (e.g. "--data-checksums")
#   POSTGRES_INITDB_WALDIR   a separate WAL directory
#   POSTGRES_HOST_AUTH_METHOD  pg_hba method for host connections (default: scram-sha-256)
#   PGDATA                   data directory (default: /var/lib/postgresql/data)
#   VAR_FILE                 read VAR from a file (Docker secrets), for USER, PASSWORD, DB,
#                            INITDB_ARGS
#
# On the first start (no $PGDATA/PG_VERSION) it runs initdb as the postgres user, allows
# password (scram-sha-256) logins from any address, creates the database, runs
# /docker-entrypoint-initdb.d/*.{sh,sql,sql.gz}, then execs postgres as PID 1 so that
# `docker stop` (SIGINT, see STOPSIGNAL) shuts it down cleanly. Arguments are passed on:
# `docker run goodgo/postgres:15 -c fsync=off` runs `postgres -c fsync=off`.
set -Eeuo pipefail

# file_env VAR [DEFAULT]: VAR from itself, or from the file named by VAR_FILE, or DEFAULT.
file_env() {
	local var="$1" file_var="${1}_FILE" default="${2:-}"
	if [ -n "${!var:-}" ] && [ -n "${!file_var:-}" ]; then
		echo >&2 "error: both $var and $file_var are set, they are exclusive"
		exit 1
	fi
	local value="$default"
	if [ -n "${!var:-}" ]; then
		value="${!var}"
	elif [ -n "${!file_var:-}" ]; then
		value="$(<"${!file_var}")"
	fi
	export "$var"="$value"
	unset "$file_var"
}

# Whether the arguments only ask postgres for help or its version (then nothing is set up).
wants_help() {
	local arg
	for arg; do
		case "$arg" in
		-'?' | --help | --describe-config | -V | --version) return 0 ;;
		esac
	done
	return 1
}

setup_env() {
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
	: "${POSTGRES_INITDB_WALDIR:=}"
	export POSTGRES_HOST_AUTH_METHOD POSTGRES_INITDB_WALDIR
}

# As root: the directories exist and belong to postgres.
create_dirs() {
	mkdir -p "$PGDATA"
	chmod 0700 "$PGDATA" || :
	mkdir -p /var/run/postgresql
	chmod 3777 /var/run/postgresql || :
	if [ -n "$POSTGRES_INITDB_WALDIR" ]; then
		mkdir -p "$POSTGRES_INITDB_WALDIR"
		find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres:postgres '{}' +
		chmod 0700 "$POSTGRES_INITDB_WALDIR"
	fi
	find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
	find /var/run/postgresql \! -user postgres -exec chown postgres:postgres '{}' +
}

check_env() {
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		cat >&2 <<-'EOF'
			error: the database is uninitialized and no superuser password is set.
			       Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) to a non-empty value,
			       or POSTGRES_HOST_AUTH_METHOD=trust to allow every connection without
			       a password (never do that outside a throwaway environment).
		EOF
		exit 1
	fi
	if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
		echo >&2 "warning: POSTGRES_HOST_AUTH_METHOD=trust: any host may connect without a password"
	fi
}

init_cluster() {
	local args=()
	if [ -n "$POSTGRES_INITDB_WALDIR" ]; then
		args+=(--waldir "$POSTGRES_INITDB_WALDIR")
	fi
	# eval so that POSTGRES_INITDB_ARGS may quote, as in the official image.
	eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") \
		"${args[@]}" '"$POSTGRES_INITDB_ARGS"
	{
		echo
		echo "# added by docker-entrypoint.sh: connections from other hosts"
		echo "host all all all $POSTGRES_HOST_AUTH_METHOD"
	} >>"$PGDATA/pg_hba.conf"
	{
		echo
		echo "# added by docker-entrypoint.sh: reachable from outside the container"
		echo "listen_addresses = '*'"
	} >>"$PGDATA/postgresql.conf"
}

sql() {
	psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

create_database() {
	if [ "$POSTGRES_DB" = postgres ]; then
		return
	fi
	local exists
	exists="$(sql --dbname postgres --set db="$POSTGRES_DB" --tuples-only \
		<<<"SELECT 1 FROM pg_database WHERE datname = :'db';")"
	if [ -z "${exists//[[:space:]]/}" ]; then
		sql --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
		echo "created database $POSTGRES_DB"
	fi
}

run_init_scripts() {
	local f
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
		*.sh)
			if [ -x "$f" ]; then
				echo "running $f"
				"$f"
			else
				echo "sourcing $f"
				# shellcheck disable=SC1090
				. "$f"
			fi
			;;
		*.sql)
			echo "running $f"
			sql --dbname "$POSTGRES_DB" -f "$f"
			;;
		*.sql.gz)
			echo "running $f"
			gzip -dc "$f" | sql --dbname "$POSTGRES_DB"
			;;
		*) echo "ignoring $f" ;;
		esac
	done
}

# First start: initdb, then a socket-only temporary server to create the database and run
# the init scripts.
first_start() {
	check_env
	init_cluster
	export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
	PGUSER="${PGUSER:-$POSTGRES_USER}" \
		pg_ctl -D "$PGDATA" -w -o "$(printf '%q ' "$@" -c listen_addresses= -p 5432)" start
	create_database
	run_init_scripts
	PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" -m fast -w stop
	unset PGPASSWORD
	echo "PostgreSQL init process complete; ready for start up."
}

main() {
	if [ $# -eq 0 ] || [ "${1:0:1}" = '-' ]; then
		set -- postgres "$@"
	fi
	if [ "$1" = postgres ] && ! wants_help "$@"; then
		setup_env
		if [ "$(id -u)" = 0 ]; then
			create_dirs
			export HOME=/var/lib/postgresql
			exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
		fi
		if [ ! -s "$PGDATA/PG_VERSION" ]; then
			first_start "${@:2}"
		else
			echo "PostgreSQL database directory appears to contain a database; skipping initialization"
		fi
	fi
	exec "$@"
}

main "$@"
