# shellcheck shell=bash disable=SC2034,SC2153 # globals shared with deploy.sh, checked there with -x
# deploy.d/packages.sh -- the Debian packages: install what is missing, journaled; undo it.
#
# Sourced by deploy.sh.

# apt-get, non-interactive, its chatter to the log only (the tail on failure).
# DPkg::Lock::Timeout: wait for unattended-upgrades & co instead of failing.
apt_get() {
	local out=$TMP_DIR/apt.log
	if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q "$@" >"$out" 2>&1; then
		cat "$out" >>"$LOG_FILE"
		return 0
	fi
	cat "$out" >>"$LOG_FILE"
	tail -n 15 "$out" >&2
	return 1
}

# The installed packages, one per line (for the before/after difference).
installed_packages() {
	dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 == "ii" { print $2 }' | sort
}

# Whether apt's package lists were updated less than APT_LISTS_MAX_AGE_MIN minutes ago,
# by apt's own stamps (deploy.sh sets the first one after its own update).
apt_lists_fresh() {
	local stamp
	for stamp in "${APT_UPDATE_STAMPS[@]}"; do
		if [ -n "$(find "$stamp" -maxdepth 0 -mmin -"$APT_LISTS_MAX_AGE_MIN" 2>/dev/null)" ]; then return 0; fi
	done
	return 1
}

# apt-get update; on success, stamp the time (a re-run within the hour skips it).
apt_update() {
	if apt_get update; then
		mkdir -p "$(dirname "${APT_UPDATE_STAMPS[0]}")" && touch "${APT_UPDATE_STAMPS[0]}"
	else
		warn "apt-get update failed; trying with the current package lists"
	fi
}

# apt-get install without the recommends.
apt_install() {
	apt_get install -y --no-install-recommends "$@"
}

# Whether package $1 is installed.
package_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Install those of the packages "$@" that are missing; journal every package this added
# (dependencies too). The package lists are updated first unless that was done within the hour
# (a re-run to add --tls, or a retry, need not wait for it again: a minute on a Pi Zero). Lists
# that recent can still name a version the mirror has just replaced, so a failed install updates
# them and tries again.
install_missing_packages() {
	local missing=() pkg before ok=1
	for pkg; do
		package_installed "$pkg" || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	note_change "apt-get install ${missing[*]}"
	[ "$DRY_RUN" = 1 ] && return 0
	before=$(tmp_file)
	installed_packages >"$before"
	if ! apt_lists_fresh; then
		apt_update
		apt_install "${missing[@]}" || ok=0
	else
		info "package lists updated less than $APT_LISTS_MAX_AGE_MIN min ago: no apt-get update"
		if ! apt_install "${missing[@]}"; then
			warn "apt-get install failed with the current package lists: updating them and trying again"
			apt_update
			apt_install "${missing[@]}" || ok=0
		fi
	fi
	journal_new_packages "$before"
	[ "$ok" = 1 ] || fatal "apt-get install ${missing[*]} failed (its output above, and in $LOG_FILE)"
}

# Step: the packages ledd, its build and the web server need (TLS: mod_openssl too).
step_packages() {
	local wanted=("${APT_PACKAGES[@]}") changes=$CHANGES
	if [ "$TLS" != off ]; then wanted+=("${TLS_PACKAGES[@]}"); fi
	# Debian's own lighttpd instance comes with the package: it must not take port 80.
	if [ "$DRY_RUN" = 0 ] && ! package_installed lighttpd; then DEBIAN_WEB_FRESH=1; fi
	install_missing_packages "${wanted[@]}"
	if [ "$CHANGES" = "$changes" ]; then info "packages: all present"; fi
}

# Journal the packages installed since the listing in file $1.
journal_new_packages() {
	local pkg
	while IFS= read -r pkg; do
		journal package "$pkg"
	done < <(installed_packages | comm -13 "$1" -)
}


# Rollback: purge the packages this run installed.
rollback_packages() {
	local type a _ packages=()
	while IFS=$'\t' read -r type a _; do
		if [ "$type" = package ]; then packages+=("$a"); fi
	done <"$RUN_JOURNAL"
	[ ${#packages[@]} -gt 0 ] || return 0
	info "  removing the packages this run installed: ${packages[*]}"
	apt_get purge -y "${packages[@]}"
}
