#!/usr/bin/env python3
"""Cold start of the runner as a Lambda bootstrap: process spawn -> first GET .../invocation/next
on a fake Runtime API (loopback). Median of N runs. Usage: coldstart.py BINARY [N]"""
import http.server, os, statistics, subprocess, sys, threading, time

binary = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 30
first = {}
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        first.setdefault("t", time.perf_counter())
        time.sleep(2)
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
port = srv.server_address[1]
threading.Thread(target=srv.serve_forever, daemon=True).start()
env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}", AWS_REGION="us-east-1",
           AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
           AWS_LAMBDA_FUNCTION_NAME="ebssnap", AWS_LAMBDA_FUNCTION_VERSION="1",
           AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256", AWS_EC2_METADATA_DISABLED="true",
           AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
times = []
for _ in range(n):
    first.clear()
    t0 = time.perf_counter()
    p = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while "t" not in first and time.perf_counter() - t0 < 5:
        time.sleep(0.0005)
    p.kill(); p.wait()
    if "t" in first:
        times.append((first["t"] - t0) * 1000)
print(f"{binary}: median {statistics.median(times):.1f} ms, min {min(times):.1f}, max {max(times):.1f} over {len(times)}")
