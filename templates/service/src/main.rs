//! The {{name}} API: a starting point with no dependencies. It answers `/healthz` on
//! GOODGO_API_ADDR (default 127.0.0.1:8080); grow it from here.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    let addr = std::env::var("GOODGO_API_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(&addr)?;
    eprintln!("listening on {addr}");
    for stream in listener.incoming() {
        let mut stream = stream?;
        let mut request_line = String::new();
        BufReader::new(&stream).read_line(&mut request_line)?;
        let (status, body) = if request_line.starts_with("GET /healthz ") {
            ("200 OK", r#"{"status":"ok"}"#)
        } else {
            ("404 Not Found", r#"{"title":"No such resource","status":404}"#)
        };
        write!(stream, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
    }
    Ok(())
}
