//! The reference: a bare poem handler serving fixed bytes, with the same
//! runtime as latchkey. The JWKS scenario is reported as a share of it.
//!
//! Usage: latchkey-bench-reference <file> — serves the file's bytes as JSON on
//! 127.0.0.1:0 and prints `listening on http://ADDR`.

use bytes::Bytes;
use poem::{
    EndpointExt, Response, Route, Server, get, handler,
    listener::{Acceptor, Listener, TcpListener},
    web::Data,
};

#[handler]
fn serve(body: Data<&Bytes>) -> Response {
    Response::builder().content_type("application/json").body(body.0.clone())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).expect("usage: latchkey-bench-reference <file>");
    let body = Bytes::from(std::fs::read(path)?);
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
    let addr = acceptor.local_addr()[0].as_socket_addr().copied().expect("a TCP address");
    println!("listening on http://{addr}");
    Server::new_with_acceptor(acceptor).run(Route::new().at("/.well-known/jwks.json", get(serve)).data(body)).await
}
