"""The /init of the emulated Raspberry Pi 3B (busybox sh), as a Python string.

It runs the same scenario once per ledd build (aarch64, then armhf, both
static, on the one arm64 kernel) and reports on the serial console, which
``test_raspi.py`` parses:

    LEDD-TEST PASS <build>/<check>
    LEDD-TEST FAIL <build>/<check>: <why>
    LEDD-SAMPLE <build>-blink <t_ms> <level>     (blink timing, judged in Python)
    LEDD-LINEINFO <build> <gpio> <what the kernel reports>   (judged in Python)
    LEDD-TEST-END

Every request goes through ``raspitool req``, the C client of
docs/protocol.md; every level is read back by raspitool from
/sys/kernel/debug/gpio, i.e. from the chip's registers through the driver,
not from ledd.
"""

VM_TOOL = "/usr/bin/raspitool"
VM_CONFIG = "/etc/ledd/ledd.conf"
VM_RUNTIME = "/run/ledd"
VM_STATE = "/var/lib/ledd/state"
#: Where each build's binary goes: /usr/sbin/ledd-<build>.
VM_LEDD = "/usr/sbin/ledd-%s"

#: Label of the header's chip on a Pi 1-3 and of the firmware's expander (the decoy).
PI_LABEL = "pinctrl-bcm2835"
DECOY_LABEL = "raspberrypi-exp-gpio"
#: The default wiring of cdaemon/ledd.conf, by BCM number.
RED, GREEN, BUTTON = 17, 27, 22

#: Blink periods asked for and how long the level is sampled (>= 6 cycles).
BLINK_ON_MS = 200
BLINK_OFF_MS = 100
BLINK_SAMPLE_MS = 2000
#: Blink periods set before the SIGTERM, so the restart has a blink to restore.
RESTORE_ON_MS = 250
RESTORE_OFF_MS = 250

#: Every check one build reports, in order; a missing one fails the test too.
CHECKS = [
    "check-config-ok", "check-config-bad-key",
    "ledd-ready", "hello-chardev", "chip-auto-is-pinctrl", "chip-auto-skips-decoy",
    "led-lines-output-ledd", "second-consumer-refused",
    "on-red", "off-red", "toggle-green-on", "toggle-green-off", "all-on", "all-off",
    "blink-reply", "blink-off-stops",
    "button-line-input-ledd", "press-verb-refused",
    "sigterm-exit-0", *("sigterm-released-%d" % gpio for gpio in (RED, BUTTON, GREEN)),
    "sigterm-line-free-for-others",
    "restart-ready", "restart-restores-red-on", "restart-restores-green-blink", "restart-green-blinks",
    "busy-exits-nonzero", "busy-message-names-consumer", "busy-leaves-other-lines-free",
]

_SETUP = r"""#!/bin/sh
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug
mkdir -p /tmp /run /var/lib/ledd && mount -t tmpfs tmpfs /tmp && mount -t tmpfs tmpfs /run
echo "LEDD-TEST-MODEL $(tr -d '\000' < /proc/device-tree/model)"
T=@TOOL@
$T chips | sed 's/^/LEDD-TEST-CHIP /'
PI_DEV=/dev/$($T chips | grep " label=@PI_LABEL@ " | cut -d' ' -f1)
DECOY_DEV=/dev/$($T chips | grep " label=@DECOY_LABEL@ " | cut -d' ' -f1)
R=@RUNTIME@
S=@STATE@
C=@CONFIG@
"""

_SCENARIO = r"""
run_build() {
A=$1; L=$2; LOG=/tmp/ledd-$A.log
pass() { echo "LEDD-TEST PASS $A/$1"; }
fail() { echo "LEDD-TEST FAIL $A/$1: $2"; }
# check NAME DETAIL COMMAND...: PASS when COMMAND succeeds.
check() { n=$1; d=$2; shift 2; if "$@"; then pass "$n"; else fail "$n" "$d"; fi; }
# req VERB ARGS...: one exchange with ledd; the reply line lands in $REPLY_LINE.
req() { REPLY_LINE=$($T req "$R" "$@"); }
ok_reply() { case "$REPLY_LINE" in *" OK "*) return 0;; esac; return 1; }
# field OBJECT-NAME KEY: a value of the LED/button object named OBJECT-NAME in $REPLY_LINE.
field() { echo "$REPLY_LINE" | grep -o "{[^{}]*\"name\":\"$1\"[^}]*}*" | grep -o "\"$2\":[a-z0-9]*" | head -1 | cut -d: -f2; }
level() { $T level "GPIO$1"; }
lineinfo() { $T lineinfo "$PI_DEV" "$1"; }
used() { lineinfo "$1" | grep -q 'flags=used'; }
# start_ledd: start ledd, wait (10 s at most) for its "ready" log line, then HELLO. Clients
# wait for "ready": ledd's start-up sweep removes reply FIFOs that it finds unread.
start_ledd() {
    touch "$LOG"; before=$(grep -c ' ready: ' "$LOG")
    $L -c "$C" -r "$R" -s "$S" >> "$LOG" 2>&1 &
    LEDD=$!
    i=0
    while [ "$(grep -c ' ready: ' "$LOG")" = "$before" ]; do
        i=$((i + 1)); [ $i -gt 100 ] && return 1
        kill -0 $LEDD 2>/dev/null || return 1
        sleep 0.1
    done
    req HELLO && ok_reply
}
# stop_ledd: SIGTERM, wait at most 10 s; STOP_RC is the exit status (KILLED if it hung).
stop_ledd() {
    kill -TERM $LEDD; i=0
    while kill -0 $LEDD 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    if kill -0 $LEDD 2>/dev/null; then kill -KILL $LEDD; wait $LEDD; STOP_RC=KILLED; else wait $LEDD; STOP_RC=$?; fi
}
rm -rf "$R" "$S"

OUT=$($L --check-config -c "$C" 2>&1); RC=$?
check check-config-ok "exit $RC: $OUT" eval '[ $RC = 0 ] && [ "$OUT" = "$C: ok (chardev, 2 LEDs, 1 button)" ]'
printf '[ledd]\nchip = auto\nbogus = 1\n[led red]\ngpio = @RED@\n' > /tmp/bad.conf
OUT=$($L --check-config -c /tmp/bad.conf 2>&1); RC=$?
check check-config-bad-key "exit $RC: $OUT" eval '[ $RC = 1 ] && echo "$OUT" | grep -qF "/tmp/bad.conf:3: unknown key '"'bogus'"'"'

if start_ledd; then pass ledd-ready; else fail ledd-ready "no HELLO reply: $REPLY_LINE; log: $(tr '\n' '|' < $LOG)"; fi
check hello-chardev "$REPLY_LINE" eval 'ok_reply && echo "$REPLY_LINE" | grep -q "\"backend\":\"chardev\""'
check chip-auto-is-pinctrl "log: $(tr '\n' '|' < $LOG)" grep -qF "ready: $PI_DEV [@PI_LABEL@]" "$LOG"
DECOY_USED=$(for i in 0 1 2 3 4 5 6 7; do $T lineinfo "$DECOY_DEV" $i; done | grep -c consumer=ledd)
check chip-auto-skips-decoy "decoy $DECOY_DEV: $DECOY_USED lines held by ledd" eval '[ -c "$DECOY_DEV" ] && [ "$DECOY_USED" = 0 ]'
check led-lines-output-ledd "GPIO@RED@: $(lineinfo @RED@); GPIO@GREEN@: $(lineinfo @GREEN@)" eval \
    'lineinfo @RED@ | grep -q "consumer=ledd flags=used,output" && lineinfo @GREEN@ | grep -q "consumer=ledd flags=used,output"'
PEEK=$($T peek "$PI_DEV" @RED@)
check second-consumer-refused "a second uAPI request of GPIO@RED@ gave: $PEEK" eval 'case "$PEEK" in busy:*) true;; *) false;; esac'

req ON red;       check on-red "reply $REPLY_LINE, GPIO@RED@ $(level @RED@)" eval 'ok_reply && [ "$(level @RED@)" = "out 1" ] && [ "$(field red on)" = true ]'
req OFF red;      check off-red "reply $REPLY_LINE, GPIO@RED@ $(level @RED@)" eval 'ok_reply && [ "$(level @RED@)" = "out 0" ] && [ "$(field red on)" = false ]'
req TOGGLE green; check toggle-green-on "reply $REPLY_LINE, GPIO@GREEN@ $(level @GREEN@)" eval 'ok_reply && [ "$(level @GREEN@)" = "out 1" ] && [ "$(field green on)" = true ]'
req TOGGLE 1;     check toggle-green-off "reply $REPLY_LINE, GPIO@GREEN@ $(level @GREEN@)" eval 'ok_reply && [ "$(level @GREEN@)" = "out 0" ] && [ "$(field green on)" = false ]'
req ALL ON;       check all-on "reply $REPLY_LINE, GPIO@RED@ $(level @RED@), GPIO@GREEN@ $(level @GREEN@)" eval 'ok_reply && [ "$(level @RED@)/$(level @GREEN@)" = "out 1/out 1" ]'
req ALL OFF;      check all-off "reply $REPLY_LINE, GPIO@RED@ $(level @RED@), GPIO@GREEN@ $(level @GREEN@)" eval 'ok_reply && [ "$(level @RED@)/$(level @GREEN@)" = "out 0/out 0" ]'

req BLINK red @BLINK_ON@ @BLINK_OFF@
check blink-reply "$REPLY_LINE" eval 'ok_reply && echo "$REPLY_LINE" | grep -q "\"blink\":{\"on_ms\":@BLINK_ON@,\"off_ms\":@BLINK_OFF@}"'
$T sample GPIO@RED@ @BLINK_SAMPLE@ | sed "s/^/LEDD-SAMPLE $A-blink /"
req OFF red
B1=$(level @RED@); sleep 0.4; B2=$(level @RED@)
check blink-off-stops "GPIO@RED@ $B1, then $B2 after OFF" eval '[ "$B1/$B2" = "out 0/out 0" ] && ok_reply && [ "$(field red on)" = false ]'

echo "LEDD-LINEINFO $A @BUTTON@ $(lineinfo @BUTTON@)"
echo "LEDD-LINEINFO $A @RED@ $(lineinfo @RED@)"
check button-line-input-ledd "GPIO@BUTTON@: $(lineinfo @BUTTON@), debugfs: $(level @BUTTON@)" eval 'case "$(level @BUTTON@)" in "in "*) true;; *) false;; esac'
req PRESS button
check press-verb-refused "$REPLY_LINE" eval 'case "$REPLY_LINE" in *" ERR notsupported "*) true;; *) false;; esac'

# SIGTERM releases every line; the state (red on, green blinking) comes back on restart.
req ON red; req BLINK green @RESTORE_ON@ @RESTORE_OFF@
stop_ledd
check sigterm-exit-0 "exit status $STOP_RC; log: $(tr '\n' '|' < $LOG)" [ "$STOP_RC" = 0 ]
for l in @RED@ @BUTTON@ @GREEN@; do check sigterm-released-$l "still requested after exit: $(lineinfo $l)" eval "! used $l"; done
PEEK=$($T peek "$PI_DEV" @RED@)
check sigterm-line-free-for-others "a uAPI request of GPIO@RED@ gave: $PEEK" eval 'case "$PEEK" in value=*) true;; *) false;; esac'
if start_ledd; then pass restart-ready; else fail restart-ready "no HELLO after restart: $REPLY_LINE"; fi
check restart-restores-red-on "GPIO@RED@ $(level @RED@)" [ "$(level @RED@)" = "out 1" ]
req STATE
check restart-restores-green-blink "$REPLY_LINE" eval 'echo "$REPLY_LINE" | grep -q "\"name\":\"green\",[^}]*\"blink\":{\"on_ms\":@RESTORE_ON@,\"off_ms\":@RESTORE_OFF@}"'
FLIPS=$($T sample GPIO@GREEN@ 1200 | grep -c '^[0-9.]* [01]$')
check restart-green-blinks "$FLIPS level changes of GPIO@GREEN@ in 1.2 s" [ "$FLIPS" -ge 4 ]
stop_ledd

# A line held by another consumer: ledd says which and by whom, and holds nothing.
$T hold "$PI_DEV" @GREEN@ foo > /tmp/hold.out & HOLD=$!
i=0; while ! grep -q held /tmp/hold.out 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
timeout 10 $L -c "$C" -r "$R" -s "$S" > /tmp/busy.log 2>&1; RC=$?
check busy-exits-nonzero "exit status $RC (124: still running after 10 s)" eval '[ $RC != 0 ] && [ $RC != 124 ]'
check busy-message-names-consumer "log: $(tr '\n' '|' < /tmp/busy.log)" \
    grep -qF "GPIO@GREEN@ (led green) is busy: used by \"foo\" on $PI_DEV [@PI_LABEL@]" /tmp/busy.log
check busy-leaves-other-lines-free "GPIO@RED@: $(lineinfo @RED@); GPIO@BUTTON@: $(lineinfo @BUTTON@)" eval '! used @RED@ && ! used @BUTTON@'
kill $HOLD; wait $HOLD 2>/dev/null
echo "LEDD-LOG-BEGIN $A"; cat "$LOG"; echo "LEDD-LOG-END $A"
}
"""


def init_script(builds):
    """The VM's /init: run the scenario for each build name in ``builds``, then print END."""
    script = _SETUP + _SCENARIO
    for build in builds:
        script += "run_build %s %s\n" % (build, VM_LEDD % build)
    script += "echo LEDD-TEST-END\nsleep 3600\n"
    values = {"@TOOL@": VM_TOOL, "@RUNTIME@": VM_RUNTIME, "@STATE@": VM_STATE, "@CONFIG@": VM_CONFIG,
              "@PI_LABEL@": PI_LABEL, "@DECOY_LABEL@": DECOY_LABEL, "@RED@": RED, "@GREEN@": GREEN,
              "@BUTTON@": BUTTON, "@BLINK_ON@": BLINK_ON_MS, "@BLINK_OFF@": BLINK_OFF_MS,
              "@BLINK_SAMPLE@": BLINK_SAMPLE_MS, "@RESTORE_ON@": RESTORE_ON_MS, "@RESTORE_OFF@": RESTORE_OFF_MS}
    for key, val in values.items():
        script = script.replace(key, str(val))
    return script
