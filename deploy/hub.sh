#!/usr/bin/env bash
# The portal's two processes: configurable-http-proxy and JupyterHub. No systemd.
#
#   deploy/hub.sh start     start the proxy and the hub if they are not running; wait until healthy
#   deploy/hub.sh stop      stop both (notebook servers are Slurm jobs and keep running)
#   deploy/hub.sh restart   restart the hub only; the proxy and the servers stay up
#   deploy/hub.sh status
#   deploy/hub.sh migrate          bring the ledger and the hub's database to this corehour's schema
#   deploy/hub.sh backup DIR       copy the hub's database, the ledger and identities into a new DIR
#   deploy/hub.sh restore DIR      put a backup back (the portal must be stopped)
#
# The proxy runs on its own so that a hub restart never drops a person's connection.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
# shellcheck source=deploy/common.sh
. "$here/common.sh"

hub_python=/opt/corehour/hub/bin/python
site=${COREHOUR_SITE:-/etc/corehour/site.yaml}
state=${COREHOUR_STATE_DIR:-$COREHOUR_VAR/hub}
hub_pid=$COREHOUR_RUN/jupyterhub.pid
proxy_pid=$COREHOUR_RUN/proxy.pid
proxy_token_file=$state/proxy_token

# Prints "bind_url hub_ip hub_port proxy_api_url" from the site file (and validates it).
site_endpoints() {
	"$hub_python" -c 'import sys
from centre.site import SiteConfigError, load_site
try:
    hub = load_site(sys.argv[1]).hub
except SiteConfigError as e:
    sys.exit(f"corehour: {e}")
print(hub.bind_url, hub.hub_ip, hub.hub_port, hub.proxy_api_url)' "$site"
}

running() { start-stop-daemon --status --pidfile "$1" >/dev/null 2>&1; }

system_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Run in the subshell that starts a daemon: nothing of the admin's shell reaches the proxy,
# the hub or, through JupyterHub's env_keep, a notebook job. What the daemon needs is then
# exported by name; secrets go in as variables, never as arguments (any local user reads
# those in /proc).
clean_environment() {
	local name
	for name in $(compgen -e); do export -n "${name?}" 2>/dev/null || true; done
}

# Where the hub's database, the ledger and identities are, when the site keeps them on
# PostgreSQL, and Prometheus' token (deploy/prometheus): only these keys, from the root-only env
# file that deploy/postgres.sh starts.
export_database_urls() {
	[ -f "$COREHOUR_ENV_FILE" ] || return 0
	local line key value
	while IFS= read -r line || [ -n "$line" ]; do
		key=${line%%=*}
		value=${line#*=}
		case $key in
		COREHOUR_BILLING_DB | COREHOUR_HUB_DB_URL | COREHOUR_IDENTITY_DB_URL | COREHOUR_METRICS_TOKEN) [ -z "$value" ] || export "$key=$value" ;;
		esac
	done <"$COREHOUR_ENV_FILE"
}

# The env file holds database passwords: root's alone, or the hub does not start.
check_env_file() {
	[ -e "$COREHOUR_ENV_FILE" ] || return 0
	local owner mode
	read -r owner mode <<<"$(stat -c '%u %a' "$COREHOUR_ENV_FILE")"
	[ "$owner" = 0 ] && [ $((8#$mode & 8#077)) = 0 ] ||
		die "$COREHOUR_ENV_FILE (owner uid $owner, mode $mode) must belong to root with mode 600:" \
			"run 'chown root: $COREHOUR_ENV_FILE; chmod 600 $COREHOUR_ENV_FILE', and change the passwords in it."
}

# The hub's state is root's alone: a 0700 folder of 0600 files (its database, cookie secret,
# proxy token, single sign-on identities, the billing service's cookie secret). Files made by
# an older corehour, world-readable, are fixed here; SQLite gives a database's -wal and -shm
# files the database's own mode.
ensure_private_state() {
	install -d -m 0700 "$state"
	chmod 0700 "$state"
	find "$state" -maxdepth 1 -type f -perm /077 -exec chmod go-rwx {} +
	# JupyterHub would make its SQLite database 0644 (SQLite takes an empty file as a new one).
	if [ ! -e "$state/jupyterhub.sqlite" ] && ! grep -qs '^COREHOUR_HUB_DB_URL=.' "$COREHOUR_ENV_FILE"; then
		install -m 0600 /dev/null "$state/jupyterhub.sqlite"
	fi
}

# The proxy's command line, one argument per line, from the site (centre/proxy_command.py).
proxy_command() {
	"$hub_python" -c 'import sys
from centre.proxy_command import proxy_argv
from centre.site import load_site
print("\n".join(proxy_argv(load_site(sys.argv[1]).hub)))' "$site"
}

start_proxy() {
	running "$proxy_pid" && return 0
	local argv
	mapfile -t argv < <(proxy_command)
	[ "${#argv[@]}" -gt 1 ] || die "could not build the proxy's command line from $site"
	say "starting configurable-http-proxy (${argv[1]#--ip=}, ${argv[2]#--port=})"
	(
		clean_environment
		PATH=$system_path CONFIGPROXY_AUTH_TOKEN=$(cat "$proxy_token_file") \
			exec start-stop-daemon --start --background --make-pidfile --pidfile "$proxy_pid" --startas /bin/bash -- -c \
			'exec "$@" >>"$0" 2>&1' "$COREHOUR_LOG/proxy.log" "${argv[@]}"
	)
}

start_hub() {
	running "$hub_pid" && return 0
	say "starting JupyterHub (log: $COREHOUR_LOG/jupyterhub.log)"
	# The hub works in its state folder, and so do the services it starts: the billing
	# service keeps its cookie secret there.
	(
		clean_environment
		export_database_urls
		PATH=/opt/corehour/hub/bin:$system_path LANG=C.UTF-8 HOME=/root COREHOUR_SITE=$site \
			COREHOUR_STATE_DIR=$state CONFIGPROXY_AUTH_TOKEN=$(cat "$proxy_token_file") \
			exec start-stop-daemon --start --background --chdir "$state" --make-pidfile --pidfile "$hub_pid" \
			--startas /bin/bash -- -c \
			"exec /opt/corehour/hub/bin/corehour-hub >>'$COREHOUR_LOG/jupyterhub.log' 2>&1"
	)
}

wait_healthy() {
	local url rest deadline=$((SECONDS + 60))
	read -r url rest <<<"$(site_endpoints)"
	until curl -fs -o /dev/null "$url/hub/health"; do
		if [ "$SECONDS" -ge "$deadline" ] || ! running "$hub_pid"; then
			tail -n 30 "$COREHOUR_LOG/jupyterhub.log" >&2 || true
			die "JupyterHub did not become healthy at $url; its log is above."
		fi
		sleep 0.3
	done
	say "portal is up at $url"
}

# roots/ops.py (docs/operations.md) with what the hub itself gets: the env file's database
# URLs, the site file and the state folder.
run_ops() {
	(
		clean_environment
		export_database_urls
		cd "$repo"
		PATH=/opt/corehour/hub/bin:$system_path LANG=C.UTF-8 HOME=/root \
			exec "$hub_python" -m roots.ops "$@" --site "$site" --state-dir "$state"
	)
}

need_site() {
	[ -f "$site" ] || die "no site file at $site; run './corehour up' or set COREHOUR_SITE."
	check_env_file
}

stop_one() {
	running "$1" || return 0
	start-stop-daemon --stop --pidfile "$1" --retry TERM/10/KILL/5 --remove-pidfile >/dev/null || true
}

need_root
mkdir -p "$COREHOUR_LOG" "$COREHOUR_RUN"
ensure_private_state
[ -s "$proxy_token_file" ] || (umask 077 && random_password 48 >"$proxy_token_file")

case "${1:-}" in
start)
	[ -f "$site" ] || die "no site file at $site; run './corehour up' or set COREHOUR_SITE."
	site_endpoints >/dev/null
	check_env_file
	start_proxy
	start_hub
	wait_healthy
	# Slurm's job mails on this host's clusters go to this portal (docs/notifications.md).
	run_ops slurm-mail --name corehour >/dev/null
	;;
stop)
	stop_one "$hub_pid"
	stop_one "$proxy_pid"
	say "hub and proxy stopped; notebook servers keep running as Slurm jobs"
	;;
restart)
	[ -f "$site" ] || die "no site file at $site; run './corehour up' or set COREHOUR_SITE."
	site_endpoints >/dev/null
	check_env_file
	stop_one "$hub_pid"
	start_proxy
	start_hub
	wait_healthy
	;;
migrate)
	need_site
	run_ops migrate
	;;
backup)
	[ -n "${2:-}" ] || die "usage: $0 backup DIR, where DIR is a new folder for the backup"
	need_site
	run_ops backup "$(realpath -m "$2")"
	;;
restore)
	[ -n "${2:-}" ] || die "usage: $0 restore DIR, where DIR is a folder made by '$0 backup'"
	need_site
	! running "$hub_pid" || die "the portal is running: stop it with './corehour down', then restore."
	run_ops restore "$(realpath -m "$2")"
	;;
status)
	for name in proxy jupyterhub; do
		pidfile=$COREHOUR_RUN/$name.pid
		[ "$name" = proxy ] && pidfile=$proxy_pid
		if running "$pidfile"; then say "$name running (pid $(cat "$pidfile"))"; else say "$name stopped"; fi
	done
	;;
*)
	echo "usage: $0 start|stop|restart|status|migrate|backup DIR|restore DIR" >&2
	exit 2
	;;
esac
