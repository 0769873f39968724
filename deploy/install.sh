#!/usr/bin/env bash
# corehour's production install (docs/deploy.md), run as root on a submit host of the site's
# clusters, from the centre's own site file:
#
#   deploy/install.sh --site FILE [--instance NAME] [--local-postgres] [--no-start]
#
#   --site FILE        the centre's site file; copied to /etc/NAME/site.yaml
#   --instance NAME    names the units (NAME-proxy, NAME-hub), /etc/NAME and /var/lib/NAME
#                      (default corehour)
#   --local-postgres   the hub's database, the ledger and identities on this machine's
#                      PostgreSQL, in a role NAME with a generated password
#   --no-start         install and check, but start nothing
#
# It makes no demo users and no local clusters. JupyterHub, the proxy and the services run as
# the system account corehour, which acts as people only through the sudo rule. Every step is
# idempotent: run it again after changing the site file or upgrading corehour.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
# shellcheck source=deploy/common.sh
. "$here/common.sh"

site_source="" instance=corehour local_postgres=no start=yes
usage() {
	sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--site) site_source=${2:?--site needs a file} && shift 2 ;;
	--instance) instance=${2:?--instance needs a name} && shift 2 ;;
	--local-postgres) local_postgres=yes && shift ;;
	--no-start) start=no && shift ;;
	*) usage ;;
	esac
done
[ -n "$site_source" ] || usage
[ -f "$site_source" ] || die "no site file at $site_source."
[[ $instance =~ ^[a-z][a-z0-9-]{0,30}$ ]] || die "--instance must be a short lower-case name, not '$instance'."

venv=/opt/corehour/portal
etc=/etc/$instance
secrets=$etc/secrets
site=$etc/site.yaml
state=/var/lib/$instance/hub
units=/etc/systemd/system

step() {
	local started=$SECONDS
	say "== $1"
	shift
	"$@"
	say "   done in $((SECONDS - started)) s"
}

# Asks the site file (with the portal's own code) for one value; fails with its message.
site_value() {
	"$venv/bin/python" - "$site" "$@" <<'EOF'
import sys
from centre.site import SiteConfigError, load_site
from centre.proxy_command import proxy_argv
try:
    site = load_site(sys.argv[1])
except SiteConfigError as e:
    sys.exit(f"corehour: {e}")
what = sys.argv[2]
if what == "auth":
    print(site.auth.kind)
elif what == "portal_group":
    print(site.hub.allowed_groups[0] if site.hub.allowed_groups else "")
elif what == "tls_files":
    print(site.hub.tls.certificate, site.hub.tls.key) if site.hub.tls.mode == "proxy" else None
elif what == "bind_url":
    print(site.hub.bind_url)
elif what == "clusters":
    for cluster in site.clusters.values():
        print(cluster.slurm_conf or "")
elif what == "ledger":
    print(site.billing.database_url if site.billing else "")
elif what == "control_dirs":
    for cluster in site.clusters.values():
        print(cluster.ssh.control_dir) if cluster.ssh else None
elif what == "proxy_argv":
    print("\n".join(proxy_argv(site.hub, sys.argv[3] if len(sys.argv) > 3 else "configurable-http-proxy")))
EOF
}

install_site_file() {
	install -d -m 0755 "$etc"
	install -m 0644 "$site_source" "$site.new"
	mv -f "$site.new" "$site"
	site_value auth >/dev/null # validates it; a bad file stops here with the key named
	say "site file: $site"
}

check_tls_files() {
	local cert key
	read -r cert key <<<"$(site_value tls_files)"
	[ -n "$cert" ] || return 0
	for file in "$cert" "$key"; do
		[ -f "$file" ] || die "tls: no file at $file (hub.tls in $site)."
		runuser -u "$COREHOUR_HUB_USER" -- test -r "$file" ||
			die "tls: $COREHOUR_HUB_USER cannot read $file; run 'chgrp $COREHOUR_HUB_GROUP $file; chmod 0640 $file'."
	done
}

# Root's secrets, read by systemd before it drops to the hub's account: the proxy's API token
# (both units), and the database URLs with their password (the hub only).
ensure_secrets() {
	install -d -m 0700 -o root -g root "$secrets"
	local proxy_env=$secrets/proxy.env
	if ! grep -qs '^CONFIGPROXY_AUTH_TOKEN=.' "$proxy_env"; then
		(umask 077 && printf 'CONFIGPROXY_AUTH_TOKEN=%s\n' "$(random_password 48)" >"$proxy_env")
	fi
	[ -e "$secrets/portal.env" ] || install -m 0600 -o root -g root /dev/null "$secrets/portal.env"
	chown root:root "$proxy_env" "$secrets/portal.env"
	chmod 0600 "$proxy_env" "$secrets/portal.env"
	if [ "$local_postgres" = yes ]; then
		COREHOUR_ENV_FILE=$secrets/portal.env COREHOUR_PG_ROLE=${instance//-/_} COREHOUR_PG_USE=1 \
			"$here/postgres.sh" ensure
	fi
	if ! grep -qs '^COREHOUR_BILLING_DB=.' "$secrets/portal.env"; then
		say "warning: no COREHOUR_BILLING_DB in $secrets/portal.env: the ledger stays where the site file says ($(site_value ledger));" \
			"production keeps it on PostgreSQL (--local-postgres, or set the URLs there; docs/deploy.md)"
	fi
}

# The hub's state (its cookie secret, the proxy token, SQLite files if any) is the hub
# account's alone, and so is a SQLite ledger's folder.
ensure_state() {
	install -d -m 0755 "/var/lib/$instance"
	install -d -m 0700 -o "$COREHOUR_HUB_USER" -g "$COREHOUR_HUB_GROUP" "$state"
	chown -R "$COREHOUR_HUB_USER:$COREHOUR_HUB_GROUP" "$state"
	chmod -R go-rwx "$state"
	local ledger path
	ledger=$(site_value ledger)
	if [[ $ledger == sqlite:///* ]] && ! grep -qs '^COREHOUR_BILLING_DB=.' "$secrets/portal.env"; then
		path=${ledger#sqlite:///}
		path=/${path#/}
		install -d -m 0700 -o "$COREHOUR_HUB_USER" -g "$COREHOUR_HUB_GROUP" "$(dirname "$path")"
	fi
	# The sockets of the shared ssh connections to other centres: the hub account's alone
	# (docs/centres.md). Under /run they go at reboot; the hub unit makes them again.
	local dir
	while read -r dir; do
		[ -n "$dir" ] || continue
		install -d -m 0700 -o "$COREHOUR_HUB_USER" -g "$COREHOUR_HUB_GROUP" "$dir"
	done < <(site_value control_dirs)
}

ensure_sudo_rule() {
	local group
	group=$(site_value portal_group)
	[ -n "$group" ] || die "hub.allowed_groups is empty in $site: name the Unix group of the portal's people."
	COREHOUR_PORTAL_GROUP=$group "$here/sudo.sh" ensure
}

# The billing service adds Slurm accounts and associations in one `sacctmgr load` per cluster
# (billing_hooks/slurm_accounts.py) and holds exhausted accounts: slurmdbd lets only an
# Administrator load files (an Operator is refused). Root can grant that where it is a Slurm
# administrator; otherwise the site's Slurm admin runs the printed command.
slurm_admin_level=Administrator
ensure_slurm_admin() {
	local conf level
	while read -r conf; do
		export SLURM_CONF=${conf:-/etc/slurm/slurm.conf}
		level=$(timeout 30 sacctmgr -n -P show user "$COREHOUR_HUB_USER" format=adminlevel 2>/dev/null || true)
		[ "$level" = "$slurm_admin_level" ] && continue
		if ! timeout 30 sacctmgr -i add user "$COREHOUR_HUB_USER" account=root adminlevel="$slurm_admin_level" >/dev/null 2>&1 &&
			! timeout 30 sacctmgr -i modify user "$COREHOUR_HUB_USER" set adminlevel="$slurm_admin_level" >/dev/null 2>&1; then
			say "warning: could not make $COREHOUR_HUB_USER a Slurm $slurm_admin_level ($SLURM_CONF); ask the Slurm admin to run:" \
				"sacctmgr add user $COREHOUR_HUB_USER account=root adminlevel=$slurm_admin_level"
		fi
	done < <(site_value clusters | sort -u)
	unset SLURM_CONF
}

render_unit() {
	local template=$1 target=$2 proxy_argv supplementary=""
	proxy_argv=$(site_value proxy_argv "$(command -v configurable-http-proxy)" | tr '\n' ' ')
	[[ $proxy_argv =~ ^[A-Za-z0-9_./:=@+\ -]+$ ]] || die "the proxy's command line has characters a unit cannot carry: $proxy_argv"
	# PAM reads /etc/shadow to check a password: only then is the hub in the shadow group.
	[ "$(site_value auth)" = pam ] && supplementary=shadow
	local dirs make_dirs=/bin/true
	dirs=$(site_value control_dirs | tr '\n' ' ')
	if [ -n "${dirs// /}" ]; then
		[[ $dirs =~ ^[A-Za-z0-9_./+\ -]+$ ]] || die "an ssh control_dir has characters a unit cannot carry: $dirs"
		make_dirs="/usr/bin/install -d -m 0700 -o $COREHOUR_HUB_USER -g $COREHOUR_HUB_GROUP ${dirs% }"
	fi
	sed -e "s#@INSTANCE@#$instance#g" -e "s#@INSTALL_CONTROL_DIRS@#$make_dirs#g" -e "s#@HUB_USER@#$COREHOUR_HUB_USER#g" \
		-e "s#@HUB_GROUP@#$COREHOUR_HUB_GROUP#g" -e "s#@SECRETS@#$secrets#g" -e "s#@SITE@#$site#g" \
		-e "s#@STATE@#$state#g" -e "s#@VENV@#$venv#g" -e "s#@PROXY_ARGV@#${proxy_argv% }#g" \
		-e "s#@SUPPLEMENTARY_GROUPS@#$supplementary#g" "$template" >"$target.new"
	chmod 0644 "$target.new"
	mv -f "$target.new" "$target"
}

install_units() {
	install -d -m 0755 "$units"
	render_unit "$here/systemd/proxy.service.in" "$units/$instance-proxy.service"
	render_unit "$here/systemd/hub.service.in" "$units/$instance-hub.service"
	if command -v systemd-analyze >/dev/null; then
		systemd-analyze verify "$units/$instance-proxy.service" "$units/$instance-hub.service" ||
			die "systemd-analyze verify refuses the units in $units; see the message above."
	fi
	say "units: $units/$instance-proxy.service, $units/$instance-hub.service"
}

# Migrations are a deploy step: the ledger and the hub's database are brought to this
# version's schema here, as the hub's account, with the units' environment (docs/operations.md).
migrate() {
	(
		set -a
		# shellcheck source=/dev/null
		. "$secrets/portal.env"
		set +a
		cd "$state"
		COREHOUR_SITE=$site COREHOUR_STATE_DIR=$state LANG=C.UTF-8 HOME=$state \
			exec setpriv --reuid="$COREHOUR_HUB_USER" --regid="$COREHOUR_HUB_GROUP" --init-groups \
			"$venv/bin/corehour-ops" migrate --site "$site" --state-dir "$state"
	)
}

systemd_runs() { [ -d /run/systemd/system ]; }

start_units() {
	if ! systemd_runs; then
		say "systemd is not running on this machine: start the units' ExecStart as their User= by hand, or boot with systemd"
		return 0
	fi
	systemctl daemon-reload
	systemctl enable --now "$instance-proxy.service" "$instance-hub.service"
	systemctl restart "$instance-hub.service"
}

need_root
step "system packages (production: no browser, no local clusters)" "$here/install-packages.sh" production
step "the hub's system account" ensure_hub_account "/var/lib/$instance"
step "the portal's environment (corehour's wheel)" "$here/envs.sh" portal "$repo"
step "notebook images" "$here/envs.sh" images
step "app code for app servers" "$here/envs.sh" apps "$repo"
step "site file" install_site_file
step "TLS certificate and key" check_tls_files
step "secrets" ensure_secrets
step "state" ensure_state
step "sudo rule for acting as portal people" ensure_sudo_rule
step "Slurm admin level for $COREHOUR_HUB_USER" ensure_slurm_admin
step "systemd units" install_units
step "database schemas (migrate)" migrate
[ "$start" = no ] || step "start" start_units
cat <<EOF

corehour ($instance) is installed for $(site_value bind_url)
  units:    $instance-proxy.service, $instance-hub.service (logs: journalctl -u $instance-hub)
  site:     $site    secrets: $secrets (root only)    state: $state
  accounts: JupyterHub, the proxy and the services run as $COREHOUR_HUB_USER
EOF
