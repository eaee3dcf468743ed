#!/usr/bin/env python3
"""Device polling under load: does a crowd of devices waiting for their users slow token
validation down? Starts `oauthd serve` on a fresh temporary database, measures W2b
(`GET /api/auth/verify` with a Bearer token, closed loop, keep-alive) alone, then again
while N devices (default 1000) each poll the token endpoint at their interval (pending:
the poll only reads), and prints both rates and their ratio (target: >= 90 %).

Usage: scripts/device_poll_load.py [--oauthd target/release/oauthd] [--devices 1000]
       [--seconds 10] [--workers 4]
Load generators are separate processes (no shared GIL); everything stays on loopback."""

import argparse
import http.client
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def cli(oauthd, db, *args, stdin=None):
    out = subprocess.run([oauthd, "--db", db, "--pbkdf2-iterations", "1000", *args, "--json"],
                         input=stdin, capture_output=True, text=True, check=True)
    return json.loads(out.stdout) if out.stdout.strip() else None


def post(conn, path, form, auth=None):
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if auth:
        headers["authorization"] = auth
    conn.request("POST", path, urllib.parse.urlencode(form), headers)
    response = conn.getresponse()
    return response.status, response.read()


def verify_worker(port, token, seconds, results):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"authorization": f"Bearer {token}"}
    done, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        conn.request("GET", "/api/auth/verify", headers=headers)
        response = conn.getresponse()
        response.read()
        done += response.status == 200
    results.put(done)


def w2b(port, token, seconds, workers):
    results = mp.Queue()
    procs = [mp.Process(target=verify_worker, args=(port, token, seconds, results))
             for _ in range(workers)]
    for p in procs:
        p.start()
    total = sum(results.get() for _ in procs)
    for p in procs:
        p.join()
    return total / seconds


def poller(port, codes, interval, seconds, results):
    """Polls each code every `interval` seconds, spread evenly over the interval."""
    conn = http.client.HTTPConnection("127.0.0.1", port)
    counts = {}
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        for i, code in enumerate(codes):
            due = start + n * interval + interval * i / len(codes)
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            status, body = post(conn, "/oauth/token",
                                {"grant_type": DEVICE_GRANT, "device_code": code, "client_id": "tv"})
            error = json.loads(body).get("error", str(status))
            counts[error] = counts.get(error, 0) + 1
        n += 1
    results.put(counts)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--oauthd", default="target/release/oauthd")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--interval", type=int, default=5)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    db = os.path.join(tmp, "oauthd.db")
    cli(args.oauthd, db, "user", "add", "load@example.com", "--password-stdin", stdin="pw\n")
    secret = cli(args.oauthd, db, "client", "add", "--name", "Svc", "--id", "svc", "--grant",
                 "client_credentials")["client_secret"]
    cli(args.oauthd, db, "client", "add", "--name", "TV", "--id", "tv", "--public", "--grant",
        "device_code")
    server = subprocess.Popen([args.oauthd, "--db", db, "serve", "--listen", "127.0.0.1:0",
                               "--device-interval", str(args.interval)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(server.stdout.readline().strip().rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port)
        import base64
        auth = "Basic " + base64.b64encode(f"svc:{secret}".encode()).decode()
        _, body = post(conn, "/oauth/token", {"grant_type": "client_credentials"}, auth)
        token = json.loads(body)["access_token"]
        codes = []
        for _ in range(args.devices):
            _, body = post(conn, "/oauth/device_authorization", {"client_id": "tv"})
            codes.append(json.loads(body)["device_code"])
        solo = w2b(port, token, args.seconds, args.workers)
        results = mp.Queue()
        pollers = [mp.Process(target=poller, args=(port, codes[i::2], args.interval,
                                                   args.seconds + 2 * args.interval, results))
                   for i in range(2)]
        for p in pollers:
            p.start()
        time.sleep(args.interval)  # every device has polled once: the steady state
        during = w2b(port, token, args.seconds, args.workers)
        counts = {}
        for _ in pollers:
            for k, v in results.get().items():
                counts[k] = counts.get(k, 0) + v
        for p in pollers:
            p.join()
        print(json.dumps({"w2b_solo_per_s": round(solo), "w2b_with_devices_per_s": round(during),
                          "ratio": round(during / solo, 3), "devices": args.devices,
                          "interval_s": args.interval, "poll_answers": counts}))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
