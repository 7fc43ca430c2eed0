//! Sending one request: signing, the one re-signing on 9 or 13, the transport and
//! its failures, and the tally of calls by class of answer.

use super::answer;
use super::error::{classify, io_kind, Failure};
use super::request::{Body, Request};
use super::{CallError, Client, TransportKind, Unreachable, HANDSHAKE_FAILURES_UNREACHABLE};
use crate::service::api::Call;
use crate::service::codes::{code, Class};
use crate::service::network::ConnectError;
use crate::service::signer::Authorization;
use serde::de::DeserializeOwned;
use std::io::{self, Read};
use std::sync::atomic::Ordering;

/// Largest answer body read; id lists of large groups stay well below.
const MAX_ANSWER_BYTES: u64 = 64 * 1024 * 1024;

impl Client {
    /// Sends a request, counting it by the class of its answer.
    pub(super) fn send<T: DeserializeOwned + Default>(
        &self,
        req: Request<'_>,
    ) -> Result<T, CallError> {
        let call = req.call;
        let result = self.send_signed(req);
        let class = match &result {
            Ok(_) => Class::Ok,
            Err(e) => e.class(),
        };
        *self
            .inner
            .tally
            .0
            .lock()
            .expect("call tally lock")
            .entry((call, class.label()))
            .or_default() += 1;
        result
    }

    /// Sends a request, re-signing once on 9 or 13.
    fn send_signed<T: DeserializeOwned + Default>(&self, req: Request<'_>) -> Result<T, CallError> {
        let auth = self.inner.signer.authorization();
        match self.attempt(&req, &auth) {
            Err(CallError::Service { code: c, .. })
                if c == code::SIGNATURE_EXPIRED || c == code::REPLAY =>
            {
                tracing::debug!(call = req.call.name(), code = c, "re-signing once");
                let fresh = self.inner.signer.renew_after_refusal(&auth);
                self.attempt(&req, &fresh)
            }
            other => other,
        }
    }

    fn attempt<T: DeserializeOwned + Default>(
        &self,
        req: &Request<'_>,
        auth: &Authorization,
    ) -> Result<T, CallError> {
        let call = req.call;
        let body = self.body(req)?;
        let url = format!("{}{}", self.inner.base, call.path());
        let request = self
            .inner
            .agent
            .post(&url)
            .set("Authorization", auth.header_value());
        let result = match body {
            Body::Json(bytes) => request
                .set("Content-Type", "application/json")
                .send_bytes(&bytes),
            Body::Multipart(mp) => {
                let fault = mp.fault.clone();
                let result = request
                    .set("Content-Type", &mp.content_type)
                    .set("Content-Length", &mp.content_length.to_string())
                    .send(mp.reader);
                if result.is_err() {
                    if let Some(f) = fault.take() {
                        return Err(CallError::Image {
                            call,
                            path: f.path,
                            source: f.error,
                        });
                    }
                }
                result
            }
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => return Err(self.transport_error(call, &t)),
        };
        let status = response.status();
        // A proxy forwarding a plain-http call answers 407 itself when it wants
        // credentials it was not given, or refuses them: every call would get the
        // same, so it stops the job like the 407 to a tunnel's CONNECT.
        if status == 407 {
            if let Some(proxy) = &self.inner.proxy {
                return Err(CallError::Transport {
                    call,
                    kind: TransportKind::Unreachable(Unreachable::ProxyAuth),
                    detail: format!(
                        "{} through the proxy {proxy}: it answered \"407 {}\"",
                        self.inner.base,
                        response.status_text()
                    ),
                });
            }
        }
        self.inner.handshake_failures.store(0, Ordering::Relaxed);
        self.inner.answered.store(true, Ordering::Relaxed);
        let mut bytes = Vec::new();
        if let Err(e) = response
            .into_reader()
            .take(MAX_ANSWER_BYTES)
            .read_to_end(&mut bytes)
        {
            return Err(CallError::Transport {
                call,
                kind: io_kind(&e),
                detail: format!("reading the answer: {e}"),
            });
        }
        answer::decode(call, status, &bytes)
    }

    /// Classes a failure of the transport, once, where it is made: what can be
    /// retried, what means the service cannot be reached as configured
    /// ([`TransportKind::Unreachable`]), and what lost an answer.
    fn transport_error(&self, call: Call, t: &ureq::Transport) -> CallError {
        let source = std::error::Error::source(t);
        // A failure of the tunnel or the handshake says what it is by itself; the
        // agent's kind ("Network Error") would only blur it.
        let ours = source
            .and_then(|s| s.downcast_ref::<io::Error>())
            .and_then(|e| e.get_ref())
            .is_some_and(|e| e.is::<ConnectError>());
        let mut detail = if ours {
            String::new()
        } else {
            t.kind().to_string()
        };
        if let Some(m) = t.message() {
            detail.push_str(": ");
            detail.push_str(m);
        }
        if let Some(s) = source {
            if !detail.is_empty() {
                detail.push_str(": ");
            }
            detail.push_str(&s.to_string());
        }
        let kind = match classify(t) {
            Failure::Kind(kind) => kind,
            Failure::Handshake => {
                let failures = self
                    .inner
                    .handshake_failures
                    .fetch_add(1, Ordering::Relaxed)
                    + 1;
                if failures >= HANDSHAKE_FAILURES_UNREACHABLE {
                    TransportKind::Unreachable(Unreachable::TlsHandshake)
                } else {
                    TransportKind::Connect
                }
            }
        };
        // Refused after an answer: a restart, not a wrong address (see the module
        // documentation).
        let kind = match kind {
            TransportKind::Unreachable(Unreachable::Refused)
                if self.inner.answered.load(Ordering::Relaxed) =>
            {
                detail.push_str(" (the service answered before: restarting?)");
                TransportKind::Connect
            }
            kind => kind,
        };
        if let TransportKind::Unreachable(_) = kind {
            let via = match &self.inner.proxy {
                Some(p) => format!(" through the proxy {p}"),
                None => String::new(),
            };
            detail = format!("{}{via}: {detail}", self.inner.base);
        }
        CallError::Transport { call, kind, detail }
    }
}
