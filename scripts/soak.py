#!/usr/bin/env python3
"""Housekeeping soak: runs `oauthd serve` under a mixed load for a while and prints the
row counts of the grant tables, the WAL size and the server's RSS once a minute, to show
that they level off. Not part of `cargo test`.

    scripts/soak.py [--binary target/debug/oauthd] [--minutes 10] [--threads 4]

The load, per thread, in a loop: sign in headlessly (a new grant and code); leave one
code in five unused (it expires); exchange the others, for a confidential client (its
refresh token is kept) or a public one (rotated on every refresh); refresh a few times;
revoke one grant in ten. Short lifetimes (code 30 s, access 60 s, refresh 180 s) let the
rows expire within the run.
"""
import argparse, base64, http.client, json, os, random, sqlite3, subprocess, sys, tempfile, threading, time
from urllib.parse import urlencode

CODE_TTL, ACCESS_TTL, REFRESH_TTL = 30, 60, 180

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/debug/oauthd")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="oauthd-soak-")
    db = os.path.join(tmp, "oauthd.db")
    env = dict(os.environ, OAUTHD_DB=db, OAUTHD_PBKDF2_ITERATIONS="1000")
    def cli(*a, stdin=None):
        return subprocess.run([args.binary, *a], env=env, input=stdin, capture_output=True, text=True, check=True).stdout
    cli("user", "add", "soak@example.com", "--password-stdin", stdin="pw\n")
    secret = json.loads(cli("client", "add", "--name", "C", "--id", "conf", "--redirect-uri", "http://cb", "--json"))["client_secret"]
    cli("client", "add", "--name", "P", "--id", "pub", "--public", "--redirect-uri", "http://cb")
    server = subprocess.Popen([args.binary, "serve", "--listen", "127.0.0.1:0", "--code-ttl", str(CODE_TTL),
                               "--access-ttl", str(ACCESS_TTL), "--refresh-ttl", str(REFRESH_TTL)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    addr = server.stdout.readline().strip().removeprefix("listening on http://")
    host, port = addr.rsplit(":", 1)
    basic = "Basic " + base64.b64encode(f"conf:{secret}".encode()).decode()
    stop = time.time() + args.minutes * 60
    requests = [0]
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        def post(path, body, headers):
            conn.request("POST", path, body, headers)
            r = conn.getresponse()
            data = r.read()
            with lock:
                requests[0] += 1
            return r.status, data
        while time.time() < stop:
            try:
                client = random.choice(["conf", "pub"])
                st, data = post("/api/oauth_login", json.dumps({"email": "soak@example.com", "password": "pw", "scope": "s",
                    "response_type": "code", "state": "x", "redirect_uri": "http://cb", "client_id": client}),
                    {"content-type": "application/json"})
                code = json.loads(data)["oauthCode"]
                if random.random() < 0.2:
                    continue  # left unused: expires
                form = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://cb"}
                headers = {"content-type": "application/x-www-form-urlencoded"}
                if client == "conf":
                    headers["authorization"] = basic
                else:
                    form["client_id"] = "pub"
                st, data = post("/api/oauth_access_token", urlencode(form), headers)
                refresh = json.loads(data)["refresh_token"]
                for _ in range(random.randint(0, 5)):
                    form = {"grant_type": "refresh_token", "refresh_token": refresh}
                    if client == "pub":
                        form["client_id"] = "pub"
                    st, data = post("/api/oauth_access_token", urlencode(form), headers)
                    if st == 200:
                        refresh = json.loads(data)["refresh_token"]
                if random.random() < 0.1:
                    form = {"token": refresh}
                    if client == "pub":
                        form["client_id"] = "pub"
                    post("/oauth/revoke", urlencode(form), headers)
            except Exception as e:  # keep going; count nothing
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=30)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.threads)]
    for t in threads:
        t.start()
    started = time.time()
    print("minute  grants  codes  access  refresh  audit  wal_kib  rss_kib  threads  req/s", flush=True)
    last_requests = 0
    minute = 0
    while True:
        reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        counts = [reader.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("grants", "authorization_codes", "access_tokens", "refresh_tokens", "audit_log")]
        reader.close()
        wal = os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else 0
        status = open(f"/proc/{server.pid}/status").read().splitlines()
        rss = next((int(l.split()[1]) for l in status if l.startswith("VmRSS")), 0)
        nthreads = next((int(l.split()[1]) for l in status if l.startswith("Threads")), 0)
        with lock:
            done = requests[0]
        rate = (done - last_requests) / 60 if minute else 0
        last_requests = done
        print(f"{minute:6d}  {counts[0]:6d}  {counts[1]:5d}  {counts[2]:6d}  {counts[3]:7d}  {counts[4]:5d}  {wal // 1024:7d}  {rss:7d}  {nthreads:7d}  {rate:5.0f}", flush=True)
        if time.time() >= stop:
            break
        minute += 1
        time.sleep(max(0, started + minute * 60 - time.time()))
    for t in threads:
        t.join()
    server.terminate()
    server.wait()

if __name__ == "__main__":
    main()
