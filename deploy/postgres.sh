#!/usr/bin/env bash
# The local PostgreSQL, for a site that keeps the hub and the ledger there (docs/deploy.md).
#
#   deploy/postgres.sh ensure   start the cluster if it is down; make the portal's role and
#                               databases; keep its generated password in $COREHOUR_ENV_FILE
#   deploy/postgres.sh ensure-test-role
#                               the role TEST's PostgreSQL tier uses (CREATEDB, a password)
#
# The portal logs in as its own role (corehour: no superuser, owner of the databases corehour
# and corehour_hub) with a password, never through trust: corehour's block at the top of
# pg_hba.conf asks scram-sha-256 of that role before any line of the machine's own. corehour
# adds no trust line, and takes out the one that it used to add (it let every local user
# connect from 127.0.0.1 as the superuser). Lines the machine had before are left as they are,
# with a warning when they trust anyone: the tests' own PostgreSQL tier uses them.
#
# COREHOUR_PG_CLUSTER picks the cluster, as VERSION/NAME (default: the newest version's main).
# Without a PostgreSQL server nothing happens: the portal keeps SQLite.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/common.sh
. "$here/common.sh"

# COREHOUR_PG_ROLE names the role and its databases (deploy/install.sh passes the instance's).
role=${COREHOUR_PG_ROLE:-corehour}
[[ $role =~ ^[a-z_][a-z0-9_]{0,30}$ ]] || die "COREHOUR_PG_ROLE must be a lower-case SQL name, not '$role'."
databases=("$role" "${role}_hub" "${role}_identities")
# Each role has its own block in pg_hba.conf; the default role's markers are the ones older
# corehour releases wrote.
if [ "$role" = corehour ]; then
	hba_begin="# corehour begin: the portal's role logs in with its password only (deploy/postgres.sh)"
	hba_end="# corehour end"
else
	hba_begin="# corehour begin ($role): the portal's role logs in with its password only (deploy/postgres.sh)"
	hba_end="# corehour end ($role)"
fi
# COREHOUR_PG_USE=1 (a production install) writes the URLs as settings, not as comments.
use_urls=${COREHOUR_PG_USE:-0}
# What 8efa8d7 and earlier put at the top of pg_hba.conf: a comment, then the trust line.
old_trust_comment="# corehour: local test databases, no password from 127.0.0.1"

pg_version="" pg_name="" pg_port="" hba="" socket_dir=""

# Sets pg_version, pg_name, pg_port, hba and socket_dir; fails when there is no such cluster.
pick_cluster() {
	local spec=${COREHOUR_PG_CLUSTER:-} version
	if [ -z "$spec" ]; then
		version=$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)
		[ -n "$version" ] || return 1
		spec=$version/main
	fi
	pg_version=${spec%%/*}
	pg_name=${spec#*/}
	[ -d "/etc/postgresql/$pg_version/$pg_name" ] || return 1
	pg_port=$(pg_conftool -s "$pg_version" "$pg_name" show port 2>/dev/null || echo 5432)
	hba=$(pg_conftool -s "$pg_version" "$pg_name" show hba_file 2>/dev/null ||
		echo "/etc/postgresql/$pg_version/$pg_name/pg_hba.conf")
	hba=$(readlink -f "$hba")
	socket_dir=$(pg_conftool -s "$pg_version" "$pg_name" show unix_socket_directories 2>/dev/null |
		cut -d, -f1 | tr -d ' ')
	socket_dir=${socket_dir:-/var/run/postgresql}
}

ensure_cluster_running() {
	pg_lsclusters -h "$pg_version" "$pg_name" | awk '{ print $4 }' | grep -q '^online' && return 0
	pg_ctlcluster --skip-systemctl-redirect "$pg_version" "$pg_name" start
	local deadline=$((SECONDS + 10))
	until answers_on 127.0.0.1 "$pg_port" || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.2; done
	answers_on 127.0.0.1 "$pg_port" ||
		die "PostgreSQL $pg_version/$pg_name did not start; see /var/log/postgresql/."
	say "PostgreSQL $pg_version/$pg_name: running on 127.0.0.1:$pg_port"
}

hba_block() {
	printf '%s\n' "$hba_begin"
	printf 'local\tall\t%s\t\t\tscram-sha-256\n' "$role"
	printf 'host\tall\t%s\t127.0.0.1/32\tscram-sha-256\n' "$role"
	printf 'host\tall\t%s\t::1/128\t\tscram-sha-256\n' "$role"
	printf '%s\n' "$hba_end"
}

# pg_hba.conf with corehour's block first (rules match top down) and corehour's old trust line
# gone; everything else as it was.
ensure_hba() {
	local tmp
	tmp=$(mktemp "$hba.corehour.XXXXXX")
	{
		hba_block
		awk -v begin="$hba_begin" -v end="$hba_end" -v old="$old_trust_comment" '
			$0 == begin { inside = 1; next }
			inside { if ($0 == end) inside = 0; next }
			$0 == old { after_old = 1; next }
			after_old { after_old = 0; if ($0 ~ /^host[ \t]+all[ \t]+all[ \t]+127\.0\.0\.1\/32[ \t]+trust[ \t]*$/) next }
			{ print }' "$hba"
	} >"$tmp"
	if cmp -s "$tmp" "$hba"; then
		rm -f "$tmp"
		return 0
	fi
	chown --reference="$hba" "$tmp"
	chmod --reference="$hba" "$tmp"
	mv -f "$tmp" "$hba"
	say "PostgreSQL $pg_version/$pg_name: the role $role needs its password ($hba)"
}

# The machine's own lines that still trust someone; corehour leaves them, but says so.
warn_machine_trust() {
	local lines
	lines=$(grep -nE '^[[:space:]]*(local|host)[^#]*[[:space:]]trust([[:space:]]|$)' "$hba" || true)
	[ -n "$lines" ] || return 0
	say "warning: $hba trusts connections that corehour did not set up:"
	printf '%s\n' "$lines" | sed -E 's/^([0-9]+):/corehour:   line \1: /'
	say "  any local user may connect without a password as the roles they cover (the superuser" \
		"too). Fine for a test machine; in production use peer (local) and scram-sha-256 (host)."
}

# The portal's password, made once: the env file keeps it, root only, with the URLs a site
# uncomments to move the hub and the ledger from SQLite to PostgreSQL.
password=""
ensure_env_file() {
	local dir
	dir=$(dirname "$COREHOUR_ENV_FILE")
	install -d -m 0700 -o root -g root "$dir"
	chmod 0700 "$dir"
	[ -e "$COREHOUR_ENV_FILE" ] || install -m 0600 -o root -g root /dev/null "$COREHOUR_ENV_FILE"
	chown root:root "$COREHOUR_ENV_FILE"
	chmod 0600 "$COREHOUR_ENV_FILE"
	password=$(sed -n 's/^COREHOUR_PG_PASSWORD=//p' "$COREHOUR_ENV_FILE" | tail -n 1)
	[ -z "$password" ] || return 0
	password=$(random_password 32)
	local url=postgresql+psycopg://$role:$password@127.0.0.1:$pg_port off="#"
	local note="commented out, so they stay on SQLite; uncomment to move them"
	if [ "$use_urls" = 1 ]; then
		off=""
		note="set by deploy/install.sh --local-postgres"
	fi
	cat >>"$COREHOUR_ENV_FILE" <<EOF
# The portal's PostgreSQL role "$role" on $pg_version/$pg_name (made by deploy/postgres.sh).
COREHOUR_PG_PASSWORD=$password
# The ledger, the hub's database and sign-in identities on PostgreSQL ($note; the hub
# reads them at every start):
${off}COREHOUR_BILLING_DB=$url/${databases[0]}
${off}COREHOUR_HUB_DB_URL=$url/${databases[1]}
${off}COREHOUR_IDENTITY_DB_URL=$url/${databases[2]}
EOF
	say "generated the password of PostgreSQL role $role into $COREHOUR_ENV_FILE (root only)"
}

# The server stores a SCRAM verifier made here, so it never sees the password itself (not
# even in a statement log). The password comes on stdin.
scram_verifier() {
	python3 -c 'import base64, hashlib, hmac, os, sys
password = sys.stdin.readline().rstrip("\n").encode()
salt, rounds = os.urandom(16), 4096
salted = hashlib.pbkdf2_hmac("sha256", password, salt, rounds)
client_key = hmac.new(salted, b"Client Key", "sha256").digest()
server_key = hmac.new(salted, b"Server Key", "sha256").digest()
stored_key = hashlib.sha256(client_key).digest()
b64 = lambda data: base64.b64encode(data).decode()
print("SCRAM-SHA-256$%d:%s$%s:%s" % (rounds, b64(salt), b64(stored_key), b64(server_key)))'
}

as_superuser() {
	runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -h "$socket_dir" -p "$pg_port" -d postgres "$@"
}

ensure_role_and_databases() {
	local verifier db sql
	verifier=$(scram_verifier <<<"$password")
	sql="SELECT 'CREATE ROLE $role LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role')\\gexec
ALTER ROLE $role WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '$verifier';"
	for db in "${databases[@]}"; do
		sql+="
SELECT 'CREATE DATABASE $db OWNER $role' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db')\\gexec
ALTER DATABASE $db OWNER TO $role;
REVOKE ALL ON DATABASE $db FROM PUBLIC;"
	done
	as_superuser >/dev/null <<<"$sql" || die "could not make the PostgreSQL role $role; see the message above."
}

reload_config() {
	local errors
	as_superuser -Atc 'SELECT pg_reload_conf()' >/dev/null
	errors=$(as_superuser -Atc "SELECT line_number || ': ' || error FROM pg_hba_file_rules WHERE error IS NOT NULL")
	[ -z "$errors" ] || die "PostgreSQL refused $hba (it keeps the rules it had): $errors"
}

# The portal's own way in works: its role, its password, over TCP.
check_login() {
	local db
	for db in "${databases[@]}"; do
		PGPASSWORD=$password PGCONNECT_TIMEOUT=10 psql -X -q -w -h 127.0.0.1 -p "$pg_port" -U "$role" -d "$db" \
			-Atc 'SELECT 1' >/dev/null ||
			die "the PostgreSQL role $role cannot log in to $db with its password; see the message above."
	done
}

cmd_ensure() {
	need_root
	if ! postgres_server_installed || ! pick_cluster; then
		if [ -z "${COREHOUR_PG_CLUSTER:-}" ] && answers_on 127.0.0.1 5432; then
			say "PostgreSQL on 127.0.0.1:5432 is not a cluster of this machine's: make the portal's role there by hand (docs/deploy.md)"
			return 0
		fi
		postgres_server_installed || {
			say "PostgreSQL is not installed: the hub and the ledger stay on SQLite"
			return 0
		}
		[ -z "${COREHOUR_PG_CLUSTER:-}" ] || die "there is no PostgreSQL cluster $COREHOUR_PG_CLUSTER under /etc/postgresql."
		die "PostgreSQL is installed but has no cluster under /etc/postgresql; run pg_createcluster."
	fi
	ensure_cluster_running
	ensure_env_file
	ensure_role_and_databases
	ensure_hba
	reload_config
	warn_machine_trust
	check_login
	say "PostgreSQL $pg_version/$pg_name: role $role and databases ${databases[*]} ready (password in $COREHOUR_ENV_FILE)"
}

# The tests' own role (TEST's PostgreSQL tier): it makes and drops a database per test, so it
# may create databases, and nothing more. Its password is kept root-only like the portal's, so
# the tests never need a trust line, on this machine or on one where corehour installed
# PostgreSQL itself.
test_role=corehour_tests
test_env_file=$COREHOUR_SECRETS/tests.env

cmd_ensure_test_role() {
	need_root
	postgres_server_installed && pick_cluster ||
		die "TEST's PostgreSQL tier needs a PostgreSQL cluster on this machine; none was found."
	ensure_cluster_running
	install -d -m 0700 -o root -g root "$COREHOUR_SECRETS"
	[ -e "$test_env_file" ] || install -m 0600 -o root -g root /dev/null "$test_env_file"
	chmod 0600 "$test_env_file"
	password=$(sed -n 's/^COREHOUR_TEST_PG_PASSWORD=//p' "$test_env_file" | tail -n 1)
	if [ -z "$password" ]; then
		password=$(random_password 32)
		printf 'COREHOUR_TEST_PG_PASSWORD=%s\nCOREHOUR_TEST_PG_PORT=%s\n' "$password" "$pg_port" >>"$test_env_file"
	fi
	local verifier
	verifier=$(scram_verifier <<<"$password")
	as_superuser >/dev/null <<<"SELECT 'CREATE ROLE $test_role LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$test_role')\\gexec
ALTER ROLE $test_role WITH LOGIN NOSUPERUSER CREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD '$verifier';" ||
		die "could not make the PostgreSQL role $test_role; see the message above."
	PGPASSWORD=$password PGCONNECT_TIMEOUT=10 psql -X -q -w -h 127.0.0.1 -p "$pg_port" -U "$test_role" \
		-d postgres -Atc 'SELECT 1' >/dev/null ||
		die "the PostgreSQL role $test_role cannot log in with its password over 127.0.0.1; check $hba."
	say "PostgreSQL $pg_version/$pg_name: the tests' role $test_role is ready (password in $test_env_file)"
}

case "${1:-}" in
ensure) cmd_ensure ;;
ensure-test-role) cmd_ensure_test_role ;;
*)
	sed -n '4,7p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
