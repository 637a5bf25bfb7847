#!/usr/bin/env bash
# Entrypoint of goodgo/redis:7: redis-server in the foreground as PID 1, reachable from
# other containers, with the official redis image's argument conventions:
#
#   docker run goodgo/redis:7                               redis-server with the defaults
#   docker run goodgo/redis:7 --appendonly yes              options only: redis-server is implied
#   docker run goodgo/redis:7 redis-server --appendonly yes the same
#   docker run goodgo/redis:7 /path/redis.conf [--opt …]    a config file of your own
#   docker run goodgo/redis:7 redis-cli -h other ping       any other command runs as is
#
# Without a config file, `--protected-mode no --bind * -::*` (every IPv4 and, where there is
# one, IPv6 address) comes before your options, so yours win. With a config file of your
# own, nothing is added: the file decides. Runs as the redis user in /data (a volume).
set -Eeuo pipefail

# Options (or a config file) only: they are for redis-server.
if [ $# -eq 0 ] || [ "${1:0:1}" = '-' ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

if [ "$1" = redis-server ]; then
	shift
	server=(redis-server)
	case "${1:-}" in
	-v | --version | -h | --help | --test-memory | --check-system)
		# Only understood as redis-server's first argument.
		;;
	- | [!-]*)
		# A config file ("-" is standard input): it decides.
		server+=("$1")
		shift
		;;
	*)
		server+=(--protected-mode no --bind '*' '-::*')
		;;
	esac
	set -- "${server[@]}" "$@"
	if [ "$(id -u)" = 0 ]; then
		find . \! -user redis -exec chown redis:redis '{}' +
		export HOME=/var/lib/redis
		exec setpriv --reuid=redis --regid=redis --init-groups "$@"
	fi
fi

exec "$@"
