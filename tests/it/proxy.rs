//! A loopback HTTP proxy in front of moto that can inject faults: it sees each request (the AWS
//! Query/JSON body names the operation), may answer for moto, or act on moto first.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// What the proxy does with one request.
pub enum Action {
    Forward,
    /// Answer with this status, content type and body instead of moto.
    Respond(u16, &'static str, String),
    /// Forward this body instead of the request's (moto does not check signatures).
    ForwardBody(String),
}

pub type Rule = Box<dyn Fn(&str, &str, &str) -> Action + Send + Sync>;

pub struct Proxy {
    pub port: u16,
    stop: Arc<AtomicBool>,
    server: Arc<tiny_http::Server>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Sends one raw HTTP/1.1 request to moto and returns (status, headers, body).
pub fn raw(
    port: u16,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to moto");
    let mut req = format!(
        "{method} {url} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        let lk = k.to_ascii_lowercase();
        if lk == "host" || lk == "connection" || lk == "content-length" || lk == "transfer-encoding"
        {
            continue;
        }
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP response head");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut body = buf[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(502);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
    out
}

impl Proxy {
    /// Starts the proxy in front of moto on `upstream`; `rule(method, url, body)` decides.
    pub fn start(upstream: u16, rule: Rule) -> Proxy {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("proxy listen"));
        let port = server.server_addr().to_ip().expect("ip listener").port();
        let stop = Arc::new(AtomicBool::new(false));
        let (srv, stp) = (server.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            while !stp.load(Ordering::SeqCst) {
                let Ok(mut req) = srv.recv() else { break };
                let mut body = Vec::new();
                let _ = req.as_reader().read_to_end(&mut body);
                let text = String::from_utf8_lossy(&body).to_string();
                let method = req.method().to_string();
                let url = req.url().to_string();
                let resp = match rule(&method, &url, &text) {
                    Action::Respond(status, ctype, body) => {
                        tiny_http::Response::from_data(body.into_bytes())
                            .with_status_code(status)
                            .with_header(
                                tiny_http::Header::from_bytes("Content-Type", ctype).unwrap(),
                            )
                    }
                    action @ (Action::Forward | Action::ForwardBody(_)) => {
                        if let Action::ForwardBody(b) = action {
                            body = b.into_bytes();
                        }
                        let headers: Vec<(String, String)> = req
                            .headers()
                            .iter()
                            .map(|h| (h.field.to_string(), h.value.to_string()))
                            .collect();
                        let (status, rh, rb) = raw(upstream, &method, &url, &headers, &body);
                        let mut r = tiny_http::Response::from_data(rb).with_status_code(status);
                        for (k, v) in rh {
                            let lk = k.to_ascii_lowercase();
                            if (lk == "content-type" || lk.starts_with("x-amz"))
                                && let Ok(h) =
                                    tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes())
                            {
                                r = r.with_header(h);
                            }
                        }
                        r
                    }
                };
                let _ = req.respond(resp);
            }
        });
        Proxy {
            port,
            stop,
            server,
            handle: Some(handle),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// An EC2 Query API call as moto accepts it (moto does not check signatures).
pub fn ec2_call(moto_port: u16, params: &str) -> (u16, String) {
    let headers = vec![
        ("Content-Type".to_string(), "application/x-www-form-urlencoded; charset=utf-8".to_string()),
        (
            "Authorization".to_string(),
            "AWS4-HMAC-SHA256 Credential=testing/20261126/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0".to_string(),
        ),
    ];
    let body = format!("{params}&Version=2016-11-15");
    let (s, _, b) = raw(moto_port, "POST", "/", &headers, body.as_bytes());
    (s, String::from_utf8_lossy(&b).to_string())
}
