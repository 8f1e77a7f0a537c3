# shellcheck shell=bash disable=SC2034,SC2153 # globals shared with deploy.sh, checked there with -x
# deploy.d/packages.sh -- the Debian packages: install what is missing, and undo exactly that.
#
# Sourced by deploy.sh. Before this run's first apt-get install, the state of
# every package (name, dpkg status, version) is saved and journaled
# ("packages-before FILE"), so a rollback knows the truth even when apt was
# interrupted halfway (Ctrl-C reaches apt and dpkg too) or failed: whatever is
# installed then and was not before is purged, and whatever apt upgraded or
# removed is put back at its old version. That needs the old .deb: before each
# install, apt's simulation names the packages it would upgrade or remove, and a
# copy of each installed version is kept for the run (from apt's cache
# $APT_ARCHIVES, else `apt-get download PKG=VERSION`). When neither has it (a
# Pi flashed from an older image: gcc wants the current libc6, whose old .deb
# the mirror no longer has), the run warns and goes on: refusing would stop
# the most common first install. After the rollback, the package states are
# compared with the saved ones again: any difference (such an upgrade) is
# reported as an undo that failed, and the run does not say "rolled back".

# apt-get, non-interactive, its chatter to the log only (the tail on failure).
# DPkg::Lock::Timeout: wait for unattended-upgrades & co instead of failing.
# (Interrupted, apt's output is still appended: by the rollback, flush_apt_log.)
apt_get() {
	local out=$TMP_DIR/apt.log
	APT_LOG_PENDING=$out
	if DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -q "$@" >"$out" 2>&1; then
		flush_apt_log
		return 0
	fi
	flush_apt_log
	tail -n 15 "$out" >&2
	return 1
}

# Append the output of the last apt-get to the log, once.
flush_apt_log() {
	if [ -n "$APT_LOG_PENDING" ] && [ -f "$APT_LOG_PENDING" ]; then cat "$APT_LOG_PENDING" >>"$LOG_FILE"; fi
	APT_LOG_PENDING=
}

# Every package dpkg knows as installed or half-installed: "NAME STATUS VERSION" per line, sorted
# (NAME with :ARCH for a foreign architecture; STATUS is dpkg's abbreviation: ii, iU, rc ...).
# (dpkg-query names a Multi-Arch: same package "libssl3:arm64" even on arm64; apt names it
# "libssl3": the native architecture's suffix is dropped, so both name it alike.)
package_states() {
	local native
	native=$(dpkg --print-architecture 2>/dev/null) || native=
	dpkg-query -W -f='${db:Status-Abbrev}\t${binary:Package}\t${Version}\n' |
		awk -F'\t' -v native="${native:+:$native}" '
			{ s = $1; gsub(/ /, "", s); name = $2 }
			native != "" && substr(name, length(name) - length(native) + 1) == native { name = substr(name, 1, length(name) - length(native)) }
			s != "un" && s != "pn" { print name, s, $3 }' | LC_ALL=C sort
}

# The names of the packages installed (ii) in states file $1 that were not in states file $2.
packages_added() {
	awk 'NR == FNR { if ($2 == "ii") had[$1] = 1; next } $2 == "ii" && !had[$1] { print $1 }' "$2" "$1"
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
	save_package_states
	before=$(tmp_file)
	package_states >"$before"
	if ! apt_lists_fresh; then
		apt_update
		apt_install_undoable "${missing[@]}" || ok=0
	else
		info "package lists updated less than $APT_LISTS_MAX_AGE_MIN min ago: no apt-get update"
		if ! apt_install_undoable "${missing[@]}"; then
			warn "apt-get install failed with the current package lists: updating them and trying again"
			apt_update
			apt_install_undoable "${missing[@]}" || ok=0
		fi
	fi
	journal_new_packages "$before"
	[ "$ok" = 1 ] || fatal "apt-get install ${missing[*]} failed (its output above, and in $LOG_FILE)"
}

# Before this run's first install: the state of every package, for the rollback (journaled first).
save_package_states() {
	[ -z "$PACKAGES_BEFORE" ] || return 0
	PACKAGES_BEFORE=$TMP_DIR/packages.before
	OLD_DEBS_DIR=$TMP_DIR/old-debs
	mkdir -p "$OLD_DEBS_DIR"
	package_states >"$PACKAGES_BEFORE"
	journal packages-before "$PACKAGES_BEFORE"
}

# apt_install_undoable PKG...: keep the installed version of what apt would upgrade or remove,
# then install.
apt_install_undoable() {
	local sim name version lacking=()
	sim=$(tmp_file)
	# A simulation that fails (a package apt does not know) is left to the install to report.
	if DEBIAN_FRONTEND=noninteractive apt-get -s -q install -y --no-install-recommends "$@" >"$sim" 2>&1; then
		while read -r name version; do
			keep_old_deb "$name" "$version" || lacking+=("$name $version")
		done < <(sed -n 's/^\(Inst\|Remv\) \([^ ]*\) \[\([^]]*\)\].*/\2 \3/p' "$sim")
	fi
	if [ ${#lacking[@]} -gt 0 ]; then
		warn "apt also upgrades or removes $(printf '%s, ' "${lacking[@]}" | sed 's/, $//'), and no .deb of that version is at hand (not in $APT_ARCHIVES, no longer on the mirror): if this run fails, that stays as apt leaves it and the rollback says so. (To avoid it: sudo apt-get upgrade first.)"
	fi
	apt_install "$@"
}

# keep_old_deb NAME VERSION: a copy of the installed NAME's .deb in $OLD_DEBS_DIR, or fail.
keep_old_deb() {
	local name=$1 version=$2 arch deb
	[ -n "$(old_deb "$name" "$version")" ] && return 0
	arch=$(dpkg-query -W -f='${Architecture}' "$name" 2>/dev/null) || arch=
	for deb in "$APT_ARCHIVES/${name%%:*}_${version//:/%3a}_"*.deb; do
		if [ -f "$deb" ] && [[ -z $arch || $deb == *_"$arch".deb || $deb == *_all.deb ]]; then
			cp -- "$deb" "$OLD_DEBS_DIR/" && printf '%s %s %s\n' "$name" "$version" "$OLD_DEBS_DIR/${deb##*/}" >>"$OLD_DEBS_DIR/index"
			return 0
		fi
	done
	if (cd "$OLD_DEBS_DIR" && apt-get download -q "$name=$version") >>"$LOG_FILE" 2>&1; then
		for deb in "$OLD_DEBS_DIR/${name%%:*}_${version//:/%3a}_"*.deb; do
			if [ -f "$deb" ]; then
				printf '%s %s %s\n' "$name" "$version" "$deb" >>"$OLD_DEBS_DIR/index"
				return 0
			fi
		done
	fi
	return 1
}

# The kept .deb of NAME VERSION, or nothing.
old_deb() {
	[ -f "$OLD_DEBS_DIR/index" ] || return 0
	awk -v n="$1" -v v="$2" '$1 == n && $2 == v { print $3; exit }' "$OLD_DEBS_DIR/index"
}

# The states file $1 with the version of each config-files-only (rc) package left out.
rc_unversioned() {
	awk '$2 == "rc" { print $1, $2; next } { print }' "$1"
}

# Rollback: purge what this run's apt-get brought, put back at their old version the packages it
# upgraded or removed, then check that every package is as before. Non-zero if any is not.
rollback_packages() {
	local before type a _ now name kind version purge=() remove=() restore=() missing=() diff
	while IFS=$'\t' read -r type a _; do
		if [ "$type" = packages-before ]; then before=$a; fi
	done <"$RUN_JOURNAL"
	[ -n "${before:-}" ] && [ -f "$before" ] || return 0
	flush_apt_log
	# An apt interrupted inside dpkg leaves packages half-configured: finish that first.
	if [ -n "$(dpkg --audit 2>/dev/null)" ]; then
		info "  finishing the interrupted dpkg run (dpkg --configure -a) before undoing it"
		DEBIAN_FRONTEND=noninteractive dpkg --configure -a >>"$LOG_FILE" 2>&1 || warn "  dpkg --configure -a failed"
	fi
	now=$(tmp_file)
	package_states >"$now"
	# Added: installed now, not before. One that had only its config files left (rc) before is
	# removed, not purged: those files are the owner's (e.g. an /etc/lighttpd kept after a remove).
	while read -r name kind; do
		if [ "$kind" = rc ]; then remove+=("$name"); else purge+=("$name-"); fi
	done < <(awk 'NR == FNR { had[$1] = $2; next }
		!($1 in had) { print $1, "new" } had[$1] == "rc" && $2 != "rc" { print $1, "rc" }' "$before" "$now")
	# Changed or gone: before at some version, now at another or not installed.
	while read -r name _ version; do
		if [ -n "$(old_deb "$name" "$version")" ]; then restore+=("$(old_deb "$name" "$version")"); else missing+=("$name $version"); fi
	done < <(awk 'NR == FNR { now[$1] = $3; st[$1] = $2; next } $2 != "rc" && (now[$1] != $3 || st[$1] != $2)' "$now" "$before")
	if [ ${#missing[@]} -gt 0 ]; then warn "  no .deb kept to put back: ${missing[*]}"; fi
	if [ ${#remove[@]} -gt 0 ]; then
		info "  packages: removing ${remove[*]} (their config files stay, as before this run)"
		apt_get remove -y "${remove[@]}" || warn "  apt-get remove ${remove[*]} failed"
	fi
	if [ ${#purge[@]} -gt 0 ] || [ ${#restore[@]} -gt 0 ]; then
		info "  packages: purging ${purge[*]:-none}; putting back ${restore[*]:-none}"
		# One apt transaction: an old version may not go with a package this run added.
		if [ ${#restore[@]} -gt 0 ]; then
			apt_get install -y --purge --allow-downgrades --no-install-recommends "${restore[@]}" "${purge[@]}"
		else
			apt_get purge -y "${purge[@]%-}"
		fi || warn "  apt-get could not undo the package changes"
	fi
	package_states >"$now"
	# (Of a package in config-files state, dpkg keeps the version last removed: not compared.)
	diff=$(LC_ALL=C comm -3 <(rc_unversioned "$before") <(rc_unversioned "$now") |
		awk -F'\t' '{ print ($1 == "" ? "now:    " $2 : "before: " $1) }')
	if [ -n "$diff" ]; then
		warn "  packages not as before this run:"
		printf '%s\n' "$diff" | sed 's/^/[deploy]     /' >&2
		return 1
	fi
	info "  packages: as before this run"
}

# Step: the packages ledd, its build and the web server need (TLS: mod_openssl too).
step_packages() {
	local wanted=("${APT_PACKAGES[@]}") changes=$CHANGES
	if [ "$TLS" != off ]; then wanted+=("${TLS_PACKAGES[@]}"); fi
	# Debian's own lighttpd instance comes with the package: it must not take port 80.
	if [ "$DRY_RUN" = 0 ] && ! package_installed lighttpd; then
		DEBIAN_WEB_FRESH=1
		journal_leftovers lighttpd "${WEB_PACKAGE_LEFTOVERS[@]}"
	fi
	install_missing_packages "${wanted[@]}"
	if [ "$CHANGES" = "$changes" ]; then info "packages: all present"; fi
}

# Journal the packages installed since the states in file $1 (for --uninstall --purge).
journal_new_packages() {
	local pkg now
	now=$(tmp_file)
	package_states >"$now"
	while IFS= read -r pkg; do
		journal package "$pkg"
	done < <(packages_added "$now" "$1")
}

# journal_leftovers PACKAGE PATH...: before apt installs PACKAGE, journal ("leftover PACKAGE
# PATH") those of the paths its maintainer scripts create, and its purge leaves, that do not
# exist yet: remove_leftovers takes them away again once PACKAGE is gone.
journal_leftovers() {
	local pkg=$1 path
	shift
	for path; do
		[ -e "$path" ] || [ -L "$path" ] || journal leftover "$pkg" "$path"
	done
}

# remove_leftovers JOURNAL: after a rollback or --purge, of the "leftover PACKAGE PATH" records
# in JOURNAL (in order: files before their directories), remove each path whose package is no
# longer installed: a regular file (Debian's default page), a directory only when empty (so
# nothing the owner put there goes). Non-zero if one could not be removed.
remove_leftovers() {
	local type pkg path failed=0
	while IFS=$'\t' read -r type pkg path; do
		[ "$type" = leftover ] || continue
		package_installed "$pkg" && continue
		if [ -d "$path" ] && [ ! -L "$path" ]; then
			[ -z "$(ls -A "$path")" ] || continue
		elif [ ! -f "$path" ] || [ -L "$path" ]; then
			continue
		fi
		note_change "remove $path (left by $pkg, not there before deploy.sh installed it)"
		[ "$DRY_RUN" = 1 ] && continue
		if [ -d "$path" ]; then rmdir -- "$path"; else rm -f -- "$path"; fi || failed=1
	done <"$1"
	return "$failed"
}
