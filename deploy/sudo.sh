#!/usr/bin/env bash
# The sudo rule that lets the portal act as its people, and nothing more.
#
#   deploy/sudo.sh ensure     render deploy/sudoers/corehour.in, check it with visudo -c,
#                             install it as /etc/sudoers.d/corehour (0440)
#   deploy/sudo.sh render     print the rendered rule
#
# The hub account is COREHOUR_HUB_USER (default corehour: the account the production hub
# runs as); the portal group is the site's hub.allowed_groups (default corehour).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/common.sh
. "$here/common.sh"

hub_user=$COREHOUR_HUB_USER
portal_group=${COREHOUR_PORTAL_GROUP:-corehour}
target=/etc/sudoers.d/corehour

render() {
	[[ $hub_user =~ ^[a-z_][a-z0-9_-]{0,31}$ && $portal_group =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] ||
		die "COREHOUR_HUB_USER and COREHOUR_PORTAL_GROUP must be Unix names."
	sed -e "s/@HUB_USER@/$hub_user/g" -e "s/@PORTAL_GROUP@/$portal_group/g" \
		"$here/sudoers/corehour.in"
}

ensure_sudo_rule() {
	local fresh
	command -v visudo >/dev/null || die "sudo is not installed; run deploy/install-packages.sh first."
	fresh=$(mktemp /etc/sudoers.d/.corehour.XXXXXX)
	render >"$fresh"
	chmod 0440 "$fresh"
	if ! visudo -c -q -f "$fresh" >/dev/null; then
		rm -f "$fresh"
		die "the rendered sudo rule does not pass visudo -c; /etc/sudoers.d is unchanged."
	fi
	if cmp -s "$fresh" "$target"; then
		rm -f "$fresh"
		return 0
	fi
	mv "$fresh" "$target"
	visudo -c -q >/dev/null || die "visudo -c fails with $target installed; check /etc/sudoers.d."
	say "sudo: $hub_user may run Slurm commands as members of $portal_group ($target)"
}

case "${1:-}" in
ensure)
	need_root
	ensure_hub_account
	ensure_sudo_rule
	;;
render) render ;;
*)
	sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
