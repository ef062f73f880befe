//! Where a sign-in may send the browser back to. An open redirect on an auth
//! service hands login codes to whoever asks, so `redirect_to` must fall under
//! one of a few configured prefixes: same scheme, host and port, and a path at
//! or below the prefix's path (segment by segment, so `/app` does not admit
//! `/application`).

use url::Url;

/// The parameters latchkey adds to a return URL; any the app put there are replaced.
const OWN_PARAMS: [&str; 3] = ["code", "error", "error_description"];

#[derive(Clone, Debug)]
pub struct AllowList(Vec<Url>);

impl AllowList {
    /// `app_url` plus each comma-separated entry of `extra`.
    pub fn new(app_url: &str, extra: &str) -> Result<Self, String> {
        let entries = std::iter::once(app_url).chain(extra.split(',').map(str::trim).filter(|e| !e.is_empty()));
        entries.map(prefix).collect::<Result<_, _>>().map(Self)
    }

    /// The parsed URL, if `candidate` is an allowed place to return to.
    pub fn check(&self, candidate: &str) -> Option<Url> {
        let url = Url::parse(candidate).ok()?;
        let plain = matches!(url.scheme(), "http" | "https") && url.username().is_empty() && url.password().is_none();
        (plain && self.0.iter().any(|base| under(base, &url))).then_some(url)
    }
}

fn prefix(entry: &str) -> Result<Url, String> {
    let url = Url::parse(entry).map_err(|e| format!("{entry:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{entry:?} is not an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(format!("{entry:?}: a prefix has no query, fragment or user"));
    }
    Ok(url)
}

fn under(base: &Url, url: &Url) -> bool {
    let base_path = base.path().trim_end_matches('/');
    let same_origin = url.scheme() == base.scheme()
        && url.host() == base.host()
        && url.port_or_known_default() == base.port_or_known_default();
    same_origin
        && (url.path() == base_path || url.path().strip_prefix(base_path).is_some_and(|rest| rest.starts_with('/')))
}

/// `to` with `params` in its query, replacing any of latchkey's own.
pub fn with_params(to: &Url, params: &[(&str, &str)]) -> Url {
    let mut url = to.clone();
    let kept: Vec<(String, String)> = to
        .query_pairs()
        .filter(|(k, _)| !OWN_PARAMS.contains(&k.as_ref()))
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    url.set_query(None);
    {
        let mut query = url.query_pairs_mut();
        query.extend_pairs(kept);
        query.extend_pairs(params);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> AllowList {
        AllowList::new("http://localhost:3000", "https://app.example.com/auth/, https://other.example.com").unwrap()
    }

    #[test]
    fn admits_urls_under_a_prefix() {
        let list = list();
        for ok in [
            "http://localhost:3000",
            "http://localhost:3000/",
            "http://localhost:3000/dashboard?tab=1#top",
            "https://app.example.com/auth",
            "https://app.example.com/auth/done",
            "https://other.example.com/anything",
            "HTTPS://OTHER.example.com:443/x",
        ] {
            assert!(list.check(ok).is_some(), "{ok} should be allowed");
        }
    }

    #[test]
    fn refuses_everything_else() {
        let list = list();
        for bad in [
            "http://localhost:3001/",
            "https://localhost:3000/",
            "http://localhost:3000.evil.com/",
            "http://evil.com/?http://localhost:3000",
            "http://user@localhost:3000/",
            "https://app.example.com/authx",
            "https://app.example.com/",
            "https://app.example.com/auth/../admin",
            "javascript:alert(1)",
            "//localhost:3000/",
            "/relative",
            "",
        ] {
            assert!(list.check(bad).is_none(), "{bad} should be refused");
        }
    }

    #[test]
    fn refuses_bad_configuration() {
        assert!(AllowList::new("ftp://x", "").is_err());
        assert!(AllowList::new("http://localhost:3000", "not a url").is_err());
        assert!(AllowList::new("http://localhost:3000", "https://a.example.com/?q=1").is_err());
    }

    #[test]
    fn replaces_its_own_parameters_and_keeps_the_apps() {
        let to = Url::parse("http://localhost:3000/cb?tab=2&code=old#frag").unwrap();
        let url = with_params(&to, &[("code", "new")]);
        assert_eq!(url.as_str(), "http://localhost:3000/cb?tab=2&code=new#frag");
    }
}
