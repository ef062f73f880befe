//! The reference: a bare poem handler serving fixed bytes, on the same kind
//! of runtime as latchkey. The JWKS scenario is reported as a share of it.
//! Run as `latchkey-bench __reference <file>`: serves the file as JSON on
//! 127.0.0.1:0 and prints `listening on http://ADDR`.

use std::process::ExitCode;

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

async fn run(path: &str) -> std::io::Result<()> {
    let body = Bytes::from(std::fs::read(path)?);
    let acceptor = TcpListener::bind("127.0.0.1:0").into_acceptor().await?;
    let addr = acceptor.local_addr()[0].as_socket_addr().copied().expect("a TCP address");
    println!("listening on http://{addr}");
    Server::new_with_acceptor(acceptor).run(Route::new().at("/.well-known/jwks.json", get(serve)).data(body)).await
}

pub fn main(path: &str) -> ExitCode {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(run(path)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reference server: {e}");
            ExitCode::FAILURE
        }
    }
}
