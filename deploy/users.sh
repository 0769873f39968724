#!/usr/bin/env bash
# Unix users for the portal, each with a Slurm association (account corehour) on every cluster,
# and, where the test bed's remote centre runs, a home and an association on gamma too.
#
#   deploy/users.sh ensure NAME [NAME...]       create missing users and associations
#   deploy/users.sh demo                        alice, bob (users) and hpcadmin (admin), with passwords
#   deploy/users.sh set-password NAME PASSWORD  for tests
#
# The demo passwords are made once and kept in /var/lib/corehour/demo-logins.txt (root only),
# one "name password role" line per user. The Slurm clusters must be running
# (deploy/clusters.sh start).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/common.sh
. "$here/common.sh"

logins_file=$COREHOUR_VAR/demo-logins.txt
demo_users=("alice user" "bob user" "hpcadmin admin")

# People's uids, as Debian's adduser hands them out; below is system accounts (root is 0),
# above are the reserved ranges and nobody. The hub's own rule is in centre/people.py.
min_uid=${COREHOUR_MIN_UID:-1000}
max_uid=59999

check_name() {
	local uid
	[[ $1 =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] ||
		die "'$1' is not a valid user name: use 1-32 lower-case letters, digits, '_' or '-', starting with a letter or '_'."
	uid=$(id -u "$1" 2>/dev/null) || return 0
	[ "$uid" -ge "$min_uid" ] && [ "$uid" -le "$max_uid" ] ||
		die "'$1' is a system account (uid $uid); portal people have uids $min_uid to $max_uid."
}

# Members of this Unix group may log in to the portal (site file: hub.allowed_groups).
portal_group=corehour

# Sets user_created=yes when the Unix user had to be made.
ensure_unix_user() {
	local name=$1
	user_created=no
	getent group "$portal_group" >/dev/null || groupadd "$portal_group"
	if ! id -u "$name" >/dev/null 2>&1; then
		useradd -m -s /bin/bash "$name"
		chmod 0700 "$(getent passwd "$name" | cut -d: -f6)"
		user_created=yes
		say "created Unix user $name"
	fi
	id -nG "$name" | tr ' ' '\n' | grep -qx "$portal_group" || usermod -aG "$portal_group" "$name"
}

# "user|cluster" lines of every association in the account; one slurmdbd query for all users.
associations=""
load_associations() {
	associations=$(sacctmgr_q show association where account="$COREHOUR_ACCOUNT" format=user,cluster) ||
		die "cannot reach slurmdbd; start the clusters first with deploy/clusters.sh start."
}

ensure_slurm_association() {
	local name=$1 c missing=() list
	for c in "${COREHOUR_CLUSTERS[@]}"; do
		grep -qx "$name|$c" <<<"$associations" || missing+=("$c")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	list=$(IFS=,; echo "${missing[*]}")
	sacctmgr_i add user "$name" account="$COREHOUR_ACCOUNT" defaultaccount="$COREHOUR_ACCOUNT" \
		cluster="$list" >/dev/null || die "could not add the Slurm association for $name on $list."
	say "Slurm: $name may now submit to account $COREHOUR_ACCOUNT on $list"
}

# gamma keeps its own homes and accounting, as a remote centre does (deploy/gamma.sh).
ensure_on_gamma() {
	"$here/gamma.sh" status >/dev/null 2>&1 || return 0
	"$here/gamma.sh" people "$@"
}

set_password() { printf '%s:%s\n' "$1" "$2" | chpasswd; }

cmd_ensure() {
	[ $# -gt 0 ] || die "usage: deploy/users.sh ensure NAME [NAME...]"
	local name
	for name in "$@"; do check_name "$name"; done
	load_associations
	for name in "$@"; do
		ensure_unix_user "$name"
		ensure_slurm_association "$name"
	done
	ensure_on_gamma "$@"
	say "users ready: $*"
}

recorded_password() { awk -v n="$1" '$1 == n { print $2; exit }' "$logins_file"; }

# Writes name's line (replacing an old one) into the logins file, keeping it root-only.
record_login() {
	local name=$1 password=$2 role=$3 tmp
	tmp=$(mktemp "$logins_file.XXXXXX")
	awk -v n="$name" '$1 != n' "$logins_file" >"$tmp"
	printf '%s %s %s\n' "$name" "$password" "$role" >>"$tmp"
	chmod 0600 "$tmp"
	mv -f "$tmp" "$logins_file"
}

cmd_demo() {
	install -d -m 0755 "$COREHOUR_VAR"
	[ -f "$logins_file" ] || install -m 0600 /dev/null "$logins_file"
	chmod 0600 "$logins_file"
	load_associations
	local entry name role password
	for entry in "${demo_users[@]}"; do
		read -r name role <<<"$entry"
		ensure_unix_user "$name"
		ensure_slurm_association "$name"
		ensure_on_gamma "$name"
		password=$(recorded_password "$name")
		if [ -z "$password" ]; then
			password=$(random_password 16)
			record_login "$name" "$password" "$role"
			set_password "$name" "$password"
			say "gave $name a new password"
		elif [ "$user_created" = yes ]; then
			set_password "$name" "$password"
		fi
	done
	say "demo logins (also in $logins_file):"
	awk '{ printf "corehour:   %-10s %-20s %s\n", $1, $2, $3 }' "$logins_file"
}

cmd_set_password() {
	[ $# -eq 2 ] || die "usage: deploy/users.sh set-password NAME PASSWORD"
	check_name "$1"
	id -u "$1" >/dev/null 2>&1 || die "no Unix user '$1'; create it with deploy/users.sh ensure $1."
	[[ $2 != *[[:space:]:]* && -n $2 ]] || die "the password must be non-empty, without spaces or ':'."
	set_password "$1" "$2"
	if [ -f "$logins_file" ] && [ -n "$(recorded_password "$1")" ]; then
		record_login "$1" "$2" "$(awk -v n="$1" '$1 == n { print $3; exit }' "$logins_file")"
	fi
	say "password of $1 set"
}

main() {
	local cmd=${1:-}
	[ $# -gt 0 ] && shift
	case "$cmd" in
	ensure | demo | set-password) need_root ;;
	*)
		sed -n '2,11s/^# \{0,1\}//p' "$0"
		exit 2
		;;
	esac
	case "$cmd" in
	ensure) cmd_ensure "$@" ;;
	demo) cmd_demo ;;
	set-password) cmd_set_password "$@" ;;
	esac
}

main "$@"
