#!/usr/bin/env bash
# Installs what corehour needs from Debian (12 or 13), plus configurable-http-proxy from npm.
# When everything is present it touches neither apt nor npm and takes well under a second.
#
# Database servers are installed only when nothing answers on their port, so a machine
# that already runs MariaDB (127.0.0.1:3306) or PostgreSQL (127.0.0.1:5432) keeps its own.
# deploy/postgres.sh then starts PostgreSQL and gives the portal its own role with a password;
# it adds no trust line to pg_hba.conf.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/common.sh
. "$here/common.sh"

chp_version=5.3.0

#   deploy/install-packages.sh             the demo and TEST: local clusters, databases, Chromium
#   deploy/install-packages.sh production  the portal only (deploy/install.sh): the site brings
#                                          its Slurm clients and, usually, its PostgreSQL
profile=${1:-demo}
case $profile in demo | production) ;; *) die "usage: $0 [demo|production]" ;; esac

# No python3-pip: virtual environments get pip from python3-venv. postgresql-client: pg_dump
# and pg_restore for backups.
packages=(sudo python3-venv python3-dev git curl ca-certificates procps iproute2 postgresql-client)
if [ "$profile" = demo ]; then
	# libnss3-tools: certutil, to make TEST's Chromium trust its own certificate authority.
	packages+=(munge slurm-wlm slurmdbd mariadb-client chromium chromium-driver fonts-liberation libnss3-tools)
	# nginx: TEST runs the shipped front-server example (deploy/nginx) in front of a portal.
	packages+=(nginx)
	# openssh-server: the sshd of gamma, the remote centre of the test bed (deploy/gamma.sh).
	# It never runs on the host: policy-rc.d below keeps the package from starting it.
	packages+=(openssh-server rsync)
	# prometheus: TEST runs Debian's Prometheus with the shipped scrape configuration
	# (deploy/prometheus); policy-rc.d below keeps the package from starting its own.
	packages+=(prometheus)
	# exim4-daemon-light: the local mail server notifications are delivered through in the
	# demo and TEST (deploy/mail.sh); Debian configures it for local delivery only.
	packages+=(exim4-daemon-light)
	# The images' own Debian packages (images/*/debian-packages.txt): in the demo this host is
	# every cluster's node.  xdotool, xclip, x11-utils: TEST drives and reads the desktop's X.
	mapfile -t image_packages < <(grep -hvE '^(#|$)' "$here"/../images/*/debian-packages.txt)
	packages+=("${image_packages[@]}" xdotool xclip x11-utils)
fi

installed_packages() {
	dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null | awk '$2 == "installed" { print $1 }' || true
}

# What is missing, as a list of Debian packages.
missing_packages() {
	local have p
	have=$(installed_packages "${packages[@]}" mariadb-server)
	for p in "${packages[@]}"; do
		grep -qx "$p" <<<"$have" || echo "$p"
	done
	# NodeSource's nodejs bundles npm and conflicts with Debian's npm: judge by the commands.
	command -v node >/dev/null || echo nodejs
	command -v npm >/dev/null || echo npm
	[ "$profile" = demo ] || return 0
	if ! answers_on 127.0.0.1 3306 && ! grep -qx mariadb-server <<<"$have"; then echo mariadb-server; fi
	if ! answers_on 127.0.0.1 5432 && ! postgres_server_installed; then echo postgresql; fi
}

apt_install() {
	local policy=/usr/sbin/policy-rc.d made_policy=no
	# Package scripts must not start daemons here (there is no init system to manage them);
	# deploy/clusters.sh starts what corehour needs.
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		made_policy=yes
	fi
	say "installing from Debian: $*"
	export DEBIAN_FRONTEND=noninteractive
	local rc=0
	{ apt-get update -q && apt-get install -y -q --no-install-recommends "$@"; } || rc=$?
	[ "$made_policy" = no ] || rm -f "$policy"
	[ "$rc" -eq 0 ] || die "apt-get failed (exit $rc); see the messages above."
}

ensure_proxy() {
	if command -v configurable-http-proxy >/dev/null; then return; fi
	say "installing configurable-http-proxy@$chp_version with npm"
	npm install -g --no-fund --no-audit --loglevel=error "configurable-http-proxy@$chp_version" >/dev/null
	command -v configurable-http-proxy >/dev/null || die "npm installed configurable-http-proxy, but it is not on PATH."
}

main() {
	need_root
	local missing
	mapfile -t missing < <(missing_packages)
	if [ ${#missing[@]} -gt 0 ]; then
		apt_install "${missing[@]}"
	else
		say "Debian packages: all present"
	fi
	ensure_proxy
	if [ "$profile" = production ]; then
		command -v sbatch >/dev/null && command -v squeue >/dev/null && command -v sacct >/dev/null ||
			die "this host has no Slurm client commands (sbatch, squeue, sacct): install the site's Slurm clients first."
		say "packages ready: slurm clients $(sbatch --version), node $(node --version)," \
			"configurable-http-proxy $(configurable-http-proxy --version 2>/dev/null || echo '?')"
		return 0
	fi
	"$here/postgres.sh" ensure
	say "packages ready: slurm $(slurmd -V | awk '{print $NF}'), node $(node --version)," \
		"configurable-http-proxy $(configurable-http-proxy --version 2>/dev/null || echo '?')"
}

main "$@"
