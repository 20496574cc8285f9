#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The checks of the systemd integration test. Runs inside the container booted
# by tests/nspawn/run.sh, as ci-test.service, once multi-user.target is
# reached, with asyncd installed (prefix /usr), the fixtures in /ci/fixtures
# and the project's test HTTP server in /ci/servers. Prints "ok - ..." or
# "FAIL - ..." per check, notes as "# ...", and ends with "N passed, N failed";
# exits 0 only when no check failed.
#
# It must not run on a host: it starts, stops, kills and reconfigures
# asyncd.service and user@0.service.

set -u
if [ "$(systemd-detect-virt --container 2>/dev/null)" != systemd-nspawn ] || [ ! -d /ci ]; then
        echo "in-container.sh: not in the test container, refusing to run" >&2
        exit 2
fi
export LC_ALL=C SYSTEMD_PAGER='' SYSTEMD_COLORS=0 SYSTEMD_LESS=''
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

FIXTURES=/ci/fixtures
FLAGS=$FIXTURES/flags
PORT=8080
BASE=http://127.0.0.1:$PORT
UNIT=asyncd.service
DROPIN_DIR=/run/systemd/system/$UNIT.d

pass=0
fail=0

ok() { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "FAIL - $*"; }
note() { echo "# $*"; }
section() { echo "# --- $*"; }
# check DESCRIPTION COMMAND...: passes when COMMAND succeeds.
check() {
        local what=$1
        shift
        if "$@"; then ok "$what"; else bad "$what"; fi
}
# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
        if [ "$2" = "$3" ]; then ok "$1 ($3)"; else bad "$1: expected '$2', got '$3'"; fi
}
# indent: show command output as notes
indent() { sed 's/^/#   /'; }

# wait_until SECONDS COMMAND...: polls COMMAND every 0.1 s.
wait_until() {
        local n=$(($1 * 10))
        shift
        while [ $n -gt 0 ]; do
                "$@" && return 0
                sleep 0.1
                n=$((n - 1))
        done
        "$@"
}

prop() { systemctl show -P "$2" "$1"; }
uprop() { user systemctl --user show -P "$2" "$1"; }
# user COMMAND...: run COMMAND (at most 60 s) in root's user session, i.e.
# against user@0.service and its bus (no machined here, so no -M root@).
user() {
        timeout 60 env XDG_RUNTIME_DIR=/run/user/0 DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/0/bus "$@"
}

name_owned() {
        busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
                NameHasOwner s io.asyncd1 2>/dev/null | grep -q '^b true$'
}
is_active() { [ "$(prop "$UNIT" ActiveState)" = active ]; }
is_inactive() { [ "$(prop "$UNIT" ActiveState)" = inactive ]; }
main_pid() { prop "$UNIT" MainPID; }
pid_changed_from() {
        local p
        p=$(main_pid)
        [ "$p" != 0 ] && [ "$p" != "$1" ] && is_active
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
count_temps() { find "$1" -maxdepth 1 -name '.#asyncd.*' | wc -l; }
# fresh_dir DIR: an empty download directory, mode 0755.
fresh_dir() { rm -rf "$1" && mkdir -m 0755 "$1"; }
# same_as_fixtures DIR CC...: how many of the flags CC... in DIR equal the fixtures.
same_as_fixtures() {
        local dir=$1 cc n=0
        shift
        for cc in "$@"; do
                cmp -s "$FLAGS/$cc/$cc.gif" "$dir/$cc.gif" && n=$((n + 1))
        done
        echo "$n"
}
journal() { journalctl --no-pager -q -o cat "$@"; }

section "environment"
note "$(systemctl --version | head -n 1)"
note "system state: $(systemctl is-system-running 2>&1)"
check "multi-user.target is active" systemctl -q is-active multi-user.target
check "dbus.service is active" systemctl -q is-active dbus.service

# ---------------------------------------------------------------------------
section "installed files and static checks"
for f in /usr/libexec/asyncd /usr/bin/asyncctl; do
        check "$f is installed and executable" test -x "$f"
done
for f in /usr/share/dbus-1/system.d/io.asyncd1.conf \
         /usr/share/dbus-1/system-services/io.asyncd1.service \
         /usr/share/dbus-1/services/io.asyncd1.service \
         /usr/lib/systemd/user/asyncd.service; do
        check "$f is installed" test -f "$f"
done
fragment=$(prop "$UNIT" FragmentPath)
expect_eq "systemd loads $UNIT from the system unit directory" /lib/systemd/system/asyncd.service "$fragment"
expect_eq "dbus-io.asyncd1.service is an alias of $UNIT" "$UNIT" "$(systemctl show -P Id dbus-io.asyncd1.service)"
expect_eq "$UNIT is Type=notify" notify "$(prop "$UNIT" Type)"
expect_eq "$UNIT has NotifyAccess=main" main "$(prop "$UNIT" NotifyAccess)"
expect_eq "$UNIT has BusName=io.asyncd1" io.asyncd1 "$(prop "$UNIT" BusName)"

out=$(systemd-analyze verify --man=no "$UNIT" 2>&1)
rc=$?
[ -z "$out" ] || echo "$out" | indent
if [ $rc = 0 ] && ! echo "$out" | grep -qi asyncd; then
        ok "systemd-analyze verify $UNIT: no complaints"
else
        bad "systemd-analyze verify $UNIT (status $rc)"
fi
out=$(systemd-analyze verify --man=no "$fragment" /usr/lib/systemd/system/dbus-io.asyncd1.service 2>&1)
rc=$?
[ -z "$out" ] || echo "$out" | indent
if [ $rc = 0 ] && ! echo "$out" | grep -qi asyncd; then
        ok "systemd-analyze verify of the unit files and the alias: no complaints"
else
        bad "systemd-analyze verify of the unit files and the alias (status $rc)"
fi
out=$(systemd-analyze security --no-pager --threshold=20 "$UNIT" 2>&1)
rc=$?
level=$(echo "$out" | grep 'Overall exposure level' | sed 's/.*: //')
if [ $rc = 0 ]; then
        ok "systemd-analyze security $UNIT: exposure $level, within the threshold 2.0"
else
        echo "$out" | grep '✗' | indent
        bad "systemd-analyze security $UNIT: exposure $level (status $rc), above 2.0"
fi
out=$(systemctl enable "$UNIT" 2>&1)
rc=$?
echo "$out" | indent
check "systemctl enable $UNIT (WantedBy=multi-user.target)" \
        test $rc = 0 -a "$(systemctl is-enabled "$UNIT")" = enabled -a -L "/etc/systemd/system/multi-user.target.wants/$UNIT"
systemctl disable -q "$UNIT"
expect_eq "systemctl disable $UNIT" disabled "$(systemctl is-enabled "$UNIT")"
names=$(busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ListActivatableNames 2>&1)
check "the system bus lists io.asyncd1 as activatable" grep -q '"io.asyncd1"' <<<"$names"

# ---------------------------------------------------------------------------
section "systemctl start: Type=notify readiness and STATUS="
expect_eq "$UNIT is not running before the test starts it" inactive "$(prop "$UNIT" ActiveState)"
t0=$(date +%s%N)
timeout 60 systemctl start "$UNIT"
rc=$?
# With Type=notify, "systemctl start" returns once READY=1 arrived, and asyncd
# sends READY=1 after it owns its bus name: so the name must be owned now.
owned_at_once=no
name_owned && owned_at_once=yes
t1=$(date +%s%N)
if [ $rc = 0 ]; then
        ok "systemctl start $UNIT ($(((t1 - t0) / 1000000)) ms)"
else
        bad "systemctl start $UNIT: status $rc"
fi
expect_eq "$UNIT is active" active "$(prop "$UNIT" ActiveState)"
expect_eq "io.asyncd1 is owned as soon as systemctl start returns (ready only after READY=1)" yes "$owned_at_once"
pid=$(main_pid)
check "MainPID $pid is asyncd" grep -qx asyncd "/proc/$pid/comm"
# field 19 of /proc/PID/task/TID/stat is the nice value (the comm field has no spaces here)
worker_nices() { for t in /proc/"$1"/task/*; do [ "${t##*/}" = "$1" ] || awk '{print $19}' "$t/stat"; done | sort -u | tr '\n' ' '; }
workers_below_main() { [ "$(worker_nices "$1")" = "$(($(awk '{print $19}' "/proc/$1/stat") + 10)) " ]; }
if wait_until 5 workers_below_main "$pid"; then
        ok "the disk workers run 10 nice levels below the main thread (nice $(worker_nices "$pid"))"
else
        bad "the disk workers' nice values are '$(worker_nices "$pid")', the main thread's $(awk '{print $19}' "/proc/$pid/stat")"
fi
status_text=$(prop "$UNIT" StatusText)
check "STATUS= text is set: \"$status_text\"" test -n "$status_text"
systemctl status --no-pager -n 0 "$UNIT" >/tmp/status.txt 2>&1
indent </tmp/status.txt
check "systemctl status shows the Status: line" grep -q 'Status: "' /tmp/status.txt
check "systemctl status shows the unit active (running)" grep -q 'Active: active (running)' /tmp/status.txt
check "the journal has the daemon's ready message" \
        wait_until 5 sh -c "journalctl -q -o cat -u $UNIT | grep -q 'ready on the system bus as io.asyncd1'"

# ---------------------------------------------------------------------------
section "D-Bus activation through systemd"
timeout 60 systemctl stop "$UNIT"
expect_eq "systemctl stop $UNIT: inactive" inactive "$(prop "$UNIT" ActiveState)"
check "io.asyncd1 is not owned after the stop" sh -c 'busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus NameHasOwner s io.asyncd1 | grep -q "^b false$"'
out=$(timeout 60 busctl call io.asyncd1 /io/asyncd1 io.asyncd1.Manager ListJobs 2>&1)
rc=$?
note "busctl call io.asyncd1 /io/asyncd1 io.asyncd1.Manager ListJobs -> $out"
check "a method call to io.asyncd1 starts the daemon and gets an answer" test $rc = 0 -a "${out%% *}" = "a(tossuuuuu)"
expect_eq "$UNIT is active after the call" active "$(prop "$UNIT" ActiveState)"
check "dbus-daemon asked systemd to start dbus-io.asyncd1.service" \
        sh -c "journalctl -q -o cat -u dbus.service | grep -q \"Activating via systemd: service name='io.asyncd1' unit='dbus-io.asyncd1.service'\""
check "a new MainPID ($(main_pid), was $pid)" pid_changed_from "$pid"

# ---------------------------------------------------------------------------
section "a local HTTP server"
systemd-run --quiet --unit=ci-httpd --property=Type=exec \
        python3 /ci/servers/fault-server.py --root "$FIXTURES" --port "$PORT" --log /run/ci-httpd.log
check "the test HTTP server listens on 127.0.0.1:$PORT" wait_until 15 port_open "$PORT"

# The server runs: had the job been accepted, the file would be there.
section "system bus policy: unprivileged callers"
nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
out=$(nobody busctl call io.asyncd1 /io/asyncd1 io.asyncd1.Manager ListJobs 2>&1)
check "nobody may call ListJobs ($out)" test $? = 0
out=$(nobody timeout 30 asyncctl submit -o /tmp "$BASE/flags/ad/ad.gif" 2>&1)
rc=$?
echo "$out" | indent
expect_eq "asyncctl submit as nobody is refused with exit status 2" 2 "$rc"
check "the refusal says only root may submit" grep -q 'only root may submit' <<<"$out"
check "no file was created for nobody" test ! -e /tmp/ad.gif

# ---------------------------------------------------------------------------
section "194 flags from the local HTTP server"
# /root is hidden from the service (ProtectHome=yes): the files can only get
# there through the directory file descriptor that asyncctl passes.
DL=/root/flags
fresh_dir "$DL"
codes=$(tr '[:upper:]' '[:lower:]' <"$FLAGS/country_codes.txt")
urls=()
for cc in $codes; do
        urls+=("$BASE/flags/$cc/$cc.gif")
done
n_codes=${#urls[@]}
urls+=("$BASE/flags/xx/xx.gif" "$BASE/flags/zz/zz.gif")
expect_eq "country_codes.txt has 194 codes" 194 "$n_codes"
t0=$(date +%s%N)
timeout 120 asyncctl submit -m 20 -o "$DL" "${urls[@]}" >/tmp/submit.out 2>&1
rc=$?
t1=$(date +%s%N)
indent </tmp/submit.out
note "asyncctl submit of ${#urls[@]} URLs took $(((t1 - t0) / 1000000)) ms"
expect_eq "asyncctl submit exits 3 (some tasks not found)" 3 "$rc"
check "the summary says 194 downloaded" grep -qx '194 downloaded.' /tmp/submit.out
check "the summary says 2 not found" grep -qx '2 not found.' /tmp/submit.out
expect_eq "number of files in $DL" 194 "$(find "$DL" -mindepth 1 | wc -l)"
# shellcheck disable=SC2086 # one word per code
expect_eq "files identical to the fixtures" 194 "$(same_as_fixtures "$DL" $codes)"
check "no file for the unknown codes" test ! -e "$DL/xx.gif" -a ! -e "$DL/zz.gif"
expect_eq "no temporary files left" 0 "$(count_temps "$DL")"
expect_eq "file owner and mode (root, UMask=0022)" "root 644" "$(stat -c '%U %a' "$DL/ad.gif")"
expect_eq "the server saw 196 requests" 196 "$(wc -l </run/ci-httpd.log)"
asyncctl status >/tmp/status.out 2>&1
indent </tmp/status.out
check "asyncctl status lists the job as done, 196/196" grep -Eq ' done +196/196 +194 +2 ' /tmp/status.out

# ---------------------------------------------------------------------------
section "HTTPS: the sandboxed service verifies against the system trust store"
# A local authority installed the Debian way; the server's certificate names
# 127.0.0.1 only, so https://localhost/ must fail the host name check.
TLS=/run/ci-tls
TLS_PORT=8443
mkdir -p "$TLS"
(
        cd "$TLS" &&
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key &&
        openssl req -x509 -new -key ca.key -subj "/CN=asyncd CI CA" -days 2 -out ca.crt \
                -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign &&
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key &&
        openssl req -new -key server.key -subj /CN=127.0.0.1 -out server.csr &&
        printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext &&
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
                -extfile server.ext -out server.crt
) >/tmp/tls.out 2>&1
check "a test CA and a server certificate for 127.0.0.1 are made" test -s "$TLS/server.crt"
cp "$TLS/ca.crt" /usr/local/share/ca-certificates/asyncd-ci-ca.crt
update-ca-certificates >/tmp/tls.out 2>&1
check "update-ca-certificates adds the CA to /etc/ssl/certs" \
        grep -q "$(sed -n 2p "$TLS/ca.crt")" /etc/ssl/certs/ca-certificates.crt
systemd-run --quiet --unit=ci-httpsd --property=Type=exec \
        python3 /ci/servers/fault-server.py --root "$FIXTURES" --port "$TLS_PORT" \
        --tls "$TLS/server.crt" "$TLS/server.key" --log /run/ci-httpsd.log
check "the test HTTPS server listens on 127.0.0.1:$TLS_PORT" wait_until 15 port_open "$TLS_PORT"
TDL=/root/tls-flags
fresh_dir "$TDL"
timeout 60 asyncctl submit -o "$TDL" "https://127.0.0.1:$TLS_PORT/flags/br/br.gif" \
        "https://127.0.0.1:$TLS_PORT/flags/jp/jp.gif" "https://127.0.0.1:$TLS_PORT/flags/ng/ng.gif" \
        >/tmp/tls.out 2>&1
rc=$?
indent </tmp/tls.out
expect_eq "asyncctl submit of 3 flags over HTTPS exits 0" 0 "$rc"
expect_eq "the 3 files are identical to the fixtures" 3 "$(same_as_fixtures "$TDL" br jp ng)"
timeout 60 asyncctl submit -v -o "$TDL" "https://localhost:$TLS_PORT/flags/fr/fr.gif" >/tmp/tls.out 2>&1
rc=$?
indent </tmp/tls.out
expect_eq "a certificate for another host name: asyncctl exits 3" 3 "$rc"
check "the task's error names the TLS host name check" grep -q "SSL.*localhost" /tmp/tls.out
check "no file for it" test ! -e "$TDL/fr.gif"
expect_eq "the HTTPS server served exactly the 3 trusted requests" 3 "$(wc -l </run/ci-httpsd.log)"
systemctl stop ci-httpsd.service
rm -f /usr/local/share/ca-certificates/asyncd-ci-ca.crt
update-ca-certificates --fresh >/dev/null 2>&1

# ---------------------------------------------------------------------------
section "systemctl stop in the middle of a slow job"
SLOW=/srv/slow
fresh_dir "$SLOW"
printf 'old content\n' >"$SLOW/big2"
# 1 KiB per millisecond at most: the first 256 KiB (when asyncd creates its
# temporary file) arrive after about a quarter second, the whole 50 MB only
# after 50 s, long after the stop.
printf '%s %s\n' "$BASE/trickle/1/piece/1024/bytes/50000000" big1 "$BASE/trickle/1/piece/1024/bytes/50000001" big2 |
        timeout 30 asyncctl submit --no-wait --overwrite --name=slow -o "$SLOW" -i - >/tmp/slow.out 2>&1
rc=$?
check "asyncctl submit --no-wait --overwrite returns at once with a job id ($(cat /tmp/slow.out))" \
        test $rc = 0 -a -n "$(grep -E '^[0-9]+$' /tmp/slow.out)"
# Files that replace others have no name until complete: the daemon's descriptors show them.
check "both downloads are under way (the daemon writes two unnamed files in $SLOW)" \
        wait_until 20 sh -c "[ \$(find /proc/\$(systemctl show -P MainPID $UNIT)/fd -lname '$SLOW/*' | wc -l) = 2 ]"
expect_eq "no temporary name while they download" 0 "$(count_temps "$SLOW")"
find "$SLOW" -mindepth 1 -printf "%M %u %s %f\n" | sort -k4 | indent
status_text=$(prop "$UNIT" StatusText)
check "STATUS= reflects the running job: \"$status_text\"" grep -q '^1 running job' <<<"$status_text"
pid=$(main_pid)
t0=$(date +%s%N)
timeout 60 systemctl stop "$UNIT"
rc=$?
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
check "systemctl stop $UNIT succeeds in $ms ms (< 10 s)" test $rc = 0 -a $ms -lt 10000
check "the daemon is gone" test ! -e "/proc/$pid"
expect_eq "ActiveState after the stop" inactive "$(prop "$UNIT" ActiveState)"
expect_eq "Result after the stop" success "$(prop "$UNIT" Result)"
expect_eq "the daemon's exit status" 0 "$(prop "$UNIT" ExecMainStatus)"
check "$UNIT is not failed" sh -c "! systemctl -q is-failed $UNIT"
find "$SLOW" -mindepth 1 -printf "%M %u %s %f\n" | sort -k4 | indent
expect_eq "no temporary file left" 0 "$(count_temps "$SLOW")"
check "no partial file (big1 does not exist)" test ! -e "$SLOW/big1"
expect_eq "the file that --overwrite would replace is untouched" "old content" "$(cat "$SLOW/big2")"
check "the daemon logged that it cancelled the running job" \
        sh -c "journalctl -q -o cat -u $UNIT | grep -q 'cancelling 1 running jobs'"

# ---------------------------------------------------------------------------
section "Restart=on-failure after SIGSEGV"
timeout 60 systemctl start "$UNIT"
check "$UNIT started again" is_active
pid=$(main_pid)
restarts=$(prop "$UNIT" NRestarts)
systemctl kill -s SEGV "$UNIT"
check "$UNIT is restarted with a new MainPID" wait_until 15 pid_changed_from "$pid"
note "MainPID $pid -> $(main_pid)"
expect_eq "NRestarts went up by one" $((restarts + 1)) "$(prop "$UNIT" NRestarts)"
check "the journal shows the SEGV" \
        sh -c "journalctl -q -o cat -u $UNIT | grep -q 'status=11/SEGV'"
check "io.asyncd1 is owned again" wait_until 5 name_owned
out=$(timeout 30 busctl call io.asyncd1 /io/asyncd1 io.asyncd1.Manager ListJobs 2>&1)
check "the restarted daemon answers ($out)" test $? = 0

# ---------------------------------------------------------------------------
section "sandboxing of the running service"
pid=$(main_pid)
grep -E '^(Uid|NoNewPrivs|Seccomp|Cap(Inh|Prm|Eff|Bnd|Amb)):' "/proc/$pid/status" | indent
st() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }
expect_eq "NoNewPrivs" 1 "$(st NoNewPrivs)"
expect_eq "Seccomp (2 = filter)" 2 "$(st Seccomp)"
for c in CapEff CapPrm CapBnd CapAmb CapInh; do
        expect_eq "$c" 0000000000000000 "$(st $c)"
done
expect_eq "runs as uid 0" 0 "$(st Uid | cut -f1)"
expect_eq "PrivateUsers=yes: uid_map maps only root" "0 0 1" "$(awk '{ print $1, $2, $3 }' "/proc/$pid/uid_map")"
check "cgroup is system.slice/asyncd.service" grep -q '/system.slice/asyncd.service$' "/proc/$pid/cgroup"
root_opts=$(awk '$5 == "/" { o = $6 } END { print o }' "/proc/$pid/mountinfo")
check "ProtectSystem=strict: / is mounted read-only for the service ($root_opts)" grep -Eq '(^|,)ro(,|$)' <<<"$root_opts"
rm -f /etc/asyncd-write-probe
out=$(nsenter -t "$pid" -m touch /etc/asyncd-write-probe 2>&1)
rc=$?
note "touch /etc/asyncd-write-probe in the service's mount namespace: ${out:-succeeded}"
check "writing to /etc from the service's mount namespace fails" test $rc != 0 -a ! -e /etc/asyncd-write-probe
rm -f /etc/asyncd-write-probe
out=$(nsenter -t "$pid" -m ls -A /root 2>&1)
check "ProtectHome=yes: /root is empty for the service (${out:-empty})" test -z "$out"
touch /tmp/ci-host-tmp-probe
check "PrivateTmp=yes: the service has its own /tmp" \
        sh -c "! nsenter -t $pid -m test -e /tmp/ci-host-tmp-probe"
rm -f /tmp/ci-host-tmp-probe

# ---------------------------------------------------------------------------
section "watchdog"
expect_eq "WatchdogUSec from the unit" 3min "$(prop "$UNIT" WatchdogUSec)"
mkdir -p "$DROPIN_DIR"
printf '[Service]\nWatchdogSec=2s\n' >"$DROPIN_DIR/50-ci-watchdog.conf"
systemctl daemon-reload
timeout 60 systemctl restart "$UNIT"
expect_eq "WatchdogUSec with the drop-in" 2s "$(prop "$UNIT" WatchdogUSec)"
pid=$(main_pid)
restarts=$(prop "$UNIT" NRestarts)
start_mono=$(prop "$UNIT" ExecMainStartTimestampMonotonic)
sleep 1
wd1=$(prop "$UNIT" WatchdogTimestampMonotonic)
sleep 5
wd2=$(prop "$UNIT" WatchdogTimestampMonotonic)
note "WatchdogTimestamp: $(prop "$UNIT" WatchdogTimestamp)"
check "still active after 6 s with WatchdogSec=2s, same MainPID, no restart" \
        test "$(prop "$UNIT" ActiveState)" = active -a "$(main_pid)" = "$pid" -a "$(prop "$UNIT" NRestarts)" = "$restarts"
check "the daemon keeps pinging: WatchdogTimestamp moved ($wd1 -> $wd2), last ping > 3 s after start" \
        test "$wd1" -gt 0 -a "$wd2" -gt "$wd1" -a $((wd2 - start_mono)) -gt 3000000
# A frozen daemon stops pinging: systemd must notice and restart it.
systemctl kill -s STOP "$UNIT"
check "a stopped (SIGSTOP) daemon is restarted by the watchdog" wait_until 15 pid_changed_from "$pid"
check "the journal says so" sh -c "journalctl -q -o cat -u $UNIT | grep -q 'Watchdog timeout'"
rm -f "$DROPIN_DIR/50-ci-watchdog.conf"
systemctl daemon-reload
timeout 60 systemctl restart "$UNIT"
expect_eq "WatchdogUSec without the drop-in" 3min "$(prop "$UNIT" WatchdogUSec)"

# ---------------------------------------------------------------------------
section "Linux before 6.10: linkat(AT_EMPTY_PATH) refused to the capability-less service"
# Debian 12's kernel (6.1) refuses it, as this newer kernel would not: /ci/bin/refuse-flink
# gives that answer by a seccomp filter, and the files must still appear, through /proc/self/fd,
# with the unit's ProtectProc=invisible and ProcSubset=pid.
filters() { awk '/^Seccomp_filters:/ { print $2 }' "/proc/$1/status"; }
unit_filters=$(filters "$(main_pid)")
printf '[Service]\nExecStart=\nExecStart=/ci/bin/refuse-flink /usr/libexec/asyncd --system\n' \
        >"$DROPIN_DIR/50-ci-refuse-flink.conf"
systemctl daemon-reload
timeout 60 systemctl restart "$UNIT"
pid=$(main_pid)
expect_eq "the service runs asyncd" /usr/libexec/asyncd "$(readlink "/proc/$pid/exe")"
expect_eq "under the unit's seccomp filters ($unit_filters) and one more" $((unit_filters + 1)) "$(filters "$pid")"
FDL=/root/flink-flags
fresh_dir "$FDL"
for round in new overwrite; do
        opt=
        [ $round = overwrite ] && opt=--overwrite
        timeout 60 asyncctl submit $opt -o "$FDL" "$BASE/flags/br/br.gif" "$BASE/flags/jp/jp.gif" \
                "$BASE/flags/ng/ng.gif" >/tmp/flink.out 2>&1
        rc=$?
        indent </tmp/flink.out
        expect_eq "submit of 3 flags ($round files) exits 0" 0 "$rc"
        expect_eq "files identical to the fixtures ($round files)" 3 "$(same_as_fixtures "$FDL" br jp ng)"
done
expect_eq "only the 3 flags, no temporary files" 3 "$(find "$FDL" -mindepth 1 | wc -l)"
rm -f "$DROPIN_DIR/50-ci-refuse-flink.conf"
systemctl daemon-reload
timeout 60 systemctl restart "$UNIT"

# ---------------------------------------------------------------------------
section "user instance under user@0.service"
timeout 60 systemctl start user@0.service
check "user@0.service is active" systemctl -q is-active user@0.service
check "the user bus socket exists" wait_until 10 test -S /run/user/0/bus
out=$(user systemd-analyze --user verify --man=no asyncd.service 2>&1)
rc=$?
[ -z "$out" ] || echo "$out" | indent
check "systemd-analyze --user verify asyncd.service: no complaints" test $rc = 0 -a -z "$(echo "$out" | grep -i asyncd)"
expect_eq "the user unit is loaded from" /usr/lib/systemd/user/asyncd.service "$(uprop asyncd.service FragmentPath)"
user systemctl --user start asyncd.service
check "systemctl --user start asyncd.service" test $? = 0
expect_eq "user $UNIT is active" active "$(uprop asyncd.service ActiveState)"
upid=$(uprop asyncd.service MainPID)
note "user instance MainPID $upid"
expect_eq "the user unit is Type=notify" notify "$(uprop asyncd.service Type)"
status_text=$(uprop asyncd.service StatusText)
check "the user instance sets STATUS=: \"$status_text\"" test -n "$status_text"
check "the user instance runs in user@0.service" grep -q '/user@0.service/' "/proc/$upid/cgroup"
check "the user instance has NoNewPrivs and a seccomp filter" \
        sh -c "grep -q '^NoNewPrivs:.1' /proc/$upid/status && grep -q '^Seccomp:.2' /proc/$upid/status"
out=$(user busctl --user call io.asyncd1 /io/asyncd1 io.asyncd1.Manager ListJobs 2>&1)
check "busctl --user call ... ListJobs ($out)" test $? = 0
UDL=/root/user-flags
fresh_dir "$UDL"
user asyncctl --user submit -o "$UDL" "$BASE/flags/br/br.gif" "$BASE/flags/jp/jp.gif" \
        "$BASE/flags/ng/ng.gif" >/tmp/user.out 2>&1
rc=$?
indent </tmp/user.out
expect_eq "asyncctl --user submit of 3 flags exits 0" 0 "$rc"
expect_eq "files identical to the fixtures" 3 "$(same_as_fixtures "$UDL" br jp ng)"
user systemctl --user stop asyncd.service
expect_eq "systemctl --user stop asyncd.service" inactive "$(uprop asyncd.service ActiveState)"
out=$(user busctl --user call io.asyncd1 /io/asyncd1 io.asyncd1.Manager ListJobs 2>&1)
check "a call on the user bus activates the user unit again ($out)" \
        test $? = 0 -a "$(uprop asyncd.service ActiveState)" = active -a "$(uprop asyncd.service MainPID)" != "$upid"
timeout 60 systemctl stop user@0.service
check "user@0.service stopped" sh -c '! systemctl -q is-active user@0.service'
check "user@0.service is not failed" sh -c '! systemctl -q is-failed user@0.service'

# ---------------------------------------------------------------------------
section "wrap-up"
systemctl stop ci-httpd.service
timeout 60 systemctl stop "$UNIT"
check "$UNIT stops cleanly at the end" sh -c "! systemctl -q is-failed $UNIT"
failed_units=$(systemctl list-units --failed --plain --no-legend 2>&1)
[ -z "$failed_units" ] || { note "failed units:"; echo "$failed_units" | indent; }

if [ $fail -gt 0 ]; then
        note "journal of $UNIT:"
        journal -u "$UNIT" | tail -n 40 | indent
fi
echo "$pass passed, $fail failed"
[ $fail = 0 ]
