//! A tiny HTTP receiver for notification tests, on std only: records every request and
//! answers according to a mode that the test switches (accept, 500, hang, or not listening
//! at all so connections are refused).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 200 OK.
    Accept,
    /// 500.
    Fail,
    /// Reads the request, never answers (until the client gives up).
    Hang,
}

/// One request received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub at: Instant,
    /// Wall-clock arrival time.
    pub wall: std::time::SystemTime,
    /// Whether it was answered 200.
    pub accepted: bool,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

pub struct Hook {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    received: Arc<Mutex<Vec<Received>>>,
    listening: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Hook {
    /// A receiver on a free loopback port, listening.
    pub fn start() -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hook = Hook {
            addr,
            mode: Arc::new(Mutex::new(Mode::Accept)),
            received: Arc::default(),
            listening: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        hook.serve(listener);
        hook
    }

    /// The address for a receiver that is not listening yet (connections are refused until
    /// [`Hook::listen`]).
    pub fn reserve() -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        Hook {
            addr,
            mode: Arc::new(Mutex::new(Mode::Accept)),
            received: Arc::default(),
            listening: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Starts listening on the reserved address.
    pub fn listen(&self) {
        let listener = TcpListener::bind(self.addr).expect("re-bind the reserved port");
        self.serve(listener);
    }

    fn serve(&self, listener: TcpListener) {
        self.listening.store(true, Ordering::SeqCst);
        listener.set_nonblocking(true).expect("nonblocking");
        let (mode, received, stop) = (self.mode.clone(), self.received.clone(), self.stop.clone());
        std::thread::spawn(move || loop {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            match listener.accept() {
                Ok((stream, _)) => {
                    let (mode, received) = (mode.clone(), received.clone());
                    std::thread::spawn(move || handle(stream, &mode, &received));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        });
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn set_mode(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    /// Every request so far.
    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Requests answered 200.
    pub fn accepted(&self) -> Vec<Received> {
        self.all().into_iter().filter(|r| r.accepted).collect()
    }

    /// Waits until `f` holds on the accepted requests.
    pub fn wait_for(&self, timeout: Duration, f: impl Fn(&[Received]) -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if f(&self.accepted()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn handle(stream: TcpStream, mode: &Mutex<Mode>, received: &Mutex<Vec<Received>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let m = *mode.lock().unwrap();
    received.lock().unwrap().push(Received {
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
        wall: std::time::SystemTime::now(),
        accepted: m == Mode::Accept,
    });
    let mut stream = stream;
    match m {
        Mode::Accept => {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
        Mode::Fail => {
            let _ = stream.write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\nboom");
        }
        Mode::Hang => std::thread::sleep(Duration::from_secs(8)),
    }
}
