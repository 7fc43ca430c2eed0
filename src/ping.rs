//! The monitoring pings of a run (`--ping-url URL`): one when the job starts and one
//! when it ends, carrying its exit code, by the convention of healthchecks.io
//! (`GET URL/start`, then `GET URL/<exit code>`), which other monitors take as plain
//! GETs of a URL too. A monitor then tells a night whose job never started, never
//! ended, or ended with a code other than 0.
//!
//! Monitoring must not stop the job it watches: each ping has a short timeout
//! ([`PING_TIMEOUT`]), is tried once, and a monitor that is down or answers an error
//! costs one WARN line, never the job's exit code.
//!
//! A ping carries nothing of the job: a GET without a body, no credential and no
//! header but the user agent. The URL may not hold a user name, a password, a query
//! or a fragment, and the path of a monitor's URL is often its token, so log lines
//! name the monitor by its scheme and host only. Pings go out the way the service's
//! calls do: through the proxy the proxy variables name for the monitor's host, and
//! trusting the same CA file.

use crate::service::client::{ConfigError, Endpoint};
use crate::service::network;
use std::path::Path;
use std::time::Duration;

/// The most a ping may take, connection included: a monitor that answers later is
/// taken as down.
pub const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends the pings of one run to one monitoring URL.
pub struct Pinger {
    agent: ureq::Agent,
    /// The URL as given, without a trailing `/`.
    url: String,
    /// `scheme://host[:port]`, for log lines.
    monitor: String,
}

impl std::fmt::Debug for Pinger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pinger")
            .field("monitor", &self.monitor)
            .finish_non_exhaustive()
    }
}

impl Pinger {
    /// A pinger for `url` (`http://` or `https://`, no user name, password, query or
    /// fragment), trusting `ca_cert` besides the bundled roots, through the proxy
    /// `env`'s proxy variables name for its host.
    pub fn new(
        url: &str,
        ca_cert: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Pinger, ConfigError> {
        // A refusal shows neither a password nor the monitor's token.
        let endpoint = Endpoint::parse(url).map_err(|err| match err {
            ConfigError::BadEndpoint { reason, .. } => ConfigError::BadEndpoint {
                endpoint: crate::redact::ping_url_shown(url),
                reason,
            },
            other => other,
        })?;
        let proxy = network::proxy_for(&endpoint, env)?.map(|choice| choice.url);
        let tls = network::tls_config(ca_cert)?;
        let agent = ureq::AgentBuilder::new()
            .timeout(PING_TIMEOUT)
            .redirects(0)
            .user_agent(concat!("faceenroll/", env!("CARGO_PKG_VERSION")));
        let agent = network::through_proxy(agent, &endpoint, tls, proxy.as_ref())?.build();
        let scheme = if endpoint.https { "https" } else { "http" };
        let monitor = match endpoint.port {
            Some(port) => format!("{scheme}://{}:{port}", endpoint.host),
            None => format!("{scheme}://{}", endpoint.host),
        };
        Ok(Pinger {
            agent,
            url: url.trim_end_matches('/').to_owned(),
            monitor,
        })
    }

    /// The job is starting.
    pub fn start(&self) {
        self.ping("start");
    }

    /// The job ended with `exit_code`.
    pub fn finish(&self, exit_code: i32) {
        self.ping(&exit_code.to_string());
    }

    /// `GET URL/<what>`; a failure is a WARN naming the monitor by its host.
    fn ping(&self, what: &str) {
        match self.agent.get(&format!("{}/{what}", self.url)).call() {
            Ok(_) => tracing::debug!("pinged the monitor at {} ({what})", self.monitor),
            Err(err) => tracing::warn!(
                "the monitor at {} did not take the {what} ping ({}); the job is not affected",
                self.monitor,
                why(&err)
            ),
        }
    }
}

/// Why a ping failed, without the URL (ureq's own messages name it).
fn why(err: &ureq::Error) -> String {
    match err {
        ureq::Error::Status(status, _) => format!("it answered HTTP {status}"),
        ureq::Error::Transport(transport) => {
            let cause = std::error::Error::source(transport)
                .map(|source| format!(": {source}"))
                .unwrap_or_default();
            format!("{}{cause}", transport.kind())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_env;

    #[test]
    fn a_url_with_credentials_a_query_or_another_scheme_is_refused() {
        let env = test_env(&[]);
        for bad in [
            "https://user:secret@hc-ping.com/abc",
            "https://hc-ping.com/abc?rid=1",
            "ftp://hc-ping.com/abc",
            "hc-ping.com/abc",
        ] {
            let err = Pinger::new(bad, None, &env).unwrap_err().to_string();
            assert!(!err.contains("secret") && !err.contains("abc"), "{err}");
        }
        let pinger = Pinger::new("https://hc-ping.com/0d5f-token/", None, &env).unwrap();
        assert_eq!(pinger.url, "https://hc-ping.com/0d5f-token");
        // Log lines name the monitor, never its token.
        assert_eq!(pinger.monitor, "https://hc-ping.com");
        assert!(!format!("{pinger:?}").contains("token"));
    }
}
