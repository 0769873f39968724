#!/usr/bin/env bash
# The local mail server the demo and TEST deliver notifications through (docs/notifications.md).
#
#   deploy/mail.sh start    start Debian's exim4 on 127.0.0.1:25 unless something answers there
#   deploy/mail.sh status
#   deploy/mail.sh stop     stop it, if this script started it
#
# Debian's exim4-daemon-light comes configured for local delivery only ("local" in
# /etc/exim4/update-exim4.conf.conf): it listens on 127.0.0.1 and ::1 and delivers
# person@localhost to /var/mail/person.  corehour sends to it over SMTP; a production site
# points the portal at its own relay instead and needs none of this.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/common.sh
. "$here/common.sh"

run_dir=/run/corehour
marker=$run_dir/exim4.started-by-corehour
pidfile=/run/exim4/exim.pid

cmd_start() {
	if answers_on 127.0.0.1 25; then
		say "mail: something already answers on 127.0.0.1:25; using it"
		return 0
	fi
	[ -x /usr/sbin/exim4 ] || die "exim4 is not installed: run deploy/install-packages.sh"
	mkdir -p /run/exim4 "$run_dir"
	chown Debian-exim: /run/exim4
	# Without systemd: the daemon itself, queue runs every 5 minutes for anything deferred.
	/usr/sbin/exim4 -bd -q5m -oP "$pidfile"
	touch "$marker"
	for _ in $(seq 50); do
		answers_on 127.0.0.1 25 && { say "mail: exim4 on 127.0.0.1:25 (local delivery to /var/mail)"; return 0; }
		sleep 0.1
	done
	die "mail: exim4 did not start; see /var/log/exim4/mainlog and /var/log/exim4/paniclog"
}

cmd_stop() {
	if [ -e "$marker" ]; then
		start-stop-daemon --stop --quiet --oknodo --pidfile "$pidfile" --exec /usr/sbin/exim4 || true
		rm -f "$marker"
		say "mail: exim4 stopped"
	else
		say "mail: left running (not started by corehour)"
	fi
}

cmd_status() {
	if answers_on 127.0.0.1 25; then say "mail server: running on 127.0.0.1:25"; else say "mail server: not running"; fi
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*) die "usage: $0 start|stop|status" ;;
esac
