#!/usr/bin/env bash
# gamma: the remote centre of the test bed. A third Slurm cluster on this machine that shares
# nothing with alpha and beta but the kernel and the MariaDB server: its own network
# namespace (reached at 10.77.0.2 over a veth pair), its own mount namespace (its own /home and
# munge socket), its own host name, munge key and slurmdbd, and an sshd as its login node.
# The portal reaches it only over ssh, with the site-managed key, as a centre it does not run.
#
#   deploy/gamma.sh start             set up what is missing, start what is not running
#   deploy/gamma.sh stop              stop gamma's daemons (the namespaces stay)
#   deploy/gamma.sh status            one line per daemon; exit 1 if any is down
#   deploy/gamma.sh people USER...    a home on gamma and an association in its accounting
#   deploy/gamma.sh cut | mend        take gamma's link down (an outage of the centre) or up
#   deploy/gamma.sh exec CMD...       run CMD as root inside gamma (tests and debugging)
#
# Every command is idempotent. docs/centres.md tells a real centre what this script imitates.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/common.sh
. "$here/common.sh"
# shellcheck source=deploy/slurm_lib.sh
. "$here/slurm_lib.sh"

netns=corehour-gamma
host_if=chgamma0
gamma_if=chgamma1
host_addr=10.77.0.1
gamma_addr=10.77.0.2
gamma_etc=/etc/corehour/gamma
gamma_var=$COREHOUR_VAR/gamma
ns_dir=$COREHOUR_RUN/ns
# The account the portal logs in as on gamma: a login shell, not in the portal group, and
# allowed by the sudo rule to act as people (deploy/sudoers/corehour.in).
remote_user=${COREHOUR_GAMMA_USER:-corehour-remote}
# The portal's side of the trust: its key and the pinned host key of gamma.
ssh_etc=/etc/corehour/ssh
db_name=corehour_gamma_acct
db_user=slurm_gamma
slurm_conf=$gamma_etc/slurm.conf
dbd_conf=$gamma_etc/slurmdbd.conf
restart_marks=$COREHOUR_RUN/restart-needed
start_timeout=${COREHOUR_START_TIMEOUT:-60}

in_gamma() {
	nsenter --net="/run/netns/$netns" --mount="$ns_dir/gamma.mnt" --uts="$ns_dir/gamma.uts" -- "$@"
}

on_gamma() { in_gamma env SLURM_CONF="$slurm_conf" "$@"; }

take_lock() {
	mkdir -p "$COREHOUR_RUN"
	exec 9>"$COREHOUR_RUN/gamma.lock"
	flock -w 300 9 || die "another deploy/gamma.sh is still running (lock $COREHOUR_RUN/gamma.lock)."
}

# ---------------------------------------------------------------- namespaces

ensure_network() {
	[ -e "/run/netns/$netns" ] || ip netns add "$netns"
	if ! ip link show "$host_if" >/dev/null 2>&1; then
		ip link add "$host_if" type veth peer name "$gamma_if" netns "$netns"
	fi
	ip addr replace "$host_addr/30" dev "$host_if"
	ip link set "$host_if" up
	ip -n "$netns" addr replace "$gamma_addr/30" dev "$gamma_if"
	ip -n "$netns" link set "$gamma_if" up
	ip -n "$netns" link set lo up
	grep -qE "^$gamma_addr[[:space:]]+gamma\b" /etc/hosts || printf '%s\tgamma\n' "$gamma_addr" >>/etc/hosts
	say "gamma: network namespace $netns, reached at $gamma_addr (this host is $host_addr)"
}

# A persistent mount and host-name namespace, kept by bind mounts under $ns_dir, in which
# gamma's /home is its own and /run/munge holds gamma's munge socket instead of the host's.
ensure_mounts() {
	install -d -m 0755 "$ns_dir" "$gamma_var" /run/munge
	install -d -m 0755 "$gamma_var/home"
	if nsenter --mount="$ns_dir/gamma.mnt" --uts="$ns_dir/gamma.uts" true 2>/dev/null; then
		return
	fi
	mountpoint -q "$ns_dir" || mount --bind "$ns_dir" "$ns_dir"
	mount --make-private "$ns_dir"
	touch "$ns_dir/gamma.mnt" "$ns_dir/gamma.uts"
	unshare --mount="$ns_dir/gamma.mnt" --uts="$ns_dir/gamma.uts" --propagation private \
		sh -c "hostname gamma && mount --bind '$gamma_var/home' /home &&
			mount -t tmpfs -o mode=0755,size=16m gamma-munge /run/munge && chown munge:munge /run/munge"
	say "gamma: its own /home ($gamma_var/home) and munge socket, host name gamma"
}

# ---------------------------------------------------------------- accounts and keys

ensure_remote_account() {
	if ! id -u "$remote_user" >/dev/null 2>&1; then
		useradd --system --user-group --home-dir "$gamma_var/remote" --create-home \
			--shell /bin/sh --comment "corehour portal on gamma" "$remote_user"
		say "gamma: created the login account $remote_user"
	fi
	# No password at all ('*'), rather than a locked one ('!'), which sshd refuses even for a key.
	[ "$(getent shadow "$remote_user" | cut -d: -f2)" = '*' ] || usermod -p '*' "$remote_user"
	# gamma's login node has its own sudoers.d, as a centre's machine would: the same rule as
	# on the hub host, for the account the portal logs in as there.
	install -d -m 0750 "$gamma_etc/sudoers.d"
	in_gamma mountpoint -q /etc/sudoers.d || in_gamma mount --bind "$gamma_etc/sudoers.d" /etc/sudoers.d
	in_gamma env COREHOUR_HUB_USER="$remote_user" "$here/sudo.sh" ensure
}

ensure_keys() {
	install -d -m 0755 "$gamma_etc" "$gamma_etc/authorized_keys" "$ssh_etc"
	[ -s "$gamma_etc/ssh_host_ed25519_key" ] ||
		ssh-keygen -q -t ed25519 -N '' -C gamma -f "$gamma_etc/ssh_host_ed25519_key"
	ensure_hub_account
	if [ ! -s "$ssh_etc/id_ed25519" ]; then
		ssh-keygen -q -t ed25519 -N '' -C "corehour portal" -f "$ssh_etc/id_ed25519"
		say "gamma: made the portal's site key $ssh_etc/id_ed25519"
	fi
	# The hub's account uses the key; root (the demo hub) can read it too.
	chown "$COREHOUR_HUB_USER:$COREHOUR_HUB_GROUP" "$ssh_etc/id_ed25519"
	chmod 0600 "$ssh_etc/id_ed25519"
	# The shared connections' sockets (ssh.control_dir in the site file).
	install -d -o "$COREHOUR_HUB_USER" -g "$COREHOUR_HUB_GROUP" -m 0700 "$COREHOUR_RUN/ssh"
	local tmp
	# restrict: no pty, no forwarding; the portal needs neither.
	tmp=$(mktemp "$gamma_etc/authorized_keys/.XXXXXX")
	printf 'restrict %s\n' "$(cat "$ssh_etc/id_ed25519.pub")" >"$tmp"
	install_if_changed "$tmp" "$gamma_etc/authorized_keys/$remote_user" 0644
	tmp=$(mktemp "$ssh_etc/.known_hosts.XXXXXX")
	printf 'gamma,%s %s\n' "$gamma_addr" "$(cut -d' ' -f1,2 "$gamma_etc/ssh_host_ed25519_key.pub")" >"$tmp"
	install_if_changed "$tmp" "$ssh_etc/known_hosts" 0644
}

ensure_munge_key() {
	install -d -o munge -g munge -m 0700 "$gamma_etc/munge" "$gamma_var/munge"
	if [ ! -s "$gamma_etc/munge/munge.key" ]; then
		(umask 077 && dd if=/dev/urandom of="$gamma_etc/munge/munge.key" bs=1024 count=1 status=none)
		chown munge:munge "$gamma_etc/munge/munge.key"
		chmod 0400 "$gamma_etc/munge/munge.key"
		say "gamma: made its own munge key"
	fi
}

# ---------------------------------------------------------------- accounting database

db_password=""
gamma_db_works() { # gamma_db_works PASSWORD: over the Unix socket, as slurmdbd will
	mariadb --defaults-extra-file=<(printf '[client]\npassword=%s\n' "$1") \
		-u"$db_user" "$db_name" -e 'SELECT 1' >/dev/null 2>&1
}

ensure_db() {
	[ -f "$dbd_conf" ] && db_password=$(sed -n 's/^StoragePass=//p' "$dbd_conf")
	if [ -n "$db_password" ] && gamma_db_works "$db_password"; then return; fi
	find_mariadb_admin
	db_password=$(random_password 32)
	# shellcheck disable=SC2016 # the backquotes are SQL identifier quotes
	{
		printf 'CREATE DATABASE IF NOT EXISTS `%s`;\n' "$db_name"
		printf "CREATE USER IF NOT EXISTS '%s'@'localhost';\n" "$db_user"
		printf "ALTER USER '%s'@'localhost' IDENTIFIED BY '%s';\n" "$db_user" "$db_password"
		printf "GRANT ALL PRIVILEGES ON \`%s\`.* TO '%s'@'localhost';\n" "$db_name" "$db_user"
	} | "${mariadb_admin_cmd[@]}" || die "could not create gamma's accounting database $db_name."
	gamma_db_works "$db_password" || die "MariaDB user $db_user cannot log in through the socket."
	say "gamma: accounting database $db_name (user $db_user, new password)"
}

render_configs() {
	local tmp
	install -d -m 0755 "$gamma_var/slurm/ctld" "$gamma_var/slurm/d"
	install_unkillable_program
	render "$here/gamma/slurm.conf.in" "$slurm_conf" 0644 \
		"GAMMA_ADDR=$gamma_addr;STATE=$gamma_var/slurm" gamma-slurmctld gamma-slurmd
	render "$here/gamma/slurmdbd.conf.in" "$dbd_conf" 0600 \
		"GAMMA_ADDR=$gamma_addr;DB_USER=$db_user;DB_PASSWORD=$db_password;DB_NAME=$db_name" gamma-slurmdbd
	render "$here/gamma/sshd_config.in" "$gamma_etc/sshd_config" 0644 \
		"GAMMA_ADDR=$gamma_addr;ETC=$gamma_etc;REMOTE_USER=$remote_user" gamma-sshd
	tmp=$(mktemp "$gamma_etc/cgroup.conf.XXXXXX")
	{
		cat "$here/slurm/cgroup.conf"
		cgroup_settings
	} >"$tmp"
	install_if_changed "$tmp" "$gamma_etc/cgroup.conf" 0644 gamma-slurmd
}

# ---------------------------------------------------------------- daemons

munge_in_gamma_works() { in_gamma sh -c 'munge -n | unmunge' >/dev/null 2>&1; }
dbd_answers() { on_gamma timeout 10 sacctmgr -n -P show cluster >/dev/null 2>&1; }
ctld_answers() { on_gamma scontrol ping 2>/dev/null | grep -q 'is UP'; }
sshd_answers() { answers_on "$gamma_addr" 22; }

start_munged() {
	if munge_in_gamma_works; then return; fi
	in_gamma start-stop-daemon --start --quiet --oknodo --chuid munge --pidfile /run/munge/munged.pid \
		--exec /usr/sbin/munged -- --key-file="$gamma_etc/munge/munge.key" \
		--seed-file="$gamma_var/munge/munged.seed" --log-file="$gamma_var/munge/munged.log" \
		--pid-file=/run/munge/munged.pid 9>&-
	wait_for 15 "gamma munged: started" munge_in_gamma_works ||
		fail_with_logs "gamma's munged did not start." "$gamma_var/munge/munged.log"
}

# start_in_gamma NAME EXECUTABLE CHECK [ARG...]: a daemon of gamma, restarted when its config changed.
start_in_gamma() {
	local name=$1 exe=$2 check=$3 pid log
	shift 3
	pid=$(pidfile_of "$name")
	log=$COREHOUR_LOG/$name.log
	if is_running "$pid" "$exe"; then
		if ! restart_marked "$name"; then return; fi
		say "${name/-/ }: configuration changed, restarting"
		stop_daemon "$name" "$exe"
	fi
	on_gamma start-stop-daemon --start --quiet --pidfile "$pid" --exec "$exe" -- "$@" \
		>>"$COREHOUR_LOG/$name.out" 2>&1 9>&- ||
		fail_with_logs "${name/-/ } did not start." "$COREHOUR_LOG/$name.out" "$log"
	clear_restart_mark "$name"
	wait_up "$start_timeout" "${name/-/ }: running" "$pid" "$exe" "$check" ||
		fail_with_logs "${name/-/ } does not answer." "$COREHOUR_LOG/$name.out" "$log"
}

slurmd_pid_written() { test -s "$(pidfile_of gamma-slurmd)"; }

register_accounting() {
	# The portal's login account keeps gamma's accounts and associations in step with the
	# ledger, as the hub's account does on the hub host (deploy/install.sh): Administrator,
	# because slurmdbd refuses `sacctmgr load` to an Operator. The cluster comes first: a
	# fresh slurmdbd refuses to add any user before it knows one.
	on_gamma timeout 30 sacctmgr -n -P show cluster format=cluster | grep -qx gamma ||
		on_gamma timeout 30 sacctmgr -i add cluster gamma >/dev/null
	if [ "$(on_gamma timeout 30 sacctmgr -n -P show user "$remote_user" format=adminlevel)" != Administrator ]; then
		on_gamma timeout 30 sacctmgr -i add user "$remote_user" account=root adminlevel=Administrator >/dev/null
		say "gamma: $remote_user is a Slurm administrator of gamma"
	fi
	if on_gamma timeout 30 sacctmgr -n -P show association where account="$COREHOUR_ACCOUNT" user= \
		format=cluster | grep -qx gamma; then
		return
	fi
	on_gamma timeout 30 sacctmgr -i add account "$COREHOUR_ACCOUNT" cluster=gamma \
		description="corehour portal users" organization=corehour >/dev/null
	say "gamma: its slurmdbd knows cluster gamma and account $COREHOUR_ACCOUNT"
}

node_state() { on_gamma sinfo -h -N -n gamma -o '%T' 2>/dev/null | head -n 1; }

wait_node_ready() {
	local state deadline=$((SECONDS + start_timeout)) resumed=no
	while :; do
		state=$(node_state)
		case "$state" in
		idle | mixed | allocated | completing) return ;;
		down | drained | draining | drain | fail | failing | inval)
			if [ "$resumed" = no ]; then
				on_gamma scontrol update nodename=gamma state=resume >/dev/null 2>&1 || true
				resumed=yes
			fi
			;;
		esac
		[ "$SECONDS" -lt "$deadline" ] ||
			fail_with_logs "gamma's node is '${state:-unknown}' after ${start_timeout}s, not idle." \
				"$COREHOUR_LOG/gamma-slurmd.log" "$COREHOUR_LOG/gamma-slurmctld.log"
		sleep 0.3
	done
}

cmd_start() {
	need_root
	command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] ||
		die "sshd is missing; run deploy/install-packages.sh first."
	ensure_network
	ensure_mounts
	ensure_remote_account
	ensure_keys
	ensure_munge_key
	ensure_db
	render_configs
	install -d -m 0755 /run/sshd
	start_munged
	start_in_gamma gamma-slurmdbd /usr/sbin/slurmdbd dbd_answers
	register_accounting
	start_in_gamma gamma-slurmctld /usr/sbin/slurmctld ctld_answers -f "$slurm_conf"
	start_in_gamma gamma-slurmd /usr/sbin/slurmd slurmd_pid_written -f "$slurm_conf"
	wait_node_ready
	start_in_gamma gamma-sshd /usr/sbin/sshd sshd_answers -f "$gamma_etc/sshd_config" \
		-E "$COREHOUR_LOG/gamma-sshd.log"
	say "gamma is up: ssh -F none -i $ssh_etc/id_ed25519 -o UserKnownHostsFile=$ssh_etc/known_hosts $remote_user@gamma"
}

cmd_stop() {
	need_root
	local name
	for name in sshd slurmd slurmctld slurmdbd; do stop_daemon "gamma-$name" "/usr/sbin/$name"; done
	if [ -e "$ns_dir/gamma.mnt" ] && nsenter --mount="$ns_dir/gamma.mnt" true 2>/dev/null; then
		in_gamma start-stop-daemon --stop --quiet --oknodo --pidfile /run/munge/munged.pid \
			--exec /usr/sbin/munged --retry TERM/10/KILL/5 || true
		say "gamma munged: stopped"
	fi
}

cmd_status() {
	local down=0 name pid
	if [ -e "/run/netns/$netns" ] && ip link show "$host_if" 2>/dev/null | grep -q 'state UP'; then
		status_line "gamma link" "up ($host_addr <-> $gamma_addr)"
	else
		status_line "gamma link" down
		down=1
	fi
	for name in slurmdbd slurmctld slurmd sshd; do
		pid=$(pidfile_of "gamma-$name")
		if is_running "$pid" "/usr/sbin/$name"; then
			status_line "gamma $name" "running (pid $(pid_in "$pid"))"
		else
			status_line "gamma $name" "not running"
			down=1
		fi
	done
	return "$down"
}

cmd_people() {
	need_root
	local person group existing
	existing=$(on_gamma timeout 30 sacctmgr -n -P show association where cluster=gamma \
		account="$COREHOUR_ACCOUNT" format=user)
	for person in "$@"; do
		id -u "$person" >/dev/null 2>&1 || die "no such user: $person."
		group=$(id -gn "$person")
		install -d -o "$person" -g "$group" -m 0700 "$gamma_var/home/$person"
		grep -qx "$person" <<<"$existing" && continue
		on_gamma timeout 30 sacctmgr -i add user "$person" account="$COREHOUR_ACCOUNT" cluster=gamma >/dev/null
		say "gamma: $person has a home and an association"
	done
}

usage() {
	sed -n '2,15s/^# \{0,1\}//p' "$0"
	exit 2
}

main() {
	local cmd=${1:-}
	[ $# -gt 0 ] && shift
	case "$cmd" in
	start | stop | people) take_lock ;;
	esac
	case "$cmd" in
	start) cmd_start ;;
	stop) cmd_stop ;;
	status) cmd_status ;;
	people) cmd_people "$@" ;;
	cut) need_root && ip link set "$host_if" down && say "gamma: link down" ;;
	mend) need_root && ip link set "$host_if" up && say "gamma: link up" ;;
	exec) need_root && in_gamma "$@" ;;
	*) usage ;;
	esac
}

main "$@"
