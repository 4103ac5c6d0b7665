"""Seed a fresh `sluice serve` for schemathesis: a workspace with a source, a destination, a
connection that has run, a webhook and a member, so the fuzzed operations reach real data and
not only 404s. Standard library only. Usage: SLUICE_TOKEN=<owner token> seed.py BASE_URL MEMBER_KEY_ID

Prints the names it made as JSON (the harness checks them against schemathesis.toml)."""

import json
import os
import sys
import time
import urllib.error
import urllib.request

BASE, MEMBER = sys.argv[1], sys.argv[2]
TOKEN = os.environ["SLUICE_TOKEN"]


def call(method, path, body=None, ok=(200, 201, 202, 204)):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + TOKEN)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    answer = json.loads(text) if text else None
    if status not in ok:
        sys.exit(f"seed: {method} {path} answered {status}: {text}")
    return status, answer


def install(name):
    status, answer = call("POST", "/v1/connectors", {"name": name}, ok=(201, 422))
    if status == 422:
        call("POST", "/v1/connectors", {"name": name, "approved": answer["to_approve"]})


install("source-faker")
install("destination-file")
ws = "/v1/workspaces/seeded"
call("POST", "/v1/workspaces", {"name": "seeded"})
call("POST", "/v1/workspaces", {"name": "scratch"})
call("POST", ws + "/sources", {
    "name": "faker",
    "connector": "source-faker",
    "config": {"count": 50, "seed": 7},
})
call("POST", ws + "/destinations", {
    "name": "files",
    "connector": "destination-file",
    "config": {"path": "/output", "format": "jsonl"},
    "grant": {"dirs": [{"host": "out", "guest": "/output"}]},
})
call("POST", ws + "/connections", {"name": "users", "source": "faker", "destination": "files"})
_, started = call("POST", ws + "/connections/users/runs", {})
run = started["run"]["id"]
if run != 1:
    sys.exit(f"seed: the seeded run is {run}, not 1: seed a fresh data dir")
for _ in range(600):
    _, shown = call("GET", f"{ws}/runs/{run}")
    if shown["status"] != "running":
        break
    time.sleep(0.1)
if shown["status"] != "succeeded":
    sys.exit(f"seed: the seeded run ended {shown['status']}: {shown.get('error')}")
_, hook = call("POST", ws + "/webhooks", {"url": "http://127.0.0.1:9/hook"})
call("PUT", f"{ws}/members/{MEMBER}", {"role": "viewer"})
print(json.dumps({"run": run, "webhook": hook["webhook"]["id"], "member": MEMBER}))
