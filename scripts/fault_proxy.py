"""A loopback proxy in front of the emulator that makes EC2 refuse snapshots of one volume, the
way a volume in a bad state would in AWS, so the demo can show a real failure ticket.

Usage: fault_proxy.py LISTEN_PORT MOTO_PORT VOLUME_ID
"""
import http.client
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

listen, upstream, victim = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
REFUSAL = (b"<Response><Errors><Error><Code>IncorrectState</Code><Message>The volume "
           + victim.encode() + b" is in an incorrect state (demo fault).</Message></Error></Errors>"
           b"<RequestID>demo</RequestID></Response>")


class Proxy(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def _forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if b"Action=CreateSnapshot&" in body and b"VolumeId=" + victim.encode() in body:
            self.send_response(400)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(REFUSAL)))
            self.end_headers()
            self.wfile.write(REFUSAL)
            return
        conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward


ThreadingHTTPServer(("127.0.0.1", listen), Proxy).serve_forever()
