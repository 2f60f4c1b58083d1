#!/usr/bin/env bash
# airlock serve in operation: SIGHUP picks up `airlock rollback` (requests in
# flight finish on the old version), SIGTERM drains, systemd readiness, a Unix
# socket with its file mode, loopback by default, TLS and mutual TLS, and a
# Q4_0 model served end to end.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v curl >/dev/null || skip_test "curl missing"
FIX=$(fixture)
gen="$AL_BUILD/airlock-ggufgen"
"$gen" --out "$T/v2.gguf" --type q4_0 --seed 3 --layers 2 --embd 64 --ff 192 --heads 4 --kv-heads 2 --ctx 256 \
    --vocab "$AL_VOCAB_DIR/ggml-vocab-llama-spm.gguf" 2>/dev/null || fail "generating a model"
airlock add stories:1.0 "$FIX" >/dev/null
fp() { post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":8,"temperature":0}'; jq_py 'd["system_fingerprint"]'; }
fp_is() { [ "$(fp)" = "$1" ]; }
fp_is_not() { [ "$(fp)" != "$1" ]; }

# ---- systemd readiness on $NOTIFY_SOCKET ----
python3 - "$T/notify.sock" "$T/notify.txt" <<'PY' &
import os, socket, sys
# Listens until the test ends (killed, or its parent shell is gone). No
# receive deadline: on a loaded machine the drain between READY=1 and
# STOPPING=1 took over a minute, and a listener that quit lost STOPPING=1.
parent = os.getppid()
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1]); s.settimeout(1)
with open(sys.argv[2], "a") as f:
    while os.getppid() == parent:
        try: m = s.recv(4096).decode()
        except socket.timeout: continue
        except OSError: break
        f.write(m + "\n"); f.flush()
PY
notify_pid=$!
wait_until 60 "the notify socket" test -S "$T/notify.sock"
NOTIFY_SOCKET="$T/notify.sock" serve_start stories --port 0 --ctx 4096 --max-tokens 4000
ready_sent() { grep -q READY=1 "$T/notify.txt" 2>/dev/null; }
wait_until 60 "READY=1 on NOTIFY_SOCKET" ready_sent
ok "READY=1 sent to \$NOTIFY_SOCKET"

# ---- SIGHUP and rollback ----
fp1=$(fp)
airlock add stories:2.0 "$T/v2.gguf" >/dev/null      # 2.0 becomes active in the index
[ "$(fp)" = "$fp1" ] || fail "the served version changed without a reload"
curl -sN "$BASE/v1/completions" -d '{"model":"stories","prompt":"Once upon a time","max_tokens":3000,"ignore_eos":true,"stream":true}' \
    >"$T/inflight.txt" & inflight=$!
wait_until 60 "the request to stream from the old version" has_event "$T/inflight.txt"
kill -HUP "$SERVE_PID"
wait_until 60 "SIGHUP to pick up stories:2.0" fp_is_not "$fp1"
fp2=$(fp)
[ "$fp2" != "$fp1" ] || fail "SIGHUP did not pick up stories:2.0"
wait "$inflight"
tail -c 20 "$T/inflight.txt" | qgrep 'data: \[DONE\]' || fail "the request in flight did not finish"
grep -c "\"system_fingerprint\":\"$fp1\"" "$T/inflight.txt" | qgrep -v '^0$' || fail "in-flight request changed model"
grep -q "\"system_fingerprint\":\"$fp2\"" "$T/inflight.txt" && fail "in-flight request saw the new model"
ok "SIGHUP serves the newly active version; the request in flight finished on the old one"
airlock rollback stories >/dev/null
kill -HUP "$SERVE_PID"
wait_until 60 "SIGHUP to pick up the rollback" fp_is "$fp1"
post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}'
[ "$(jq_py 'd["choices"][0]["text"]')" = "$GOLDEN" ] || fail "after rollback: $BODY"
wait_until 60 "the retired version to be unloaded" metric_is airlock_models_loaded 1
ok "airlock rollback + SIGHUP: the golden output again, the retired version unloaded"
post /v1/completions '{"model":"stories:2.0","prompt":"Once upon a time","max_tokens":8}'
expect_code 200
[ "$(jq_py 'd["system_fingerprint"]')" = "$fp2" ] || fail "stories:2.0 by tag: $BODY"
ok "a Q4_0 model served by tag next to the default (two models loaded)"

# ---- SIGHUP applies the config file's limits to new requests ----
serve_stop
printf '{"limits": {"max_tokens": 16}, "stream_interval_ms": 0}\n' >"$T/limits.json"
serve_start stories --port 0 --config "$T/limits.json"
post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":40}'; expect_code 400
printf '{"limits": {"max_tokens": 64}, "stream_interval_ms": 5}\n' >"$T/limits.json"
kill -HUP "$SERVE_PID"
wait_until 60 "the new limits to be applied" grep -q "limits applied" "$SERVE_LOG"
post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}'; expect_code 200
[ "$(jq_py 'd["choices"][0]["text"]')" = "$GOLDEN" ] || fail "after raising max_tokens: $BODY"
printf '{"limits": {"max_tokens": 0}}\n' >"$T/limits.json"
kill -HUP "$SERVE_PID"
wait_until 60 "the invalid config to be reported" grep -q "error: config: 'max_tokens'" "$SERVE_LOG"
post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}'; expect_code 200
post /v1/completions '{"model":"stories","prompt":"Once upon a time","max_tokens":100}'; expect_code 400
ok "SIGHUP: limits.max_tokens 16 -> 64 applies to the next request; an invalid file keeps the limits"
serve_stop
# A long drain timeout: on a loaded machine (ctest -j, OpenMP threads of
# other tests spinning) 2000 tokens took over the default 30 s.
NOTIFY_SOCKET="$T/notify.sock" serve_start stories --port 0 --ctx 4096 --max-tokens 4000 --drain-timeout 600

# ---- SIGTERM drains ----
curl -sN "$BASE/v1/completions" -d '{"model":"stories","prompt":"Once upon a time","max_tokens":2000,"ignore_eos":true,"stream":true}' \
    >"$T/drain.txt" & inflight=$!
wait_until 60 "the request to run before SIGTERM" has_event "$T/drain.txt"
kill -TERM "$SERVE_PID"
wait "$inflight" || fail "the request in flight failed (curl $?): $(tail -c 300 "$T/drain.txt"); $(tail -5 "$SERVE_LOG")"
tail -c 20 "$T/drain.txt" | qgrep 'data: \[DONE\]' || fail "SIGTERM cut the request in flight: $(tail -5 "$SERVE_LOG")"
gone() { ! kill -0 "$SERVE_PID" 2>/dev/null; }
wait_until 120 "the server to stop after SIGTERM" gone
wait "$SERVE_PID"; rc=$?
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
grep -q STOPPING=1 "$T/notify.txt" || fail "no STOPPING=1"
SERVE_PID=
ok "SIGTERM: the request in flight finished, then a clean exit"
kill "$notify_pid" 2>/dev/null || true

# ---- SIGTERM with a request longer than the drain timeout: it is cancelled ----
serve_start stories --port 0 --ctx 8192 --max-tokens 8000 --drain-timeout 1
curl -sN "$BASE/v1/completions" -d '{"model":"stories","prompt":"Once upon a time","max_tokens":8000,"ignore_eos":true,"stream":true}' \
    >"$T/cut.txt" & inflight=$!
wait_until 60 "the request to run before SIGTERM" has_event "$T/cut.txt"
kill -TERM "$SERVE_PID"
wait_until 120 "the server to exit after the drain timeout (it hangs)" gone
wait "$SERVE_PID" || fail "exit status $? after a cut-short drain"
SERVE_PID=
wait "$inflight" || true
ok "after the drain timeout what still runs is cancelled and the server exits cleanly"

# ---- listening ----
expect_status 2 airlock serve --host 0.0.0.0 --port 0
grep -q -- --listen-any <<<"$OUT" || fail "no hint at --listen-any: $OUT"
serve_start stories --socket "$T/al.sock" --socket-mode 0600
[ "$(stat -c %a "$T/al.sock")" = 600 ] || fail "socket mode $(stat -c %a "$T/al.sock")"
curl -s --unix-socket "$T/al.sock" http://x/health | qgrep '"ok"' || fail "health over the unix socket"
serve_stop
[ -e "$T/al.sock" ] && fail "the socket file was left behind"
ok "non-loopback needs --listen-any; Unix socket with its mode"

# ---- TLS and mutual TLS ----
command -v openssl >/dev/null || skip_test "openssl missing for the TLS part"
cd "$T"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=test CA" \
    -keyout ca.key -out ca.pem 2>/dev/null
mkcert() { # name subject ext
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
    printf '%s\n' "$3" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
mkcert server "/CN=localhost" "subjectAltName=IP:127.0.0.1,DNS:localhost"
mkcert client "/CN=alice/O=airlock tests" "extendedKeyUsage=clientAuth"
cd - >/dev/null
serve_start stories --port 0 --tls-cert "$T/server.pem" --tls-key "$T/server.key" --tls-client-ca "$T/ca.pem"
case "$BASE" in https://*) ;; *) fail "not https: $BASE";; esac
code=$(curl -s -o "$T/tls.txt" -w '%{http_code}' --cacert "$T/ca.pem" "$BASE/health")
[ "$code" = 401 ] || fail "mTLS without a client certificate: $code $(cat "$T/tls.txt")"
code=$(curl -s -o "$T/tls.txt" -w '%{http_code}' --cacert "$T/ca.pem" --cert "$T/client.pem" --key "$T/client.key" \
    "$BASE/v1/completions" -d '{"model":"stories","prompt":"Once upon a time","max_tokens":40,"temperature":0}')
[ "$code" = 200 ] || fail "mTLS with a client certificate: $code $(cat "$T/tls.txt")"
python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["choices"][0]["text"] == sys.argv[2]' "$T/tls.txt" "$GOLDEN" \
    || fail "golden over TLS"
grep -q 'caller=.*alice' "$SERVE_LOG" || fail "the client certificate's subject is not the caller: $(tail -3 "$SERVE_LOG")"
ok "mutual TLS: no certificate 401, a CA-signed one is the caller (CN=alice)"
