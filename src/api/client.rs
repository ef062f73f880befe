//! Who is calling: the client's IP address (through trusted proxies only)
//! and user agent, as recorded on sessions and events and used by rate limits.

use std::net::IpAddr;

use ipnet::IpNet;
use poem::{Request, http::HeaderMap};

use crate::{AppState, client::ClientInfo};

pub fn client_info(req: &Request) -> ClientInfo {
    let peer = req.remote_addr().as_socket_addr().map(|a| a.ip());
    let trusted = req.data::<AppState>().map(|s| s.trusted_proxies.as_slice()).unwrap_or_default();
    ClientInfo {
        ip: peer.map(|peer| client_ip(peer, req.headers(), trusted).to_string()),
        user_agent: req
            .headers()
            .get(poem::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect()),
    }
}

/// The socket peer, unless it is a trusted proxy: then the address the
/// proxy names (`Forwarded`, else `X-Forwarded-For`), walking back through
/// every trusted hop. A header sent by anyone else changes nothing.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer;
    for hop in forwarded_chain(headers).into_iter().rev() {
        if !is_trusted(&client) {
            break;
        }
        match hop {
            Some(ip) => client = ip,
            None => break, // an obfuscated or unparsable hop: stop at the last proxy
        }
    }
    client
}

/// The addresses a request passed through, client first.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name| headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        // RFC 7239: `for=192.0.2.1;proto=https, for="[2001:db8::1]:4711"`
        return forwarded
            .split(',')
            .map(|element| {
                let node = element.split(';').find_map(|pair| {
                    let (name, value) = pair.trim().split_once('=')?;
                    name.eq_ignore_ascii_case("for").then_some(value)
                })?;
                parse_node(node.trim().trim_matches('"'))
            })
            .collect();
    }
    values("x-forwarded-for").split(',').map(str::trim).filter(|v| !v.is_empty()).map(parse_node).collect()
}

/// `192.0.2.1`, `192.0.2.1:80`, `[2001:db8::1]`, `[2001:db8::1]:80` or `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    node.rsplit_once(':')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(client_ip(ip("9.9.9.9"), &h, &[]), ip("9.9.9.9"));
        assert_eq!(client_ip(ip("9.9.9.9"), &h, &["10.0.0.0/8".parse().unwrap()]), ip("9.9.9.9"));
    }

    #[test]
    fn trusted_hops_are_walked_back_to_the_first_untrusted_address() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // The client forged the first entry; the proxies appended the rest.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.2")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("203.0.113.7"));
        let h = headers(&[("forwarded", r#"for=6.6.6.6, for="[2001:db8::7]:4711";proto=https"#)]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("2001:db8::7"));
        let h = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.1"));
    }
}
