#!/usr/bin/env python3
"""Driver for callgrind.sh: creates a client on a running sesamed, warms one path up, waits for a
line on stdin (the caller zeroes the profiler), then sends N requests over K keep-alive
connections. Slow on purpose: under valgrind the server does a few hundred requests per second.

    drive.py PORT DATA_DIR LOAD N [K]     LOAD: token-ALG, introspect-ALG, discovery, jwks
"""
import base64
import http.client
import json
import sys
import threading
import time

port, data_dir, load, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
k = int(sys.argv[5]) if len(sys.argv) > 5 else 4
admin = open(data_dir + "/admin-token").read().strip()


def req(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status // 100 != 2:
        raise SystemExit(f"{method} {path}: {resp.status} {data[:200]!r}")
    return data


conn = http.client.HTTPConnection("127.0.0.1", port)
if load.startswith(("token-", "introspect-")):
    alg = load.split("-", 1)[1]
    spec = {"name": "profile-" + alg.lower(), "signing_alg": alg, "allowed_scopes": ["read"], "allowed_audiences": ["api"]}
    created = json.loads(req(conn, "POST", "/admin/v1/tenants/default/clients", json.dumps(spec),
                             {"Authorization": "Bearer " + admin, "Content-Type": "application/json"}))
    basic = base64.b64encode(f"{created['client']['client_id']}:{created['client_secret']}".encode()).decode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Basic " + basic}
    method, path, body = "POST", "/t/default/token", "grant_type=client_credentials"
    if load.startswith("introspect-"):
        token = json.loads(req(conn, method, path, body, headers))["access_token"]
        path, body = "/t/default/introspect", "token=" + token
elif load in ("discovery", "jwks"):
    method, body, headers = "GET", None, {}
    path = "/t/default/.well-known/openid-configuration" if load == "discovery" else "/t/default/jwks"
else:
    raise SystemExit(f"unknown load {load}")

for _ in range(20):
    req(conn, method, path, body, headers)
print("ready", flush=True)
sys.stdin.readline()


def worker(m):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(m):
        req(c, method, path, body, headers)


t0 = time.time()
threads = [threading.Thread(target=worker, args=(n // k,)) for _ in range(k)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"done {n // k * k} in {time.time() - t0:.1f}s", flush=True)
