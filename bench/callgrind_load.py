#!/usr/bin/env python3
"""Sends one kind of request N times on one keep-alive connection (bench/callgrind.sh).

Usage: callgrind_load.py ADDR KIND N CLIENT_SECRET
KIND: verify (GET /api/auth/verify), introspect (POST /oauth/introspect), or flow
(login + code exchange + refresh). Setup requests (one grant for verify/introspect) are
sent in every run, so they cancel out between a run with N and the run with 0.
"""
import base64
import sys

import requests

EMAIL, PASSWORD, CLIENT, REDIRECT = "bench@example.com", "bench-password-1", "bench", "http://127.0.0.1/cb"


def main() -> None:
    addr, kind, n, secret = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    base = f"http://{addr}"
    s = requests.Session()
    basic = "Basic " + base64.b64encode(f"{CLIENT}:{secret}".encode()).decode()

    def ok(r: requests.Response) -> dict:
        if r.status_code != 200:
            sys.exit(f"{r.request.method} {r.url}: HTTP {r.status_code}: {r.text}")
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else {}

    def grant() -> dict:
        code = ok(s.post(f"{base}/api/oauth_login", json={
            "email": EMAIL, "password": PASSWORD, "response_type": "code",
            "client_id": CLIENT, "redirect_uri": REDIRECT, "state": "cg"}))["oauthCode"]
        return ok(s.post(f"{base}/api/oauth_access_token", headers={"Authorization": basic}, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}))

    if kind == "flow":
        for _ in range(n):
            tokens = grant()
            ok(s.post(f"{base}/oauth/token", headers={"Authorization": basic}, data={
                "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}))
        return
    access = grant()["access_token"]
    for _ in range(n):
        if kind == "verify":
            ok(s.get(f"{base}/api/auth/verify", headers={"Authorization": f"Bearer {access}"}))
        elif kind == "introspect":
            body = ok(s.post(f"{base}/oauth/introspect", headers={"Authorization": basic},
                             data={"token": access}))
            if not body.get("active"):
                sys.exit(f"introspection says inactive: {body}")
        else:
            sys.exit(f"unknown kind {kind}")


if __name__ == "__main__":
    main()
