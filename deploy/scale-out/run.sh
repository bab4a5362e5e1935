#!/usr/bin/env bash
# Scale-out, runnable: one Redis, two Facade instances and an nginx load balancer (round robin),
# all on loopback. Ten requests through the load balancer: the instances share one quota of five,
# so the first five pass and the rest are refused with 429 — not ten passing, five per instance.
#
#   deploy/scale-out/run.sh            # builds facade if needed, prints one line per request
#   FACADE=target/release/facade deploy/scale-out/run.sh
#
# Needs redis-server and nginx (Debian: apt-get install -y redis-server nginx). Everything is
# stopped by PID when the script ends.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
facade=${FACADE:-$root/target/release/facade}
if [[ ! -x $facade ]]; then
    (cd "$root" && cargo build --release -q)
fi
for tool in redis-server nginx curl; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed (apt-get install -y $tool)" >&2; exit 2; }
done
run=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$run"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { # URL: until it answers, at most 10 s
    for _ in $(seq 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done
    echo "run.sh: $1 did not answer" >&2; return 1
}

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$run/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

ports=()
for i in 1 2; do
    port=$(free_port)
    REDIS_URL="redis://127.0.0.1:$redis_port/0" "$facade" serve --demo --config "$here/facade.yaml" \
        --listen "127.0.0.1:$port" >"$run/facade-$i.log" 2>&1 &
    pids+=($!)
    ports+=("$port")
done
for port in "${ports[@]}"; do wait_http "http://127.0.0.1:$port/healthz"; done

lb_port=$(free_port)
cat >"$run/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $run/nginx.pid;
error_log $run/nginx-error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $run;
    proxy_temp_path $run;
    fastcgi_temp_path $run;
    uwsgi_temp_path $run;
    scgi_temp_path $run;
    upstream facade { server 127.0.0.1:${ports[0]}; server 127.0.0.1:${ports[1]}; }
    server {
        listen 127.0.0.1:$lb_port;
        location / {
            proxy_pass http://facade;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            add_header X-Upstream \$upstream_addr always;
        }
    }
}
NGINX
nginx -c "$run/nginx.conf" -p "$run" >"$run/nginx.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$lb_port/healthz"

echo "redis :$redis_port, facade :${ports[0]} and :${ports[1]}, nginx :$lb_port (round robin)"
for i in $(seq 10); do
    curl -s -o /dev/null -D "$run/h" "http://127.0.0.1:$lb_port/api/products/p-01001" || true
    status=$(head -1 "$run/h" | awk '{print $2}')
    remaining=$(grep -i '^x-ratelimit-remaining:' "$run/h" | tr -d '\r' | awk '{print $2}' || true)
    upstream=$(grep -i '^x-upstream:' "$run/h" | tr -d '\r' | awk '{print $2}' || true)
    echo "request $i: $status remaining=${remaining:--} via ${upstream:--}"
done
