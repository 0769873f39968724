# shellcheck shell=bash disable=SC2034
# Daemon helpers shared by deploy/clusters.sh (alpha, beta) and deploy/gamma.sh (the remote
# centre): pid files, waiting, rendering configs, restart marks. Sourced after common.sh, not run.
# The sourcing script sets restart_marks and start_timeout.

slurm_version() { slurmd -V | awk '{print $NF}'; }

# True when the installed Slurm is at least MAJOR.MINOR, e.g. version_at_least 24.05
version_at_least() { printf '%s\n%s\n' "$1" "$(slurm_version)" | sort -V -C; }

pidfile_of() { printf '%s/%s.pid' "$COREHOUR_RUN" "$1"; } # slurmctld-alpha, slurmdbd, ...

is_running() { # is_running PIDFILE EXECUTABLE
	start-stop-daemon --status --pidfile "$1" --exec "$2" >/dev/null 2>&1
}

pid_in() { cat "$1" 2>/dev/null || echo '?'; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
	local seconds=$1 what=$2 deadline
	shift 2
	deadline=$((SECONDS + seconds))
	until "$@" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.2
	done
	say "$what"
}

# wait_up SECONDS DESCRIPTION PIDFILE EXECUTABLE COMMAND... : like wait_for, but gives up
# early when the daemon has exited (after a grace period for it to write its pid file).
wait_up() {
	local seconds=$1 what=$2 pidfile=$3 exe=$4 started=$SECONDS
	shift 4
	until "$@" >/dev/null 2>&1; do
		[ $((SECONDS - started)) -lt "$seconds" ] || return 1
		if [ $((SECONDS - started)) -ge 3 ] && ! is_running "$pidfile" "$exe"; then return 1; fi
		sleep 0.2
	done
	say "$what"
}

show_logs() {
	local f
	for f in "$@"; do
		[ -s "$f" ] || continue
		printf 'corehour: --- last lines of %s ---\n' "$f" >&2
		tail -n 25 "$f" >&2
	done
}

fail_with_logs() { # fail_with_logs MESSAGE LOGFILE...
	local message=$1
	shift
	show_logs "$@"
	die "$message"
}

mark_restart() { mkdir -p "$restart_marks" && touch "$restart_marks/$1"; }
restart_marked() { [ -e "$restart_marks/$1" ]; }
clear_restart_mark() { rm -f "$restart_marks/$1"; }

# Starts a daemon without our lock descriptor, which it would otherwise hold for its lifetime.
launch() { start-stop-daemon --start "$@" 9>&-; }

mariadb_admin_cmd=()

find_mariadb_admin() {
	[ ${#mariadb_admin_cmd[@]} -eq 0 ] || return 0
	local candidates=()
	if [ -n "${COREHOUR_MYSQL_ADMIN_CNF:-}" ]; then
		candidates+=("mariadb --defaults-extra-file=$COREHOUR_MYSQL_ADMIN_CNF")
	fi
	# Debian's root@localhost logs in through the socket; some servers only allow TCP.
	candidates+=("mariadb -uroot" "mariadb -uroot --protocol=tcp -h127.0.0.1 --ssl-verify-server-cert=0")
	local c
	for c in "${candidates[@]}"; do
		# shellcheck disable=SC2086 # word splitting of the candidate is intended
		if $c -e 'SELECT 1' >/dev/null 2>&1; then
			read -r -a mariadb_admin_cmd <<<"$c"
			return 0
		fi
	done
	die "cannot log in to MariaDB on 127.0.0.1:3306 as an administrator to create the '$db_user' user. Set COREHOUR_MYSQL_ADMIN_CNF to a my.cnf file with admin credentials and run again."
}

# install_if_changed SOURCE DEST MODE MARK... : replace DEST only when its content differs,
# and ask for the named daemons to be restarted.
install_if_changed() {
	local src=$1 dest=$2 mode=$3
	shift 3
	if cmp -s "$src" "$dest"; then
		rm -f "$src"
		return
	fi
	chmod "$mode" "$src"
	mv -f "$src" "$dest"
	say "wrote $dest"
	local m
	for m in "$@"; do mark_restart "$m"; done
}

# render TEMPLATE DEST MODE "NAME=VALUE;NAME=VALUE" MARK... : fill @NAME@ placeholders.
# Substitution happens inside bash, so the database password never shows up in a process list.
render() {
	local template=$1 dest=$2 mode=$3 text tmp pair pairs
	IFS=';' read -r -a pairs <<<"$4"
	shift 4
	text=$(<"$template")
	for pair in "${pairs[@]}"; do text=${text//"@${pair%%=*}@"/"${pair#*=}"}; done
	if [[ $text =~ @[A-Z_]+@ ]]; then die "unfilled placeholder ${BASH_REMATCH[0]} in $template."; fi
	tmp=$(mktemp "$dest.XXXXXX")
	printf '%s\n' "$text" >"$tmp"
	install_if_changed "$tmp" "$dest" "$mode" "$@"
}

# The program Slurm runs on an unkillable step (UnkillableStepProgram in every test-bed cluster).
install_unkillable_program() {
	local tmp
	install -d -m 0755 /etc/corehour/slurm
	tmp=$(mktemp /etc/corehour/slurm/unkillable-step.XXXXXX)
	cat "$(dirname "${BASH_SOURCE[0]}")/slurm/unkillable-step" >"$tmp"
	install_if_changed "$tmp" /etc/corehour/slurm/unkillable-step 0755
	# Slurm's MailProg: job mails go to the portal, which writes them (docs/notifications.md).
	tmp=$(mktemp /etc/corehour/slurm/corehour-slurm-mail.XXXXXX)
	cat "$(dirname "${BASH_SOURCE[0]}")/slurm/corehour-slurm-mail" >"$tmp"
	install_if_changed "$tmp" /etc/corehour/slurm/corehour-slurm-mail 0755
	install -d -m 0700 /etc/corehour/slurm-mail.d
}

# slurmd initialises a cgroup plugin even when no job uses cgroups, and fails without a
# cgroup filesystem. Slurm 24.05+ can switch that off; 22.05 cannot, but its cgroup/v1
# plugin starts when pointed at any tmpfs directory and is then never used.
cgroup_settings() {
	if version_at_least 24.05; then
		echo "CgroupPlugin=disabled"
		return
	fi
	case "$(stat -f -c %T /sys/fs/cgroup 2>/dev/null)" in
	tmpfs | cgroup2fs) ;;
	*) printf 'CgroupPlugin=cgroup/v1\nCgroupMountpoint=%s\nCgroupAutomount=no\n' "$COREHOUR_RUN" ;;
	esac
}

stop_daemon() { # stop_daemon NAME EXECUTABLE
	local name=$1 exe=$2 pid
	pid=$(pidfile_of "$name")
	if ! is_running "$pid" "$exe"; then
		say "${name/-/ }: not running"
		return
	fi
	start-stop-daemon --stop --quiet --pidfile "$pid" --exec "$exe" --retry TERM/20/KILL/5 ||
		die "could not stop ${name/-/ } (pid $(pid_in "$pid"))."
	rm -f "$pid"
	say "${name/-/ }: stopped"
}

status_line() { printf 'corehour: %-16s %s\n' "$1" "$2"; }
