#!/usr/bin/env python3
"""suite.py - programs we did not write, under wouldblock, as a TAP suite.

- curl downloads a file of random bytes from `python3 -m http.server` on
  127.0.0.1, under flaky-net and under short-io: the copy must be
  byte-exact (SHA-256);
- an asyncio TLS echo (tls_echo.py, a self-signed certificate made with
  `openssl req -x509` for the run) under flaky-net and under everything.

Each passing case must also show injections in wouldblock's report: a
download that met no would-block proves nothing. Only the program under
test is preloaded; the HTTP server and openssl run without the library.
curl and openssl come with `make test` (tests/deps.sh); without them the
cases are skipped with the reason.

    python3 tests/thirdparty/suite.py [--build DIR]
"""

import argparse
import hashlib
import os
import re
import selectors
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "examples"))
import wbexamples as wb  # noqa: E402

DOWNLOAD_SIZE = 2 * 1024 * 1024
TLS_SIZE = 1024 * 1024
SERVER_START_TIMEOUT = 20  # hang guard while python3 -m http.server starts


def clean_env():
    return {k: v for k, v in os.environ.items()
            if not k.startswith("WOULDBLOCK_") and k != "LD_PRELOAD"}


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class HttpServer:
    """python3 -m http.server on 127.0.0.1, an ephemeral port, serving root."""

    def __init__(self, root):
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1",
             "--directory", root, "0"],
            env=clean_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        self.port = None
        # "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        waiting = selectors.DefaultSelector()
        waiting.register(self.proc.stdout, selectors.EVENT_READ)
        line = self.proc.stdout.readline() if waiting.select(SERVER_START_TIMEOUT) else ""
        m = re.search(r"port (\d+)", line)
        if m:
            self.port = int(m[1])

    def close(self):
        self.proc.kill()
        self.proc.wait()


def curl_case(build, server, blob, expected, scenario, tmp):
    out = os.path.join(tmp, f"download-{scenario}")
    url = f"http://127.0.0.1:{server.port}/{os.path.basename(blob)}"
    # -q: no ~/.curlrc; --noproxy: a proxy in the environment would take
    # the download off loopback
    run = wb.run_under(["curl", "-q", "--silent", "--show-error", "--fail", "--noproxy", "*",
                        "--output", out, url], scenario, build=build)
    if run.timed_out or run.returncode != 0:
        return f"curl failed (exit status {run.returncode})", run
    got = sha256_file(out) if os.path.exists(out) else "no file"
    if got != expected:
        size = os.path.getsize(out) if os.path.exists(out) else 0
        return f"download differs: {size} bytes, sha256 {got[:16]}, expected {expected[:16]}", run
    if run.injected == 0:
        return "byte-exact, but nothing was injected: that proves nothing", run
    return None, run


def make_certificate(tmp):
    """A self-signed certificate for 127.0.0.1; (cert, key) or a reason."""
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    proc = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        env=clean_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=wb.RUN_TIMEOUT)
    if proc.returncode != 0:
        return None, f"openssl req failed: {proc.stderr.strip()[-200:]}"
    return (cert, key), None


def tls_case(build, cert_key, scenario):
    cert, key = cert_key
    run = wb.run_under([sys.executable, os.path.join(HERE, "tls_echo.py"), cert, key,
                        str(TLS_SIZE)], scenario, build=build)
    kind, text = wb.outcome(run)
    if kind != "ok":
        return text, run
    if run.injected == 0:
        return "byte-exact, but nothing was injected: that proves nothing", run
    return None, run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default=os.path.join(wb.ROOT, "build"))
    args = parser.parse_args()

    curl_scenarios = ["flaky-net", "short-io"]
    tls_scenarios = ["flaky-net", "everything"]
    print(f"1..{len(curl_scenarios) + len(tls_scenarios)}", flush=True)
    number, failed = 0, 0

    def report(name, why, run, skip=None):
        nonlocal number, failed
        number += 1
        if skip:
            print(f"ok {number} - {name} # SKIP {skip}", flush=True)
        elif why is None:
            print(f"ok {number} - {name}: byte-exact ({run.injected} injected, "
                  f"spin {run.spin})", flush=True)
        else:
            failed += 1
            print(f"not ok {number} - {name}\n# {why}", flush=True)
            for line in run.transcript() if run else []:
                print(f"#   {line}")

    with tempfile.TemporaryDirectory(prefix="wb-thirdparty-") as tmp:
        www = os.path.join(tmp, "www")
        os.mkdir(www)
        blob = os.path.join(www, "blob")
        with open(blob, "wb") as f:
            f.write(os.urandom(DOWNLOAD_SIZE))
        expected = sha256_file(blob)

        server, skip = None, None
        if not shutil.which("curl"):
            skip = "curl is not installed (make test installs it: apt-get install curl)"
        elif "asan" in os.environ.get("WB_PRELOAD_PREFIX", ""):
            # seen here: `LD_PRELOAD=libasan.so curl URL` hangs with no
            # wouldblock at all, so this run could only test libasan
            skip = "curl hangs under a preloaded libasan even without wouldblock"
        else:
            server = HttpServer(www)
        for scenario in curl_scenarios:
            name = f"curl downloads {DOWNLOAD_SIZE >> 20} MiB byte-exact under {scenario}"
            if skip:
                report(name, None, None, skip)
            elif server.port is None:
                report(name, "python3 -m http.server did not start", None)
            else:
                why, run = curl_case(args.build, server, blob, expected, scenario, tmp)
                report(name, why, run)
        if server:
            server.close()

        cert_key, skip = None, None
        if not shutil.which("openssl"):
            skip = "openssl is not installed (make test installs it: apt-get install openssl)"
        else:
            cert_key, why = make_certificate(tmp)
        for scenario in tls_scenarios:
            name = f"asyncio TLS echo of {TLS_SIZE >> 20} MiB byte-exact under {scenario}"
            if skip:
                report(name, None, None, skip)
            elif cert_key is None:
                report(name, why, None)
            else:
                why_tls, run = tls_case(args.build, cert_key, scenario)
                report(name, why_tls, run)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
