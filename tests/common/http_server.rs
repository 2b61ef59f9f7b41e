//! A tiny HTTP/1.1 server on 127.0.0.1 for download tests, with fault injection: dropping the
//! connection midway, ignoring `Range`, error statuses. One request per connection
//! (`Connection: close`); it stops when dropped. Never reaches beyond loopback.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Behavior {
    /// Honours `Range: bytes=N-` with 206 (416 past the end).
    Normal,
    /// The first `times` responses announce the full length but close after `bytes` body bytes.
    DropAfter { bytes: usize, times: usize },
    /// Always answers 200 with the whole body.
    IgnoreRange,
    /// The first `times` requests get this status (then Normal).
    Status { code: u16, times: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub path: String,
    pub range: Option<String>,
}

struct Route {
    body: Vec<u8>,
    behavior: Behavior,
    served: usize,
}

pub struct TestServer {
    port: u16,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Logged>>>,
    handle: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Serves `routes` (path -> body, behavior); other paths get 404.
    pub fn start(routes: Vec<(&str, Vec<u8>, Behavior)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut table: HashMap<String, Route> = routes
            .into_iter()
            .map(|(path, body, behavior)| {
                (
                    path.to_string(),
                    Route {
                        body,
                        behavior,
                        served: 0,
                    },
                )
            })
            .collect();
        let (stop2, log2) = (stop.clone(), log.clone());
        let handle = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = serve(stream, &mut table, &log2);
            }
        });
        Self {
            port,
            stop,
            log,
            handle: Some(handle),
        }
    }

    /// `http://127.0.0.1:PORT/`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn requests(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wakes up accept()
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn serve(
    mut stream: TcpStream,
    table: &mut HashMap<String, Route>,
    log: &Mutex<Vec<Logged>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Ok(()); // the wake-up connection
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let range = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("range: ")
                .or_else(|| l.strip_prefix("Range: "))
        })
        .map(|v| v.trim().to_string());
    log.lock().unwrap().push(Logged {
        path: path.clone(),
        range: range.clone(),
    });
    let Some(route) = table.get_mut(&path) else {
        return respond(&mut stream, 404, &[], b"not found", None);
    };
    route.served += 1;
    let total = route.body.len();
    let start: usize = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut drop_after = None;
    match route.behavior.clone() {
        Behavior::Status { code, times } if route.served <= times => {
            return respond(&mut stream, code, &[], b"error", None);
        }
        Behavior::IgnoreRange => {
            return respond(&mut stream, 200, &[], &route.body, None);
        }
        Behavior::DropAfter { bytes, times } if route.served <= times => drop_after = Some(bytes),
        _ => {}
    }
    if range.is_none() {
        return respond(&mut stream, 200, &[], &route.body, drop_after);
    }
    if start >= total {
        let header = format!("Content-Range: bytes */{total}");
        return respond(&mut stream, 416, &[header], b"", None);
    }
    let header = format!("Content-Range: bytes {start}-{}/{total}", total - 1);
    respond(
        &mut stream,
        206,
        &[header],
        &route.body[start..],
        drop_after,
    )
}

fn respond(
    stream: &mut TcpStream,
    code: u16,
    headers: &[String],
    body: &[u8],
    drop_after: Option<usize>,
) -> std::io::Result<()> {
    let reason = match code {
        200 => "OK",
        206 => "Partial Content",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Length: {}\r\nConnection: close\r\nAccept-Ranges: bytes\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let sent = drop_after.unwrap_or(body.len()).min(body.len());
    stream.write_all(&body[..sent])?;
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}
