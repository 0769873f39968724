#!/usr/bin/env bash
# Two independent local Slurm clusters, alpha and beta, on this one machine, with munge,
# a shared slurmdbd and MariaDB. No systemd: daemons are started directly.
#
#   deploy/clusters.sh setup                 keys, database, configs, state dirs (no Slurm daemons)
#   deploy/clusters.sh start                 setup, then start whatever is not running; wait for idle nodes
#   deploy/clusters.sh stop                  stop the Slurm daemons (and munged if we started it)
#   deploy/clusters.sh ctld-stop CLUSTER     stop only that cluster's slurmctld (simulates an outage)
#   deploy/clusters.sh ctld-start CLUSTER    start it again; its jobs are kept
#   deploy/clusters.sh status                one line per daemon; exit 1 if any is down
#
# Every command is idempotent: healthy daemons are left alone. A daemon is restarted only
# when `setup` changed its configuration.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/common.sh
. "$here/common.sh"
# shellcheck source=deploy/slurm_lib.sh
. "$here/slurm_lib.sh"

templates=$here/slurm
host=$(uname -n)
host=${host%%.*} # what `hostname -s` prints, without needing that command
db_name=corehour_slurm_acct
db_user=slurm
gpu_dir=$COREHOUR_VAR/gpus
dbd_conf=$COREHOUR_SLURM_ETC/slurmdbd.conf
restart_marks=$COREHOUR_RUN/restart-needed
start_timeout=${COREHOUR_START_TIMEOUT:-60}

take_lock() {
	mkdir -p "$COREHOUR_RUN"
	exec 9>"$COREHOUR_RUN/clusters.lock"
	flock -w 300 9 || die "another deploy/clusters.sh is still running (lock $COREHOUR_RUN/clusters.lock)."
}

check_cluster_name() {
	case " ${COREHOUR_CLUSTERS[*]} " in
	*" ${1:-} "*) ;;
	*) die "unknown cluster '${1:-}'; expected one of: ${COREHOUR_CLUSTERS[*]}." ;;
	esac
}

require_installed() {
	local cmd missing=()
	for cmd in munged slurmctld slurmd slurmdbd sacctmgr mariadb; do
		command -v "$cmd" >/dev/null || missing+=("$cmd")
	done
	[ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}; run deploy/install-packages.sh first."
}

# ---------------------------------------------------------------- setup

ensure_host_resolves() {
	getent hosts "$host" >/dev/null && return
	printf '127.0.0.1\t%s\n' "$host" >>/etc/hosts
	say "added $host to /etc/hosts so that Slurm can resolve its node name"
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

ensure_munge() {
	if [ ! -s /etc/munge/munge.key ]; then
		install -d -o munge -g munge -m 0700 /etc/munge
		(umask 077 && dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none)
		chown munge:munge /etc/munge/munge.key
		chmod 0400 /etc/munge/munge.key
		say "created /etc/munge/munge.key"
	fi
	install -d -o munge -g munge -m 0755 /run/munge
	if munge_works; then
		say "munged: already running"
		return
	fi
	launch --quiet --oknodo --chuid munge --pidfile /run/munge/munged.pid \
		--exec /usr/sbin/munged
	touch "$COREHOUR_RUN/munged.started-by-corehour"
	wait_for 15 "munged: started" munge_works ||
		fail_with_logs "munged did not start." /var/log/munge/munged.log
}


ensure_mariadb() {
	if answers_on 127.0.0.1 3306; then
		say "MariaDB: using the server on 127.0.0.1:3306"
		return
	fi
	[ -x /usr/sbin/mariadbd ] ||
		die "nothing answers on 127.0.0.1:3306 and MariaDB is not installed; run deploy/install-packages.sh."
	install -d -o mysql -g mysql /run/mysqld
	# The pid file keeps start-stop-daemon from mistaking a mariadbd of another container
	# (same binary path, visible in a shared process table) for ours.
	launch --oknodo --background --no-close --pidfile /run/mysqld/mysqld.pid \
		--exec /usr/sbin/mariadbd -- --user=mysql >>"$COREHOUR_LOG/mariadb.log" 2>&1
	wait_for 60 "MariaDB: started on 127.0.0.1:3306" answers_on 127.0.0.1 3306 ||
		fail_with_logs "MariaDB did not start listening on 127.0.0.1:3306." "$COREHOUR_LOG/mariadb.log"
}

# The password travels through a file descriptor, never through a command line.
# MariaDB 11.4+ clients (Debian 13) insist on a verified TLS connection when a password is
# used, which fails against servers without TLS (such as 10.11 from Debian 12): this is a
# local connection, so do not require it.
db_login_works() { # db_login_works PASSWORD
	mariadb --defaults-extra-file=<(printf '[client]\npassword=%s\nssl-verify-server-cert=0\n' "$1") \
		--protocol=tcp -h127.0.0.1 -P3306 -u"$db_user" "$db_name" -e 'SELECT 1' >/dev/null 2>&1
}

# Sets db_password for slurmdbd: the one in slurmdbd.conf if it still works, otherwise a new one.
db_password=""
ensure_db_user() {
	[ -f "$dbd_conf" ] && db_password=$(sed -n 's/^StoragePass=//p' "$dbd_conf")
	if [ -n "$db_password" ] && db_login_works "$db_password"; then
		say "MariaDB: user '$db_user' and database '$db_name' are in place"
		return
	fi
	find_mariadb_admin
	db_password=$(random_password 32)
	local who
	# shellcheck disable=SC2016 # the backquotes are SQL identifier quotes
	{
		printf 'CREATE DATABASE IF NOT EXISTS `%s`;\n' "$db_name"
		for who in "'$db_user'@'localhost'" "'$db_user'@'127.0.0.1'"; do
			printf "CREATE USER IF NOT EXISTS %s;\nALTER USER %s IDENTIFIED BY '%s';\n" "$who" "$who" "$db_password"
			printf 'GRANT ALL PRIVILEGES ON `%s`.* TO %s;\n' "$db_name" "$who"
		done
	} | "${mariadb_admin_cmd[@]}" || die "could not create the MariaDB user '$db_user' and database '$db_name'."
	db_login_works "$db_password" ||
		die "MariaDB user '$db_user' was created but cannot log in over 127.0.0.1:3306."
	say "MariaDB: user '$db_user' (new password) and database '$db_name' are ready"
}


render_configs() {
	local c dir gpu_line tmp
	install -d -m 0755 "$COREHOUR_SLURM_ETC"
	install_unkillable_program
	render "$templates/slurmdbd.conf.in" "$dbd_conf" 0600 \
		"HOST=$host;DB_PASSWORD=$db_password" slurmdbd
	for c in "${COREHOUR_CLUSTERS[@]}"; do
		dir=$COREHOUR_SLURM_ETC/$c
		install -d -m 0755 "$dir"
		render "$templates/$c.conf.in" "$dir/slurm.conf" 0644 "HOST=$host" \
			"slurmctld-$c" "slurmd-$c"
		gpu_line="# no GPUs on cluster $c"
		[ "$c" = alpha ] && gpu_line="NodeName=$host Name=gpu File=$gpu_dir/nvidia[0-3]"
		render "$templates/gres.conf.in" "$dir/gres.conf" 0644 "GPU_LINE=$gpu_line" \
			"slurmctld-$c" "slurmd-$c"
		tmp=$(mktemp "$dir/cgroup.conf.XXXXXX")
		{
			cat "$templates/cgroup.conf"
			cgroup_settings
		} >"$tmp"
		install_if_changed "$tmp" "$dir/cgroup.conf" 0644 "slurmd-$c"
	done
}


ensure_dirs() {
	local c
	install -d -m 0755 "$COREHOUR_VAR" "$COREHOUR_LOG" "$COREHOUR_RUN" "$gpu_dir"
	for c in "${COREHOUR_CLUSTERS[@]}"; do
		install -d -m 0755 "$COREHOUR_VAR/slurm/$c/ctld" "$COREHOUR_VAR/slurm/$c/d"
	done
	for c in 0 1 2 3; do
		[ -e "$gpu_dir/nvidia$c" ] || install -m 0666 /dev/null "$gpu_dir/nvidia$c"
	done
}

# A plain `sbatch` in a user's terminal goes to alpha.
link_default_conf() {
	local link=/etc/slurm/slurm.conf target
	target=$(slurm_conf_of alpha)
	install -d -m 0755 /etc/slurm
	[ "$(readlink "$link" 2>/dev/null)" = "$target" ] && return
	if [ -e "$link" ] && [ ! -L "$link" ]; then
		local backup=$link.before-corehour
		[ -e "$backup" ] && backup=$backup.$(date +%Y%m%d%H%M%S)
		mv "$link" "$backup"
		say "moved the existing $link to $backup"
	fi
	ln -sfn "$target" "$link"
	say "linked $link to $target"
}

cmd_setup() {
	need_root
	require_installed
	ensure_dirs
	ensure_host_resolves
	ensure_munge
	ensure_mariadb
	ensure_db_user
	render_configs
	link_default_conf
	say "setup done: configs in $COREHOUR_SLURM_ETC, state in $COREHOUR_VAR/slurm, logs in $COREHOUR_LOG"
}

# ---------------------------------------------------------------- daemons

dbd_answers() { sacctmgr_q show cluster format=cluster >/dev/null 2>&1; }

ctld_answers() { on_cluster "$1" scontrol ping 2>/dev/null | grep -q 'is UP'; }

start_slurmdbd() {
	local pid log=$COREHOUR_LOG/slurmdbd.log
	pid=$(pidfile_of slurmdbd)
	if is_running "$pid" /usr/sbin/slurmdbd; then
		if ! restart_marked slurmdbd; then
			say "slurmdbd: already running (pid $(pid_in "$pid"))"
			return
		fi
		say "slurmdbd: configuration changed, restarting"
		stop_daemon slurmdbd /usr/sbin/slurmdbd
	fi
	# slurmdbd reads slurmdbd.conf from the directory of SLURM_CONF.
	SLURM_CONF=$COREHOUR_SLURM_ETC/slurm.conf launch --quiet --pidfile "$pid" \
		--exec /usr/sbin/slurmdbd >>"$COREHOUR_LOG/slurmdbd.out" 2>&1 ||
		fail_with_logs "slurmdbd did not start." "$COREHOUR_LOG/slurmdbd.out" "$log"
	clear_restart_mark slurmdbd
	wait_up "$start_timeout" "slurmdbd: running on 127.0.0.1:6819" "$pid" /usr/sbin/slurmdbd dbd_answers ||
		fail_with_logs "slurmdbd does not answer on 127.0.0.1:6819." "$COREHOUR_LOG/slurmdbd.out" "$log"
}

start_slurm_daemon() { # start_slurm_daemon slurmctld|slurmd CLUSTER
	local daemon=$1 c=$2 conf pid name log
	name=$daemon-$c
	conf=$(slurm_conf_of "$c")
	pid=$(pidfile_of "$name")
	log=$COREHOUR_LOG/$name.log
	if is_running "$pid" "/usr/sbin/$daemon"; then
		if ! restart_marked "$name"; then
			say "$daemon $c: already running (pid $(pid_in "$pid"))"
			return
		fi
		say "$daemon $c: configuration changed, restarting"
		stop_daemon "$name" "/usr/sbin/$daemon"
	fi
	# Never -c: slurmctld must recover its jobs from StateSaveLocation.
	SLURM_CONF=$conf launch --quiet --pidfile "$pid" --exec "/usr/sbin/$daemon" \
		-- -f "$conf" >>"$COREHOUR_LOG/$name.out" 2>&1 ||
		fail_with_logs "$daemon for cluster $c did not start." "$COREHOUR_LOG/$name.out" "$log"
	clear_restart_mark "$name"
	if [ "$daemon" = slurmctld ]; then
		wait_up "$start_timeout" "slurmctld $c: running on port $(ctld_port "$c")" "$pid" /usr/sbin/slurmctld \
			ctld_answers "$c" ||
			fail_with_logs "slurmctld of cluster $c does not answer." "$COREHOUR_LOG/$name.out" "$log"
	else
		wait_for 15 "slurmd $c: started" test -s "$pid" ||
			fail_with_logs "slurmd of cluster $c did not start." "$COREHOUR_LOG/$name.out" "$log"
	fi
}

ctld_port() { sed -n 's/^SlurmctldPort=//p' "$(slurm_conf_of "$1")"; }


node_state() { on_cluster "$1" sinfo -h -N -n "$host" -o '%T' 2>/dev/null | head -n 1; }

# Waits until the cluster's node can run jobs; resumes it once when it was left down or drained.
wait_node_ready() {
	local c=$1 state resumed=no deadline=$((SECONDS + start_timeout))
	while :; do
		state=$(node_state "$c")
		case "$state" in
		idle | mixed | allocated | completing)
			say "cluster $c: node $host is $state"
			return
			;;
		down | drained | draining | drain | fail | failing | inval)
			if [ "$resumed" = no ]; then
				say "cluster $c: node $host is $state, resuming it"
				on_cluster "$c" scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
				resumed=yes
			fi
			;;
		esac
		if [ "$SECONDS" -ge "$deadline" ]; then
			on_cluster "$c" scontrol show node "$host" 2>&1 | grep -E 'State=|Reason=' >&2 || true
			fail_with_logs "node $host of cluster $c is '${state:-unknown}' after ${start_timeout}s, not idle." \
				"$COREHOUR_LOG/slurmd-$c.log" "$COREHOUR_LOG/slurmctld-$c.log"
		fi
		sleep 0.3
	done
}

# The account's association on a cluster implies the cluster, so one query suffices when all is
# in place.
register_accounting() {
	local existing c missing=() list
	existing=$(sacctmgr_q show association where account="$COREHOUR_ACCOUNT" user= format=cluster)
	for c in "${COREHOUR_CLUSTERS[@]}"; do
		grep -qx "$c" <<<"$existing" || missing+=("$c")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		say "slurmdbd: clusters ${COREHOUR_CLUSTERS[*]} and account $COREHOUR_ACCOUNT are registered"
		return
	fi
	existing=$(sacctmgr_q show cluster format=cluster)
	for c in "${missing[@]}"; do
		grep -qx "$c" <<<"$existing" && continue
		sacctmgr_i add cluster "$c" >/dev/null
		say "slurmdbd: registered cluster $c"
	done
	list=$(IFS=,; echo "${missing[*]}")
	sacctmgr_i add account "$COREHOUR_ACCOUNT" cluster="$list" \
		description="corehour portal users" organization=corehour >/dev/null
	say "slurmdbd: added account $COREHOUR_ACCOUNT on $list"
}

cmd_start() {
	cmd_setup
	start_slurmdbd
	register_accounting
	local c
	for c in "${COREHOUR_CLUSTERS[@]}"; do
		start_slurm_daemon slurmctld "$c"
		start_slurm_daemon slurmd "$c"
	done
	for c in "${COREHOUR_CLUSTERS[@]}"; do wait_node_ready "$c"; done
	say "clusters ${COREHOUR_CLUSTERS[*]} are up (SLURM_CONF=$COREHOUR_SLURM_ETC/<cluster>/slurm.conf)"
}

cmd_stop() {
	need_root
	local c
	for c in "${COREHOUR_CLUSTERS[@]}"; do stop_daemon "slurmd-$c" /usr/sbin/slurmd; done
	for c in "${COREHOUR_CLUSTERS[@]}"; do stop_daemon "slurmctld-$c" /usr/sbin/slurmctld; done
	stop_daemon slurmdbd /usr/sbin/slurmdbd
	if [ -e "$COREHOUR_RUN/munged.started-by-corehour" ]; then
		start-stop-daemon --stop --quiet --oknodo --pidfile /run/munge/munged.pid --exec /usr/sbin/munged \
			--retry TERM/10/KILL/5
		rm -f "$COREHOUR_RUN/munged.started-by-corehour"
		say "munged: stopped"
	else
		say "munged: left running (not started by corehour)"
	fi
	say "stopped; MariaDB and PostgreSQL are left running"
}

cmd_ctld_stop() {
	need_root
	check_cluster_name "${1:-}"
	stop_daemon "slurmctld-$1" /usr/sbin/slurmctld
}

cmd_ctld_start() {
	need_root
	check_cluster_name "${1:-}"
	[ -f "$(slurm_conf_of "$1")" ] || die "cluster $1 is not set up; run deploy/clusters.sh start."
	start_slurm_daemon slurmctld "$1"
	wait_node_ready "$1"
}


cmd_status() {
	local down=0 c pid name state
	if munge_works; then status_line munged running; else
		status_line munged 'not running'
		down=1
	fi
	if answers_on 127.0.0.1 3306; then status_line mariadb 'answering on 127.0.0.1:3306'; else
		status_line mariadb 'not answering on 127.0.0.1:3306'
		down=1
	fi
	pid=$(pidfile_of slurmdbd)
	if is_running "$pid" /usr/sbin/slurmdbd; then
		status_line slurmdbd "running (pid $(pid_in "$pid")) on 127.0.0.1:6819"
	else
		status_line slurmdbd 'not running'
		down=1
	fi
	for c in "${COREHOUR_CLUSTERS[@]}"; do
		name=slurmctld-$c
		pid=$(pidfile_of "$name")
		if is_running "$pid" /usr/sbin/slurmctld; then
			status_line "slurmctld $c" "running (pid $(pid_in "$pid")) on port $(ctld_port "$c")"
		else
			status_line "slurmctld $c" 'not running'
			down=1
		fi
		name=slurmd-$c
		pid=$(pidfile_of "$name")
		if is_running "$pid" /usr/sbin/slurmd; then
			state=$(node_state "$c")
			status_line "slurmd $c" "running (pid $(pid_in "$pid")), node $host ${state:-state unknown}"
		else
			status_line "slurmd $c" 'not running'
			down=1
		fi
	done
	return "$down"
}

usage() {
	sed -n '2,13s/^# \{0,1\}//p' "$0"
	exit 2
}

main() {
	local cmd=${1:-}
	[ $# -gt 0 ] && shift
	case "$cmd" in
	setup | start | stop | ctld-stop | ctld-start)
		need_root
		take_lock
		;;
	esac
	case "$cmd" in
	setup) cmd_setup ;;
	start) cmd_start ;;
	stop) cmd_stop ;;
	ctld-stop) cmd_ctld_stop "$@" ;;
	ctld-start) cmd_ctld_start "$@" ;;
	status) cmd_status ;;
	*) usage ;;
	esac
}

main "$@"
