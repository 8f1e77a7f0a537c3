# shellcheck shell=bash disable=SC2034,SC2153 # globals shared with deploy.sh, checked there with -x
# deploy.d/local.sh -- `./deploy.sh --local`: the whole stack from the checkout on 127.0.0.1.
#
# Sourced by deploy.sh (its globals, info/warn/fatal). ledd runs under a small
# supervisor that behaves like systemd's Restart=on-failure + RestartSec=1s +
# StartLimitBurst on the Pi: when ledd dies, the reason is printed and ledd is
# started again a second later, while lighttpd keeps serving, so the page shows
# "daemon down" (503) and then recovers. With --mqtt the bridge runs under a
# supervisor of its own, as ledd-mqtt.service on the Pi: its end never ends the
# run. Ctrl-C (or SIGTERM) stops everything.
#
# gpiozero scripts from another terminal: the run registers ledd's pin factory
# in $LOCAL_RUN/python (the entry point, and ledd/ beside it) and prints the
# one command line that runs a script on the simulated pins.

# Packages the local run needs that are missing, as "pkg ..." (gpiozero: the wiring diagram).
local_missing_packages() {
	command -v lighttpd >/dev/null || echo lighttpd
	command -v make >/dev/null || echo make
	command -v cc >/dev/null || echo gcc libc6-dev
	if [ ! -x "$PYTHON" ]; then
		echo python3 python3-gpiozero
	elif ! "$PYTHON" -c 'import gpiozero' 2>/dev/null; then
		echo python3-gpiozero
	fi
}

# Install what the local run needs (as root), or print the exact command (as a user).
local_tools() {
	local missing
	missing=$(local_missing_packages | xargs)
	[ -n "$missing" ] || return 0
	if [ "$(id -u)" -ne 0 ]; then fatal "missing packages; install them with: sudo apt-get install -y $missing"; fi
	info "installing $missing (needed by the local run; python3-gpiozero draws the wiring diagram)"
	# shellcheck disable=SC2086 # a list of package names
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $missing ||
		fatal "apt-get install $missing failed (its output above)"
	missing=$(local_missing_packages | xargs)
	[ -z "$missing" ] || fatal "still missing after apt-get install: $missing"
}

# True when something accepts connections on 127.0.0.1:PORT.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Stop lighttpd and the supervisor (which stops ledd), then tidy the runtime dir.
local_stop() {
	trap - INT TERM EXIT
	local pid
	for pid in "${LOCAL_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${LOCAL_PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	LOCAL_PIDS=()
	# ledd saved its state on SIGTERM; the FIFOs and pid file have no further use.
	# (Only ours: when another ledd owns the directory, its files stay.)
	if [ "$LOCAL_OWNS_RUN" = 1 ]; then
		find "$LOCAL_RUN" -maxdepth 2 -type p -delete 2>/dev/null || true
		rm -f "$LOCAL_RUN/$LEDD_PID_NAME" "$LOCAL_RUN/auth-none.conf"
		rm -rf "${LOCAL_RUN:?}/$LEDD_REPLY_NAME" "$LOCAL_RUN/web" "$LOCAL_RUN/python"
	fi
	mqtt_local_cleanup
	cleanup
	info "stopped"
}

# The pid of a ledd started by supervisor SUP that holds the runtime dir's pid lock and has its FIFOs, or fail.
local_ledd_pid() {
	local sup=$1 pid
	pid=$(cat "$LOCAL_RUN/$LEDD_PID_NAME" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	[ "$(awk '{print $4}' "/proc/$pid/stat" 2>/dev/null)" = "$sup" ] || return 1
	[ -p "$LOCAL_RUN/$LEDD_CMD_NAME" ] && [ -d "$LOCAL_RUN/$LEDD_REPLY_NAME" ] || return 1
	echo "$pid"
}

# Wait (10 s at most) until the supervisor's first ledd is ready.
local_wait_ready() {
	local sup=$1 _
	for _ in $(seq 100); do
		kill -0 "$sup" 2>/dev/null || return 1
		local_ledd_pid "$sup" >/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# Another ledd (a second --local, a test) holding the runtime dir's pid lock?
local_check_rundir_free() {
	local pidfile=$LOCAL_RUN/$LEDD_PID_NAME
	[ -f "$pidfile" ] || return 0
	flock -n "$pidfile" true 2>/dev/null && return 0
	fatal "another ledd (pid $(cat "$pidfile")) already runs on $LOCAL_RUN; stop it or set LEDD_RUNTIME_DIR to another directory"
}

# Why a child ended, from bash's wait status: "exited with status N" or "was killed by signal NAME".
describe_exit() {
	local status=$1
	if [ "$status" -gt 128 ]; then
		echo "was killed by signal $(kill -l "$((status - 128))" 2>/dev/null || echo "$((status - 128))")"
	else
		echo "exited with status $status"
	fi
}

# Run CMD again and again like Restart=on-failure + RestartSec=DELAY + the start limit;
# runs in a background subshell: local_supervise NAME LOG DELAY ALSO CMD...
# Its output goes to LOG; ALSO says what keeps running when NAME stops for good.
local_supervise() {
	local name=$1 log=$2 delay=$3 also=$4
	shift 4
	local pid=0 status starts=() now stopping=0
	trap 'stopping=1; [ "$pid" -gt 0 ] && kill -TERM "$pid" 2>/dev/null' TERM INT
	trap - EXIT ERR
	set +e
	while :; do
		now=$(date +%s)
		starts+=("$now")
		# StartLimitBurst within StartLimitIntervalSec, as in the systemd units.
		if [ ${#starts[@]} -gt "$LOCAL_START_LIMIT_BURST" ]; then
			starts=("${starts[@]:1}")
			if [ $((now - starts[0])) -lt "$LOCAL_START_LIMIT_S" ]; then
				warn "$name failed $LOCAL_START_LIMIT_BURST times within ${LOCAL_START_LIMIT_S}s: giving up (like systemd's start limit)"
				exit 1
			fi
		fi
		"$@" </dev/null >>"$log" 2>&1 &
		pid=$!
		wait "$pid"
		status=$?
		# A trapped signal interrupts wait; wait again for the child's real status.
		while kill -0 "$pid" 2>/dev/null; do
			wait "$pid"
			status=$?
		done
		[ "$stopping" = 1 ] && exit 0
		if [ "$status" = 0 ]; then
			warn "$name (pid $pid) exited cleanly; not restarted (Restart=on-failure); $also"
			exit 0
		fi
		warn "$name (pid $pid) $(describe_exit "$status"); its last words: $(tail -n 1 "$log" 2>/dev/null)"
		warn "restarting $name in ${delay}s (like systemd's Restart=on-failure); $also"
		sleep "$delay"
		[ "$stopping" = 1 ] && exit 0
		pid=0
	done
}

# Drop PID from LOCAL_PIDS (it has ended; local_stop has nothing to stop there).
local_forget() {
	local pid kept=()
	for pid in "${LOCAL_PIDS[@]}"; do
		[ "$pid" = "$1" ] || kept+=("$pid")
	done
	LOCAL_PIDS=("${kept[@]}")
}

# The pin factory for gpiozero scripts run by hand: its entry point and ledd/ in
# $LOCAL_RUN/python, so that PYTHONPATH=$LOCAL_RUN/python is all an interpreter needs.
local_gpiozero() {
	local dir=$LOCAL_RUN/python
	rm -rf "$dir"
	(cd "$ROOT" && "$PYTHON" -B -m ledd.gpiozero_factory --register "$dir" >/dev/null) ||
		{ warn "gpiozero pin factory not registered for scripts (above)"; return 0; }
	rm -f "$dir/ledd_gpiozero.pth" # read in site-packages only; a PYTHONPATH entry needs ledd/ itself
	ln -s "$ROOT/ledd" "$dir/ledd"
	LOCAL_GPIOZERO_HINT="LEDD_RUNTIME_DIR=$LOCAL_RUN GPIOZERO_PIN_FACTORY=ledd PYTHONPATH=$dir $PYTHON script.py"
}

# Build, start ledd (supervised) and lighttpd on 127.0.0.1:$PORT, and wait until Ctrl-C.
do_local() {
	local http sup done_pid status
	local_tools
	LOCAL_RUN=${LEDD_RUNTIME_DIR:-$LOCAL_RUNTIME_DIR}
	mkdir -p "$LOCAL_RUN"
	LOCAL_RUN=$(cd "$LOCAL_RUN" && pwd)
	if port_in_use "$PORT"; then
		fatal "port $PORT on 127.0.0.1 is already in use (another ./deploy.sh --local?); try --port $((PORT + 1))"
	fi
	local_check_rundir_free
	info "building ledd"
	make -s -C "$ROOT/cdaemon" >&2 || fatal "building ledd failed (compiler output above)"
	mkdir -p "$LOCAL_RUN/web"
	if [ -f "$ROOT/ledd/board.py" ]; then
		(cd "$ROOT" && "$PYTHON" -B -m ledd.board --out "$LOCAL_RUN/web/board.json") ||
			warn "board.json not generated; the page shows no header diagram"
	fi
	: >"$LOCAL_RUN/auth-none.conf" # no auth locally: lighttpd binds 127.0.0.1 only
	export LEDD_HOME=$ROOT LEDD_HTTP_BIND=127.0.0.1 LEDD_HTTP_PORT=$PORT LEDD_RUNTIME_DIR=$LOCAL_RUN
	export LEDD_WEB_STATE_DIR=$LOCAL_RUN/web LEDD_AUTH_INCLUDE=$LOCAL_RUN/auth-none.conf
	export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the checkout from the CGIs
	lighttpd -tt -f "$ROOT/lighttpd.conf" >&2 || fatal "lighttpd rejects lighttpd.conf (above)"

	trap local_stop EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	LOCAL_LEDD_LOG=$LOCAL_RUN/ledd.log
	local_supervise ledd "$LOCAL_LEDD_LOG" "$LOCAL_RESTART_S" "lighttpd keeps serving: the page shows 'daemon down'" \
		"$ROOT/cdaemon/ledd" -c "$ROOT/cdaemon/ledd.conf" -b sim -r "$LOCAL_RUN" -s "$LOCAL_RUN/state" &
	sup=$!
	LOCAL_PIDS+=("$sup")
	if ! local_wait_ready "$sup"; then
		cat "$LOCAL_LEDD_LOG" >&2
		fatal "ledd did not start (its log above, also in $LOCAL_LEDD_LOG)"
	fi
	LOCAL_OWNS_RUN=1
	local_gpiozero
	if mqtt_wanted; then mqtt_local_start; fi
	lighttpd -D -f "$ROOT/lighttpd.conf" &
	http=$!
	LOCAL_PIDS+=("$http")
	sleep 0.3
	if ! kill -0 "$http" 2>/dev/null; then
		port_in_use "$PORT" && fatal "port $PORT on 127.0.0.1 is already in use"
		fatal "lighttpd exited at start (its message above)"
	fi
	info "ledd (sim pins, restarted if it dies) and lighttpd are running"
	info "dashboard: http://127.0.0.1:$PORT/"
	info "runtime dir: $LOCAL_RUN   (other terminal: LEDD_RUNTIME_DIR=$LOCAL_RUN bin/ledctl state)"
	if [ -n "${LOCAL_GPIOZERO_HINT:-}" ]; then info "gpiozero scripts (other terminal): $LOCAL_GPIOZERO_HINT"; fi
	info "ledd log: $LOCAL_LEDD_LOG. Ctrl-C stops everything."
	# lighttpd ending ends the run; ledd's supervisor ends only when it gives up
	# (start limit) or when ledd exited cleanly (then lighttpd serves on alone).
	# The bridge's supervisor ending (it said why) leaves the rest running.
	while :; do
		status=0
		wait -n -p done_pid "${LOCAL_PIDS[@]}" || status=$?
		if [ "${done_pid:-}" = "$sup" ] && [ "$status" = 0 ]; then
			local_forget "$sup"
			continue
		fi
		if [ -n "${LOCAL_MQTT_SUP:-}" ] && [ "${done_pid:-}" = "$LOCAL_MQTT_SUP" ]; then
			local_forget "$LOCAL_MQTT_SUP"
			LOCAL_MQTT_SUP=
			continue
		fi
		break
	done
	if [ "${done_pid:-}" = "$http" ]; then
		warn "lighttpd $(describe_exit "$status"); stopping"
	else
		warn "ledd is down for good; stopping (ledd log: $LOCAL_LEDD_LOG)"
	fi
	exit 1
}
