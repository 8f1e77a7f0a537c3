# shellcheck shell=bash disable=SC2034,SC2153 # globals shared with deploy.sh, checked there with -x
# deploy.d/files.sh -- every file deploy.sh writes: compare first, back up, journal, write.
#
# Sourced by deploy.sh. put_file() compares content, mode and owner and only
# writes (and counts a change) when something differs; a replaced file is
# backed up first (journal.sh), so a failed run puts it back.

# put_file SRC DEST MODE OWNER GROUP [FLAG_VARIABLE]: install SRC as $DESTDIR/DEST
# unless identical; on a change, count it and set FLAG_VARIABLE=1 (e.g. RESTART_LEDD).
put_file() {
	local src=$1 dest=$DESTDIR$2 mode=$3 owner=$4 group=$5 flag=${6:-}
	if [ -f "$dest" ] && [ ! -L "$dest" ] && cmp -s "$src" "$dest" &&
		[ "$(stat -c '%a %U %G' "$dest")" = "${mode#0} $owner $group" ]; then
		return 0
	fi
	if [ -e "$dest" ]; then note_change "update $2"; else note_change "install $2"; fi
	if [ -n "$flag" ]; then printf -v "$flag" 1; fi
	[ "$DRY_RUN" = 1 ] && return 0
	make_parents "$(dirname "$2")"
	if [ -e "$dest" ]; then journal file "$dest" "$(backup_of "$dest")"; else journal file "$dest" -; fi
	if [ "$src" -ef "$dest" ]; then
		# $LEDD_HOME_DIR/deploy.sh installing its own tree: only the metadata can differ.
		chown "$owner:$group" "$dest" && chmod "$mode" "$dest"
	else
		install -m "$mode" -o "$owner" -g "$group" "$src" "$dest"
	fi
}

# make_parents DIR: create DIR and its missing parents, journaling each one created.
make_parents() {
	local dir=$DESTDIR$1 missing=()
	while [ ! -d "$dir" ]; do
		missing=("$dir" "${missing[@]}")
		dir=$(dirname "$dir")
	done
	for dir in "${missing[@]}"; do
		mkdir "$dir"
		journal dir "$dir"
	done
}

# put_dir DIR MODE OWNER GROUP
put_dir() {
	local dir=$DESTDIR$1 mode=$2 owner=$3 group=$4
	if [ -d "$dir" ] && [ "$(stat -c '%a %U %G' "$dir")" = "${mode#0} $owner $group" ]; then
		return 0
	fi
	if [ -d "$dir" ]; then
		note_change "chmod/chown directory $1 ($mode $owner:$group)"
	else
		note_change "create directory $1 ($mode $owner:$group)"
	fi
	[ "$DRY_RUN" = 1 ] && return 0
	# An existing one: its old mode and numeric owner, for the rollback (whose userdel would
	# otherwise leave it owned by a uid that no longer exists).
	if [ -d "$dir" ]; then journal attrs "$dir" "$(stat -c '%a:%u:%g' "$dir")"; fi
	make_parents "$1"
	chown "$owner:$group" "$dir"
	chmod "$mode" "$dir"
}

# remove_path PATH: delete a file/dir/link we installed, if present (backed up in a transaction).
remove_path() {
	local path=$DESTDIR$1
	[ -e "$path" ] || [ -L "$path" ] || return 0
	note_change "remove $1"
	[ "$DRY_RUN" = 1 ] && return 0
	if [ "$TXN_OPEN" = 1 ]; then journal removed "$path" "$(backup_of "$path")"; fi
	rm -rf -- "$path"
}

# remove_empty_dir DIR: delete DIR if it is empty (its copy and record made first, so a
# rollback creates it again with its mode and owner).
remove_empty_dir() {
	local dir=$DESTDIR$1
	[ -d "$dir" ] && [ -z "$(ls -A "$dir")" ] || return 0
	[ "$DRY_RUN" = 1 ] && return 0
	if [ "$TXN_OPEN" = 1 ]; then journal removed "$dir" "$(backup_of "$dir")"; fi
	rmdir -- "$dir"
}

# The source files of one tree directory, relative to $ROOT (no caches, no board.json).
tree_files() {
	(cd "$ROOT" && find "$1" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' \
		! -name 'board.json' ! -name '.*' | LC_ALL=C sort)
}

# Install one file of the checkout into $LEDD_HOME_DIR, executable if it is.
put_tree_file() {
	local rel=$1 mode=0644
	if [ -x "$ROOT/$rel" ]; then mode=0755; fi
	put_file "$ROOT/$rel" "$LEDD_HOME_DIR/$rel" "$mode" root root TREE_CHANGED
}

# Step: the whole tree (deploy.sh included, so /opt/ledd/deploy.sh --uninstall works), the binary, units, udev.
step_files() {
	local dir rel installed listed
	listed=$(tmp_file)
	cmp -s "$ROOT/lighttpd.conf" "$DESTDIR$LEDD_HOME_DIR/lighttpd.conf" 2>/dev/null || RESTART_WEB=1
	put_dir "$LEDD_HOME_DIR" 0755 root root
	for rel in "${TREE_FILES[@]}"; do
		put_tree_file "$rel"
	done
	for dir in "${TREE_DIRS[@]}"; do
		[ -d "$ROOT/$dir" ] || continue
		while IFS= read -r rel; do
			put_tree_file "$rel"
			echo "$LEDD_HOME_DIR/$rel" >>"$listed"
		done < <(tree_files "$dir")
		# Files of an older version that the checkout no longer has.
		[ -d "$DESTDIR$LEDD_HOME_DIR/$dir" ] || continue
		while IFS= read -r installed; do
			installed=${installed#"$DESTDIR"}
			grep -qxF "$installed" "$listed" || remove_path "$installed"
		done < <(find "$DESTDIR$LEDD_HOME_DIR/$dir" -type f ! -path '*/__pycache__/*' ! -name 'board.json')
	done
	if [ -n "$LEDD_BUILT" ]; then put_file "$LEDD_BUILT" "$LEDD_SBIN" 0755 root root RESTART_LEDD; fi
	install_ledctl_link
	compile_python
	put_file "$ROOT/systemd/ledd.service" "$UNIT_FILE" 0644 root root RESTART_LEDD
	put_file "$ROOT/systemd/ledd-web.service" "$WEB_UNIT_FILE" 0644 root root RESTART_WEB
	if [ "$RESTART_LEDD$RESTART_WEB" != 00 ]; then RELOAD_SYSTEMD=1; fi
	install_udev_rule
}

# /usr/local/bin/ledctl -> /opt/ledd/bin/ledctl
install_ledctl_link() {
	local target=$LEDD_HOME_DIR/bin/ledctl
	[ -f "$ROOT/bin/ledctl" ] || {
		warn "no bin/ledctl in the checkout: ledctl not installed"
		return 0
	}
	[ "$(readlink "$DESTDIR$LEDCTL_LINK" 2>/dev/null)" = "$target" ] && return 0
	note_change "link $LEDCTL_LINK -> $target"
	[ "$DRY_RUN" = 1 ] && return 0
	make_parents "$(dirname "$LEDCTL_LINK")"
	if [ -e "$DESTDIR$LEDCTL_LINK" ] || [ -L "$DESTDIR$LEDCTL_LINK" ]; then
		journal file "$DESTDIR$LEDCTL_LINK" "$(backup_of "$DESTDIR$LEDCTL_LINK")"
	else
		journal file "$DESTDIR$LEDCTL_LINK" -
	fi
	ln -sfn "$target" "$DESTDIR$LEDCTL_LINK"
}

# The CGIs cannot write __pycache__ under /opt: byte-compile once here
# (checked-hash pycs stay valid whatever the files' timestamps).
# The gpiozero pin factory's entry point for /usr/bin/python3 (issue 12) is
# registered next to this, as its own step in INSTALL_STEPS.
compile_python() {
	local pkg=$DESTDIR$LEDD_HOME_DIR/ledd
	if [ "$TREE_CHANGED" = 0 ] && [ -d "$pkg/__pycache__" ]; then return 0; fi
	note_change "byte-compile $LEDD_HOME_DIR/ledd"
	[ "$DRY_RUN" = 1 ] && return 0
	# The old .pycs are kept whole: a rollback puts back exactly them (no new ones beside).
	if [ -d "$pkg/__pycache__" ]; then
		journal replaced "$pkg/__pycache__" "$(backup_of "$pkg/__pycache__")"
	else
		journal dir "$pkg/__pycache__"
	fi
	local strip=()
	# (staged: the file names in the .pyc are those of the installed tree, not of $DESTDIR)
	if [ -n "$DESTDIR" ]; then strip=(-s "$DESTDIR" -p /); fi
	"$PYTHON" -m compileall -q --invalidation-mode checked-hash "${strip[@]}" "$pkg" >/dev/null
}

# board.json (the header diagram) from ledd.board, into the web state dir that
# lighttpd.conf serves it from (generated per machine, never part of the tree).
generate_board_json() {
	local out
	[ -f "$ROOT/ledd/board.py" ] || {
		warn "no ledd/board.py: the page will show no header diagram"
		return 0
	}
	out=$(tmp_file)
	if ! (cd "$ROOT" && "$PYTHON" -B -m ledd.board --out "$out") >"$TMP_DIR/board.log" 2>&1; then
		warn "board.json not generated: $(tail -n 1 "$TMP_DIR/board.log")"
		return 0
	fi
	put_file "$out" "$WEB_STATE_DIR/board.json" 0644 root root
}

# Plain Debian has no rule giving group gpio the /dev/gpiochip* devices; Raspberry Pi OS has
# one (99-com.rules: SUBSYSTEM=="gpio", GROUP="gpio", MODE="0660"), and then ours is not installed.
install_udev_rule() {
	local rules changed=0 dir
	rules=$(for dir in "${UDEV_RULES_DIRS[@]}"; do
		grep -lsE '^[^#]*SUBSYSTEM=="gpio".*GROUP="gpio"' "$DESTDIR$dir"/*.rules
	done | grep -vx "$DESTDIR$UDEV_RULE" | xargs || true)
	if [ -n "$rules" ] && [ ! -f "$DESTDIR$UDEV_RULE" ]; then
		info "udev: the system already grants GPIO access ($rules)"
		return 0
	fi
	put_file "$ROOT/systemd/60-ledd-gpio.rules" "$UDEV_RULE" 0644 root root changed
	if [ "$changed" = 1 ] && [ "$MODE" = install ]; then
		RESTART_LEDD=1
		# udev installed but no udevd running (a container, a chroot): the rule applies at its next start.
		if ! run udevadm control --reload 2>/dev/null; then
			warn "udev: no udevd answers (a container?); $UDEV_RULE applies when udevd next starts"
			return 0
		fi
		run udevadm trigger --subsystem-match=gpio --action=change || warn "udevadm trigger failed"
		run udevadm settle || warn "udevadm settle failed"
	fi
}

# Step: write $CONF_FILE from the shipped default with the overrides; never touch an existing one.
step_config() {
	put_dir "$CONF_DIR" 0755 root root
	if [ -e "$DESTDIR$CONF_FILE" ]; then
		if [ "$CONF_OVERRIDES" = 1 ]; then
			warn "$CONF_FILE exists and is kept: pin/chip/backend overrides ignored (edit it, then systemctl reload ledd)"
		fi
		return 0
	fi
	local conf
	conf=$(tmp_file)
	render_config >"$conf"
	if [ -n "$LEDD_BUILT" ] && ! "$LEDD_BUILT" --check-config -c "$conf" >"$TMP_DIR/check.log" 2>&1; then
		cat "$TMP_DIR/check.log" >&2
		fatal "the generated configuration is invalid (check LEDD_LED_PINS/LEDD_BUTTON_PINS/--chip)"
	fi
	put_file "$conf" "$CONF_FILE" 0644 root root RESTART_LEDD
}

# The shipped cdaemon/ledd.conf with chip, backend and pins replaced.
render_config() {
	awk -v chip="$CHIP" -v backend="$BACKEND" \
		-v drop_leds="${LEDD_LED_PINS:+1}" -v drop_buttons="${LEDD_BUTTON_PINS+1}" '
		/^\[/ { skip = (drop_leds && /^\[led[ \t]/) || (drop_buttons && /^\[button[ \t]/) }
		skip { next }
		chip != "" && /^[ \t]*chip[ \t]*=/ { print "chip = " chip; next }
		backend != "" && /^[ \t]*backend[ \t]*=/ { print "backend = " backend; next }
		{ print }
	' "$ROOT/cdaemon/ledd.conf"
	if [ -n "${LEDD_LED_PINS:-}" ]; then render_pins led "$LEDD_LED_PINS"; fi
	if [ -n "${LEDD_BUTTON_PINS:-}" ]; then render_pins button "$LEDD_BUTTON_PINS"; fi
}

# render_pins led|button "name:gpio,name:gpio"
render_pins() {
	local kind=$1 list=$2 item name gpio
	local IFS=,
	for item in $list; do
		name=${item%%:*}
		gpio=${item#*:}
		if ! [[ $name =~ ^[A-Za-z0-9_-]{1,24}$ ]] || ! [[ $gpio =~ ^[0-9]{1,3}$ ]]; then
			fatal "bad pin '$item' in LEDD_${kind^^}_PINS (want name:gpio, e.g. red:17)"
		fi
		printf '\n[%s %s]\ngpio = %s\n' "$kind" "$name" "$gpio"
		if [ "$kind" = button ]; then printf 'pull = up\nactive_low = true\n'; fi
	done
}

# Step: register the gpiozero pin factory (GPIOZERO_PIN_FACTORY=ledd) with /usr/bin/python3:
# a small dist-info holding the entry point, and a .pth putting $LEDD_HOME_DIR on sys.path.
# ledd.gpiozero_factory writes them into a scratch directory; from there they go in like every
# other file (compared, backed up, journaled), and the dist-info of another version goes.
step_python_entry_points() {
	local site scratch=$TMP_DIR/site rel path
	site=$("$PYTHON" -c 'import site; print(site.getsitepackages()[0])') ||
		fatal "cannot ask $PYTHON for its site-packages directory"
	mkdir -p "$scratch"
	(cd "$ROOT" && "$PYTHON" -B -m ledd.gpiozero_factory --register "$scratch" --home "$LEDD_HOME_DIR") \
		>"$TMP_DIR/register.log" 2>&1 || {
		cat "$TMP_DIR/register.log" >&2
		fatal "registering the gpiozero pin factory failed (above)"
	}
	while IFS= read -r rel; do
		put_file "$scratch/$rel" "$site/$rel" 0644 root root
	done < <(cd "$scratch" && find . -type f -printf '%P\n' | LC_ALL=C sort)
	for path in "$DESTDIR$site"/ledd_gpiozero-*.dist-info; do
		if [ -d "$path" ] && [ ! -d "$scratch/${path##*/}" ]; then remove_path "${path#"$DESTDIR"}"; fi
	done
}
