#!/usr/bin/env bash
# The portal's two processes: configurable-http-proxy and JupyterHub. No systemd.
#
#   deploy/hub.sh start     start the proxy and the hub if they are not running; wait until healthy
#   deploy/hub.sh stop      stop both (notebook servers are Slurm jobs and keep running)
#   deploy/hub.sh restart   restart the hub only; the proxy and the servers stay up
#   deploy/hub.sh status
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

bind_url() {
	"$hub_python" -c 'import sys, yaml; print((yaml.safe_load(open(sys.argv[1])).get("hub") or {}).get("bind_url", "http://127.0.0.1:8000"))' "$site"
}

running() { start-stop-daemon --status --pidfile "$1" >/dev/null 2>&1; }

start_proxy() {
	running "$proxy_pid" && return 0
	local url host port
	url=$(bind_url)
	host=$(printf '%s' "$url" | sed -E 's#^https?://([^:/]+).*#\1#')
	port=$(printf '%s' "$url" | sed -nE 's#^https?://[^:/]+:([0-9]+).*#\1#p')
	say "starting configurable-http-proxy on $host:${port:-80}"
	CONFIGPROXY_AUTH_TOKEN=$(cat "$proxy_token_file") start-stop-daemon --start --background \
		--make-pidfile --pidfile "$proxy_pid" --startas /bin/bash -- -c \
		"exec configurable-http-proxy --ip '$host' --port '${port:-80}' --api-ip 127.0.0.1 --api-port 8001 \
		--default-target http://127.0.0.1:8081 --error-target http://127.0.0.1:8081/hub/error \
		>>'$COREHOUR_LOG/proxy.log' 2>&1"
}

start_hub() {
	running "$hub_pid" && return 0
	say "starting JupyterHub (log: $COREHOUR_LOG/jupyterhub.log)"
	(
		cd "$state"
		export COREHOUR_SITE=$site COREHOUR_STATE_DIR=$state
		CONFIGPROXY_AUTH_TOKEN=$(cat "$proxy_token_file")
		export CONFIGPROXY_AUTH_TOKEN
		export PATH=/opt/corehour/hub/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		start-stop-daemon --start --background --make-pidfile --pidfile "$hub_pid" --startas /bin/bash -- -c \
			"exec /opt/corehour/hub/bin/jupyterhub -f '$repo/jupyterhub_config.py' >>'$COREHOUR_LOG/jupyterhub.log' 2>&1"
	)
}

wait_healthy() {
	local url deadline=$((SECONDS + 60))
	url=$(bind_url)
	until curl -fsS -o /dev/null "$url/hub/health"; do
		if [ "$SECONDS" -ge "$deadline" ] || ! running "$hub_pid"; then
			tail -n 30 "$COREHOUR_LOG/jupyterhub.log" >&2 || true
			die "JupyterHub did not become healthy at $url; its log is above."
		fi
		sleep 0.3
	done
	say "portal is up at $url"
}

stop_one() {
	running "$1" || return 0
	start-stop-daemon --stop --pidfile "$1" --retry TERM/10/KILL/5 --remove-pidfile >/dev/null || true
}

need_root
mkdir -p "$state" "$COREHOUR_LOG" "$COREHOUR_RUN"
chmod 700 "$state"
[ -s "$proxy_token_file" ] || (umask 077 && random_password 48 >"$proxy_token_file")

case "${1:-}" in
start)
	[ -f "$site" ] || die "no site file at $site; run './corehour up' or set COREHOUR_SITE."
	start_proxy
	start_hub
	wait_healthy
	;;
stop)
	stop_one "$hub_pid"
	stop_one "$proxy_pid"
	say "hub and proxy stopped; notebook servers keep running as Slurm jobs"
	;;
restart)
	stop_one "$hub_pid"
	start_hub
	wait_healthy
	;;
status)
	for name in proxy jupyterhub; do
		pidfile=$COREHOUR_RUN/$name.pid
		[ "$name" = proxy ] && pidfile=$proxy_pid
		if running "$pidfile"; then say "$name running (pid $(cat "$pidfile"))"; else say "$name stopped"; fi
	done
	;;
*)
	echo "usage: $0 start|stop|restart|status" >&2
	exit 2
	;;
esac
