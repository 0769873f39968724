# shellcheck shell=bash disable=SC2034 # the variables are used by the scripts that source this
# Shared by the deploy/ scripts: the fixed paths other code relies on, and small helpers.
# Sourced, not run.

COREHOUR_SLURM_ETC=/etc/corehour/slurm
COREHOUR_VAR=/var/lib/corehour
COREHOUR_LOG=/var/log/corehour
COREHOUR_RUN=/run/corehour
COREHOUR_CLUSTERS=(alpha beta)
COREHOUR_ACCOUNT=corehour
# Root only (0700/0600): generated passwords and database URLs, never in the repository or
# on a command line. deploy/postgres.sh writes the portal's role there; deploy/hub.sh reads it.
COREHOUR_SECRETS=/etc/corehour/secrets
COREHOUR_ENV_FILE=${COREHOUR_ENV_FILE:-$COREHOUR_SECRETS/portal.env}

say() { printf 'corehour: %s\n' "$*"; }
die() {
	printf 'corehour: error: %s\n' "$*" >&2
	exit 1
}

need_root() {
	[ "$(id -u)" = 0 ] || die "$(basename "$0") must run as root (it manages users and system daemons)."
}

slurm_conf_of() { printf '%s/%s/slurm.conf' "$COREHOUR_SLURM_ETC" "$1"; }

# Run a Slurm client command against one cluster: on_cluster alpha squeue --json
on_cluster() {
	local cluster=$1
	shift
	SLURM_CONF=$(slurm_conf_of "$cluster") "$@"
}

# sacctmgr talks to the slurmdbd that both clusters share; alpha's config names it.
sacctmgr_i() { on_cluster alpha timeout 30 sacctmgr -i "$@"; }
sacctmgr_q() { on_cluster alpha timeout 30 sacctmgr -n -P "$@"; }

postgres_server_installed() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; }

answers_on() { timeout 2 bash -c ": </dev/tcp/$1/$2" 2>/dev/null; }

random_password() { LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c "${1:-20}" || true; }

# The hub's own account: JupyterHub, the proxy and the services run as it in production, and
# act as people only through the sudo rule (deploy/sudo.sh). Its primary group is its own,
# never the portal group: it must not count as a person.
COREHOUR_HUB_USER=${COREHOUR_HUB_USER:-corehour}
COREHOUR_HUB_GROUP=${COREHOUR_HUB_GROUP:-corehour-hub}

ensure_hub_account() {
	local home=${1:-/nonexistent}
	getent group "$COREHOUR_HUB_GROUP" >/dev/null || groupadd --system "$COREHOUR_HUB_GROUP"
	if ! id -u "$COREHOUR_HUB_USER" >/dev/null 2>&1; then
		useradd --system --gid "$COREHOUR_HUB_GROUP" --home-dir "$home" --no-create-home \
			--shell /usr/sbin/nologin --comment "corehour portal" "$COREHOUR_HUB_USER"
		say "created the system account $COREHOUR_HUB_USER (group $COREHOUR_HUB_GROUP)"
	fi
}
