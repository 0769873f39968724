#!/usr/bin/env bash
# Builds corehour's Python environments from Debian's /usr/bin/python3.
#
#   deploy/envs.sh hub REPO_DIR   the hub's venv at $PREFIX/hub: pip install -e "REPO_DIR[test]"
#   deploy/envs.sh portal REPO_DIR
#                                 production's venv at $PREFIX/portal: corehour's wheel, built
#                                 from REPO_DIR, without the test extras
#   deploy/envs.sh image NAME     one notebook image, images/NAME/requirements.txt, as a venv at
#                                 $PREFIX/images/NAME, readable and runnable by every user
#   deploy/envs.sh images         every images/*/ folder (base first)
#   deploy/envs.sh apps REPO_DIR  the code app servers import, as pyproject.toml's
#                                 [tool.corehour] app-server-code lists it, world-readable in
#                                 $PREFIX/apps
#
# Each environment is built in a fresh folder NAME.<hash> beside its target, and only when it
# is complete and verified does the symlink NAME switch to it (by rename, so atomically).
# Building in place and moving the folder afterwards would break the venv: pip writes its path
# into every script's #! line. The hash covers the inputs (requirement files, the image's
# etc/ overlay, the Python version, the pip version, this recipe's version), so a second run with
# nothing changed only checks the stamp and stops. A job that still runs in the previous
# environment keeps it: the last two builds of each name are kept.
#
# Environment: COREHOUR_PREFIX (default /opt/corehour), COREHOUR_PYTHON (default
# /usr/bin/python3), COREHOUR_WHEELHOUSE (default /opt/wheels: local wheels, e.g. a CPU build
# of torch, that win over PyPI's build of the same version).
set -euo pipefail
umask 022

PREFIX=${COREHOUR_PREFIX:-/opt/corehour}
PYTHON=${COREHOUR_PYTHON:-/usr/bin/python3}
WHEELHOUSE=${COREHOUR_WHEELHOUSE:-/opt/wheels}
PIP_VERSION=26.3
# Bump when the build steps change in a way that needs existing environments rebuilt.
RECIPE_VERSION=1
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGES_DIR=$REPO_ROOT/images
LABEXTENSION_DIR=$IMAGES_DIR/labextension/prebuilt
STAMP=.corehour-stamp
# shellcheck source=deploy/common.sh
. "$REPO_ROOT/deploy/common.sh" # say, die

usage() {
	sed -n '2,8s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
	exit 2
}

elapsed_since() { # start -> seconds with one decimal
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

# step LABEL CMD...: runs CMD, then reports how long it took.
step() {
	local label=$1 t0=$EPOCHREALTIME
	shift
	say "  $label ..."
	"$@"
	say "  $label done ($(elapsed_since "$t0") s)"
}

# pip, with its own quiet output, minus the warnings this kind of machine's pip config prints for
# every package (file:// extra indexes that lack the package).
pip_in() {
	local venv=$1
	shift
	"$venv/bin/python" -m pip "$@" --progress-bar off -q 2>&1 |
		sed -u "/is ignored: it is neither a file nor a directory/d"
}

python_version() { "$PYTHON" -c 'import platform; print(platform.python_version())'; }

# Requirement files reachable from $1 through -r / -c lines, $1 first, one per line.
requirement_files() {
	local file=$1 dir line ref
	dir=$(dirname "$file")
	printf '%s\n' "$file"
	while read -r line; do
		case $line in
			-r\ * | -c\ * | --requirement\ * | --constraint\ *)
				ref=${line#* }
				ref=${ref#"${ref%%[![:space:]]*}"}
				requirement_files "$(cd "$dir" && realpath "$ref")"
				;;
		esac
	done <"$file"
}

# The image folders whose etc/ overlay goes into image $1: those it includes with -r, then its own.
overlay_dirs() {
	local f d
	requirement_files "$IMAGES_DIR/$1/requirements.txt" | tac | while read -r f; do
		d=$(dirname "$f")
		[ -d "$d/etc" ] && printf '%s\n' "$d/etc"
	done | awk '!seen[$0]++'
}

# Exact torch pin of image $1 (e.g. 2.13.0), or nothing.
torch_pin() {
	local f
	requirement_files "$IMAGES_DIR/$1/requirements.txt" | while read -r f; do
		sed -n 's/^torch==\([^ ;#]*\).*/\1/p' "$f"
	done | head -n 1
}

# A CPU wheel of torch==$1 for this interpreter in the wheelhouse, or nothing.
local_torch_wheel() {
	local tag
	tag=$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
	compgen -G "$WHEELHOUSE/torch-$1+cpu-$tag-$tag-*.whl" | head -n 1 || true
}

# Makes sure that what NAME points to is the build BUILD, replacing NAME by rename.
switch_to() {
	local link=$1 build=$2 old
	if [ -e "$link" ] && [ ! -L "$link" ]; then
		old="$link.replaced-$(date +%Y%m%d%H%M%S)"
		say "  $link is a real folder, not a corehour build link: moving it to $old"
		mv "$link" "$old"
	fi
	ln -sfn "$(basename "$build")" "$link.new"
	mv -T "$link.new" "$link"
}

# Removes builds of $1 other than the current one and the complete one before it (a job may
# still run in that one), and every unfinished build (no stamp). Runs under the lock, so no
# other build is in progress.
prune_builds() {
	local link=$1 kept=0 current b
	current=$(readlink "$link")
	while read -r b; do
		[ "$(basename "$b")" = "$current" ] && continue
		if [ -f "$b/$STAMP" ] && [ "$kept" -eq 0 ]; then
			kept=1
			continue
		fi
		say "  removing old build $b"
		rm -rf "$b"
	done < <(ls -1dt "$link".???????????? 2>/dev/null || true)
}

# Builds a venv at LINK.<hash>, unless the current one already has this stamp.
#   build_env LABEL LINK STAMP_TEXT INSTALL_FUNCTION CHECK_FUNCTION [ARGS...]
# Both functions get the build's folder and ARGS.
build_env() {
	local label=$1 link=$2 stamp_text=$3 install=$4 check=$5
	shift 5
	local hash build t0=$EPOCHREALTIME
	hash=$(printf '%s' "$stamp_text" | sha256sum | cut -c1-64)
	build="$link.${hash:0:12}"

	if [ -L "$link" ] && [ "$(readlink "$link")" = "$(basename "$build")" ] &&
		[ "$(head -n 1 "$build/$STAMP" 2>/dev/null)" = "$hash" ]; then
		say "$label: up to date ($link, stamp ${hash:0:12}), nothing to do ($(elapsed_since "$t0") s)"
		return 0
	fi

	say "$label: building $build"
	if [ -f "$build/$STAMP" ] && [ "$(head -n 1 "$build/$STAMP")" = "$hash" ]; then
		say "  a complete build with this stamp exists already; switching to it"
	else
		rm -rf "$build"
		step "create venv ($("$PYTHON" --version 2>&1))" "$PYTHON" -m venv "$build"
		step "install pip==$PIP_VERSION" pip_in "$build" install "pip==$PIP_VERSION"
		"$install" "$build" "$@"
		step "check dependencies (pip check)" "$build/bin/python" -m pip check -q
		step "make world-readable" chmod -R u+rwX,go+rX,go-w "$build"
		step "check the environment" "$check" "$build" "$@"
		{ printf '%s\n' "$hash"; printf '%s\n' "$stamp_text"; } >"$build/$STAMP"
		chmod 644 "$build/$STAMP"
	fi
	switch_to "$link" "$build"
	prune_builds "$link"
	say "$label: ready at $link -> $(readlink "$link") ($(elapsed_since "$t0") s in all)"
}

with_lock() {
	mkdir -p "$PREFIX"
	chmod 755 "$PREFIX"
	exec 9>"$PREFIX/.envs.lock"
	flock -n 9 || {
		say "another deploy/envs.sh is building in $PREFIX; waiting for it"
		flock 9
	}
}

# ---------------------------------------------------------------- hub

install_hub() {
	local venv=$1 repo=$2
	step "pip install -e ${repo}[test]" pip_in "$venv" install -e "${repo}[test]"
}

check_hub() {
	"$1/bin/python" -c 'import jupyterhub, batchspawner, centre, spawners, extensions, billing_hooks, roots'
}

cmd_hub() {
	local repo
	[ $# -eq 1 ] || usage
	repo=$(cd "$1" && pwd) || die "no such folder: $1"
	[ -f "$repo/pyproject.toml" ] || die "$repo has no pyproject.toml"
	local stamp_text
	stamp_text=$(
		printf 'recipe %s\npython %s\npip %s\nrepo %s\npyproject.toml sha256 %s\n' \
			"$RECIPE_VERSION" "$(python_version)" "$PIP_VERSION" "$repo" \
			"$(sha256sum <"$repo/pyproject.toml" | cut -c1-64)"
	)
	with_lock
	build_env "hub" "$PREFIX/hub" "$stamp_text" install_hub check_hub "$repo"
}

# ---------------------------------------------------------------- portal (production)

# A copy of what a wheel is built from: the checkout without its history, tests, benchmarks
# and build leftovers (setuptools would reuse a stale build/ folder).
wheel_source() {
	local repo=$1 into=$2
	tar -C "$repo" --exclude=./.git --exclude=./build --exclude='*.egg-info' \
		--exclude=./tests --exclude=./bench --exclude='__pycache__' -cf - . | tar -C "$into" -xf -
}

install_portal() {
	local venv=$1 repo=$2 source=$3 wheels
	wheels=$(mktemp -d)
	step "build corehour's wheel" pip_in "$venv" wheel --no-deps -w "$wheels" "$source"
	step "pip install the wheel (no test extras)" pip_in "$venv" install "$wheels"/corehour-*.whl
	rm -rf "$wheels"
}

check_portal() {
	"$1/bin/python" -c 'import jupyterhub, batchspawner, centre, spawners, extensions, billing_hooks, roots' &&
		[ -x "$1/bin/corehour-hub" ] && [ -x "$1/bin/corehour-ops" ] || return 1
	# Production carries no test tools (and never a browser: that is Debian's, for TEST only).
	if "$1/bin/python" -c 'import pytest' 2>/dev/null; then
		say "  the portal's environment has pytest: it must not get the test extras"
		return 1
	fi
}

cmd_portal() {
	[ $# -eq 1 ] || usage
	local repo source stamp_text
	repo=$(cd "$1" && pwd) || die "no such folder: $1"
	[ -f "$repo/pyproject.toml" ] || die "$repo has no pyproject.toml"
	source=$(mktemp -d)
	wheel_source "$repo" "$source"
	stamp_text=$(
		printf 'recipe %s\npython %s\npip %s\nsource sha256 %s\n' \
			"$RECIPE_VERSION" "$(python_version)" "$PIP_VERSION" \
			"$(cd "$source" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)"
	)
	with_lock
	build_env "portal" "$PREFIX/portal" "$stamp_text" install_portal check_portal "$repo" "$source"
	rm -rf "$source"
}

# ---------------------------------------------------------------- images

install_image() {
	local venv=$1 name=$2 req pin wheel constraints="" overlay
	req="$IMAGES_DIR/$name/requirements.txt"
	local -a extra=()
	pin=$(torch_pin "$name")
	if [ -n "$pin" ]; then
		wheel=$(local_torch_wheel "$pin")
		if [ -n "$wheel" ]; then
			# pip prefers 2.13.0+cpu over PyPI's 2.13.0 anyway (a local label sorts higher); this
			# makes sure it can never take the multi-GB CUDA build instead.
			say "  torch $pin: using the local CPU wheel $(basename "$wheel")"
			constraints="$venv/.corehour-torch-constraint.txt"
			printf 'torch==%s+cpu\n' "$pin" >"$constraints"
			extra=(--find-links "$WHEELHOUSE" -c "$constraints")
		else
			say "  torch $pin: no local CPU wheel for this Python in $WHEELHOUSE; pip takes PyPI's" \
				"build (on Linux x86_64 a CUDA build, several GB)"
		fi
	fi
	# pip also writes every module's .pyc (users cannot write __pycache__ in a shared prefix,
	# so a missing one would be compiled again at every server start, in every job).
	step "pip install -r images/$name/requirements.txt" \
		pip_in "$venv" install -r "$req" "${extra[@]}"
	rm -f "$constraints"

	for overlay in $(overlay_dirs "$name"); do
		step "copy ${overlay#"$REPO_ROOT"/} into the venv" cp -R "$overlay/." "$venv/etc/"
	done
	# JupyterLab's status bar item for the job's live use (built once, from source, by
	# images/labextension/build.sh; JupyterLab loads a prebuilt extension from this folder).
	mkdir -p "$venv/share/jupyter/labextensions/@corehour"
	step "copy images/labextension/prebuilt into the venv" \
		cp -R "$LABEXTENSION_DIR/." "$venv/share/jupyter/labextensions/@corehour/usage/"
	# JupyterLab's settings for every person: no news pop-up (the jobs reach no news feed).
	mkdir -p "$venv/share/jupyter/lab/settings"
	step "copy images/labextension/overrides.json into the venv" \
		cp "$LABEXTENSION_DIR/../overrides.json" "$venv/share/jupyter/lab/settings/overrides.json"
	return 0
}

as_nobody() (
	cd /
	if command -v runuser >/dev/null; then
		runuser -u nobody -- "$@"
	else
		setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
	fi
)

# The server must start for any user: run the imports as nobody.
check_image() {
	local venv=$1 name=$2 pin s
	pin=$(torch_pin "$name")
	as_nobody "$venv/bin/python" -c pass ||
		die "user nobody cannot run $venv/bin/python: $PYTHON and every folder above it must be world-readable"
	# Users cannot write __pycache__ in the shared prefix: without the .pyc files pip writes at
	# install time, every server start would compile its modules again (3x slower here).
	as_nobody "$venv/bin/python" -c '
import importlib.util, os, sys
import ipywidgets, jupyter_server.serverapp, jupyterhub.singleuser, jupyterlab, msgspec, voila
prefix = os.path.realpath(sys.prefix)
missing = [
    m.__file__ for m in list(sys.modules.values())
    if (getattr(m, "__file__", None) or "").endswith(".py")
    and os.path.realpath(m.__file__).startswith(prefix)
    and not os.path.exists(importlib.util.cache_from_source(m.__file__))
]
if missing:
    sys.exit(f"corehour: error: no bytecode for {len(missing)} server modules, e.g. {missing[0]}")
'
	for s in jupyterhub-singleuser jupyter-lab; do
		[ -x "$venv/bin/$s" ] || die "$venv/bin/$s is missing"
	done
	if [ -n "$pin" ]; then
		local got
		got=$(as_nobody "$venv/bin/python" -c 'import torch; print(torch.__version__)')
		case $got in
			"$pin" | "$pin"+*) say "  torch $got" ;;
			*) die "torch $got installed, but images pin torch==$pin" ;;
		esac
	fi
}

image_names() {
	local d
	# base first: other images include its requirements.
	[ -f "$IMAGES_DIR/base/requirements.txt" ] && echo base
	for d in "$IMAGES_DIR"/*/; do
		d=$(basename "$d")
		[ "$d" != base ] && [ -f "$IMAGES_DIR/$d/requirements.txt" ] && echo "$d"
	done
	return 0
}

image_stamp_text() {
	local name=$1 f pin
	printf 'recipe %s\npython %s\npip %s\n' "$RECIPE_VERSION" "$(python_version)" "$PIP_VERSION"
	requirement_files "$IMAGES_DIR/$name/requirements.txt" | while read -r f; do
		printf '%s sha256 %s\n' "${f#"$REPO_ROOT"/}" "$(sha256sum <"$f" | cut -c1-64)"
	done
	for f in $(overlay_dirs "$name"); do
		printf '%s sha256 %s\n' "${f#"$REPO_ROOT"/}" \
			"$(cd "$f" && find . -type f | LC_ALL=C sort | xargs -r sha256sum | sha256sum | cut -c1-64)"
	done
	printf 'labextension sha256 %s\n' \
		"$(cd "$LABEXTENSION_DIR/.." && find prebuilt overrides.json -type f | LC_ALL=C sort | xargs -r sha256sum | sha256sum | cut -c1-64)"
	pin=$(torch_pin "$name")
	[ -n "$pin" ] && printf 'torch wheel %s\n' "$(basename "$(local_torch_wheel "$pin")" 2>/dev/null)"
	return 0
}

cmd_image() {
	local name=$1
	[ -f "$IMAGES_DIR/$name/requirements.txt" ] || die "no image '$name': $IMAGES_DIR/$name/requirements.txt is missing"
	mkdir -p "$PREFIX/images"
	chmod 755 "$PREFIX/images"
	build_env "image $name" "$PREFIX/images/$name" "$(image_stamp_text "$name")" \
		install_image check_image "$name"
}

cmd_images() {
	local name t0=$EPOCHREALTIME
	for name in $(image_names); do
		cmd_image "$name"
	done
	say "images: all done ($(elapsed_since "$t0") s)"
}

# ---------------------------------------------------------------- apps

# App notebooks run in a person's job with an image's Python; they import the shared kernel
# (centre/) and the app kit, and every server's job runs the launcher first, so these must be
# readable by everyone.  What goes is declared once, in pyproject.toml.
app_server_code() {
	"$PYTHON" -c 'import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["tool"]["corehour"]["app-server-code"]))' "$1/pyproject.toml"
}

cmd_apps() {
	local repo=$1 target=$PREFIX/apps fresh path
	[ -d "$repo/voila_apps" ] || die "$repo has no voila_apps/ folder"
	mkdir -p "$PREFIX"
	fresh=$(mktemp -d "$PREFIX/apps.new.XXXXXX")
	while read -r path; do
		[ -e "$repo/$path" ] || die "pyproject.toml lists $path as app server code, but $repo has none"
		mkdir -p "$fresh/$(dirname "$path")"
		cp -r "$repo/$path" "$fresh/$path"
	done < <(app_server_code "$repo")
	find "$fresh" -name __pycache__ -prune -exec rm -rf {} +
	chmod -R u=rwX,go=rX "$fresh"
	rm -rf "$target.old"
	[ -e "$target" ] && mv "$target" "$target.old"
	mv "$fresh" "$target"
	rm -rf "$target.old"
	say "apps: installed at $target"
}

# ---------------------------------------------------------------- main

main() {
	[ $# -ge 1 ] || usage
	[ -x "$PYTHON" ] || die "$PYTHON not found (deploy/install-packages.sh installs python3 and python3-venv)"
	"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null ||
		die "$PYTHON cannot make venvs: apt-get install python3-venv"
	local t0=$EPOCHREALTIME cmd=$1
	shift
	case $cmd in
		hub) cmd_hub "$@" ;;
		portal) cmd_portal "$@" ;;
		image)
			[ $# -eq 1 ] || usage
			with_lock
			cmd_image "$1"
			;;
		images)
			[ $# -eq 0 ] || usage
			with_lock
			cmd_images
			;;
		apps)
			[ $# -eq 1 ] || usage
			with_lock
			cmd_apps "$1"
			;;
		-h | --help | help) usage ;;
		*) usage ;;
	esac
	say "envs.sh $cmd finished in $(elapsed_since "$t0") s"
}

main "$@"
