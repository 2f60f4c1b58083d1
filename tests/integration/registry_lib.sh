# registry_lib.sh: Debian's docker-registry (CNCF distribution 2.8) for the
# integration tests. Source after lib.sh (and serve_lib.sh when used: its
# EXIT trap is replaced by one that stops both). Each registry runs on a free
# loopback port with its own config and storage under $T.
#
#   reg_ca                       a test CA and a server certificate for
#                                127.0.0.1 (REG_CA, REG_CERT, REG_KEY)
#   reg_start NAME [tls] [auth USER PASS]
#                                starts a registry; sets REG (127.0.0.1:PORT)
#                                and REG_PID_<NAME>; readiness by polling /v2/
#   reg_stop_all                 stops every registry this test started
#
# docker-registry's htpasswd auth reads bcrypt entries only: htpasswd -B
# (apache2-utils).

REG_PIDS=()
reg_stop_all() {
    local p
    for p in "${REG_PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
        for _ in $(seq 1 200); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
        kill -KILL "$p" 2>/dev/null || true
    done
    REG_PIDS=()
}
if declare -F serve_stop >/dev/null; then
    trap 'rc=$?; (serve_stop) || rc=1; reg_stop_all; rm -rf "$T"; exit $rc' EXIT
else
    trap 'rc=$?; reg_stop_all; rm -rf "$T"; exit $rc' EXIT
fi

reg_need_tools() {
    local t
    for t in docker-registry skopeo openssl htpasswd curl; do
        command -v $t >/dev/null || skip_test "$t missing (scripts/bootstrap.sh installs it)"
    done
}

# free_port: a port the kernel hands out for loopback, released for the caller.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

reg_ca() {
    local d="$T/ca"
    mkdir -p "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=airlock test CA" -keyout "$d/ca.key" \
        -out "$d/ca.pem" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
        2>/dev/null || fail "openssl: cannot make the test CA"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$d/server.key" -out "$d/server.csr" \
        2>/dev/null || fail "openssl: cannot make the server key"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
        -extfile "$d/ext.cnf" -out "$d/server.pem" 2>/dev/null || fail "openssl: cannot sign the server certificate"
    REG_CA="$d/ca.pem" REG_CERT="$d/server.pem" REG_KEY="$d/server.key"
    # skopeo's --cert-dir wants the CA as *.crt
    mkdir -p "$d/certs.d" && cp "$d/ca.pem" "$d/certs.d/ca.crt"
    REG_CERT_DIR="$d/certs.d"
}

reg_start() {
    local name=$1; shift
    local tls=0 user="" pass=""
    while [ $# -gt 0 ]; do
        case $1 in
        tls) tls=1; shift ;;
        auth) user=$2; pass=$3; shift 3 ;;
        *) fail "reg_start: unknown argument $1" ;;
        esac
    done
    local d="$T/registry-$name"
    mkdir -p "$d/data"
    local attempt port
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        {
            printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n'
            printf 'storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n' "$d/data"
            printf 'http:\n  addr: 127.0.0.1:%s\n' "$port"
            if [ $tls = 1 ]; then
                printf '  tls:\n    certificate: %s\n    key: %s\n' "$REG_CERT" "$REG_KEY"
            fi
            if [ -n "$user" ]; then
                htpasswd -Bbn "$user" "$pass" >"$d/htpasswd" 2>/dev/null || fail "htpasswd -B failed"
                printf 'auth:\n  htpasswd:\n    realm: airlock-test\n    path: %s\n' "$d/htpasswd"
            fi
        } >"$d/config.yml"
        docker-registry serve "$d/config.yml" >"$d/log" 2>&1 &
        local pid=$!
        REG_PIDS+=("$pid")
        local scheme=http cacert=()
        [ $tls = 1 ] && scheme=https cacert=(--cacert "$REG_CA")
        local up=0
        for _ in $(seq 1 400); do
            code=$(curl -s -o /dev/null -w '%{http_code}' "${cacert[@]}" "$scheme://127.0.0.1:$port/v2/" || true)
            if [ "$code" = 200 ] || [ "$code" = 401 ]; then up=1; break; fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        if [ $up = 1 ]; then
            REG="127.0.0.1:$port"
            eval "REG_PID_$name=$pid"
            return 0
        fi
        kill -KILL "$pid" 2>/dev/null || true
        grep -q "address already in use" "$d/log" || { cat "$d/log" >&2; fail "docker-registry did not start"; }
    done
    fail "docker-registry: no free port after 5 tries"
}
