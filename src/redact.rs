//! What of a URL may be shown: a password in it never is. Every message, log line
//! and printed setting that shows a URL the user gave (`--endpoint`, `--ping-url`)
//! shows it through [`url_shown`]; the token a monitoring URL carries in its path is
//! hidden by [`ping_url_shown`].

/// What replaces a secret in what is shown.
pub const HIDDEN: &str = "***";

/// `text` with the password of its user info, if any, replaced by `***`
/// (`https://user:***@host/path`). A text the URL parser refuses (a bad port, no
/// scheme) is redacted by hand: whatever stands between the scheme and the last `@`
/// of the authority after a `:` is hidden.
pub fn url_shown(text: &str) -> String {
    if let Ok(mut url) = url::Url::parse(text) {
        if url.password().is_some() && url.set_password(Some(HIDDEN)).is_ok() {
            return url.to_string();
        }
        if url.password().is_none() && !has_user_info(text) {
            return text.to_owned();
        }
    }
    by_hand(text)
}

/// A monitoring URL as shown: its scheme and host, with its path (the monitor's
/// token, often) as `***` and no user info (`https://hc-ping.com/***`).
pub fn ping_url_shown(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(url) if url.has_host() => {
            let host = url.host_str().unwrap_or_default();
            let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
            let path = if url.path().trim_matches('/').is_empty() {
                ""
            } else {
                "/***"
            };
            format!("{}://{host}{port}{path}", url.scheme())
        }
        _ => HIDDEN.to_owned(),
    }
}

/// Whether the authority of `text` holds an `@`.
fn has_user_info(text: &str) -> bool {
    authority(text).1.contains('@')
}

/// `(start, authority)`: where the authority of `text` starts, and its text.
fn authority(text: &str) -> (usize, &str) {
    let start = text.find("://").map_or(0, |i| i + 3);
    let rest = &text[start..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    (start, &rest[..end])
}

fn by_hand(text: &str) -> String {
    let (start, authority) = authority(text);
    let Some(at) = authority.rfind('@') else {
        return text.to_owned();
    };
    let user_info = &authority[..at];
    let shown = match user_info.split_once(':') {
        Some((user, _)) => format!("{user}:{HIDDEN}"),
        None => user_info.to_owned(),
    };
    format!("{}{shown}{}", &text[..start], &text[start + at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_never_shown() {
        for (given, shown) in [
            ("https://user:s3cret@host/x", "https://user:***@host/x"),
            (
                "https://user:s3cret@host:notaport/x",
                "https://user:***@host:notaport/x",
            ),
            ("user:s3cret@host/x", "user:***@host/x"),
            ("https://user:s3cret@host?q=1", "https://user:***@host/?q=1"),
            ("https://host/a:b@c", "https://host/a:b@c"),
            ("https://host:8443/prefix", "https://host:8443/prefix"),
            ("ftp://x", "ftp://x"),
        ] {
            assert_eq!(url_shown(given), shown, "{given}");
        }
    }

    #[test]
    fn a_monitors_token_is_never_shown() {
        assert_eq!(
            ping_url_shown("https://u:pw@hc-ping.com/0d5f-token"),
            "https://hc-ping.com/***"
        );
        assert_eq!(
            ping_url_shown("http://127.0.0.1:9/p/"),
            "http://127.0.0.1:9/***"
        );
        assert_eq!(ping_url_shown("hc-ping.com/tok"), "***");
    }
}
