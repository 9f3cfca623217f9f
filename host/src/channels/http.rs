//! Sends the requests channel plugins build. Plugins do no I/O: the host sends their requests,
//! only after the runtime checked them against the channel's endpoints, and hands back the
//! channel's answer as it came.

use std::time::Duration;

use coffer_plugin_runtime::contract::{HttpMethod, HttpRequest, HttpResponse};

/// Why a request got no answer. With no answer the payment's outcome is unknown: the caller
/// must find out later with a query, never assume success or failure.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the channel did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach the channel: {0}")]
    Unreachable(String),
    #[error("the channel's answer is over {limit_bytes} bytes")]
    AnswerTooLarge { limit_bytes: usize },
    #[error("the plugin built an invalid request: {0}")]
    InvalidRequest(String),
}

/// Headers a plugin may not set: they would redirect the request to another virtual host or
/// desynchronise the connection. The HTTP client sets them itself.
const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
];

#[derive(Clone)]
pub struct ChannelHttp {
    client: reqwest::Client,
    timeout: Duration,
    max_answer_bytes: usize,
}

/// The longest wait for a channel's endpoint to accept a connection, whatever the timeout of
/// the exchange: a host that does not answer in this time is down.
const MAX_CONNECT_TIME: Duration = Duration::from_secs(5);

impl ChannelHttp {
    pub fn new(timeout: Duration, max_answer_bytes: usize) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(MAX_CONNECT_TIME))
            // A redirect could lead outside the channel's endpoints: never follow one.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("coffer/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with these settings always builds");
        Self {
            client,
            timeout,
            max_answer_bytes,
        }
    }

    pub async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, SendError> {
        let method = match request.method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
            HttpMethod::Patch => reqwest::Method::PATCH,
            HttpMethod::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.client.request(method, &request.url);
        for (name, value) in &request.headers {
            if FORBIDDEN_HEADERS
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h))
            {
                return Err(SendError::InvalidRequest(format!(
                    "header {name:?} is not the plugin's to set"
                )));
            }
            builder = builder.header(name, value);
        }
        let built = builder
            .body(request.body.clone())
            .build()
            .map_err(|e| SendError::InvalidRequest(e.to_string()))?;
        let mut response = self
            .client
            .execute(built)
            .await
            .map_err(|e| self.failure(e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.failure(e))? {
            if body.len() + chunk.len() > self.max_answer_bytes {
                return Err(SendError::AnswerTooLarge {
                    limit_bytes: self.max_answer_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    fn failure(&self, error: reqwest::Error) -> SendError {
        if error.is_timeout() {
            SendError::Timeout(self.timeout)
        } else {
            SendError::Unreachable(error.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plugins_cannot_set_the_host_or_framing_headers() {
        let http = ChannelHttp::new(Duration::from_secs(1), 1024);
        for header in ["Host", "content-length", "Transfer-Encoding", "connection"] {
            let request = HttpRequest {
                method: HttpMethod::Get,
                url: "http://127.0.0.1:9/api".into(),
                headers: vec![(header.into(), "internal-admin.example".into())],
                body: vec![],
            };
            let error = http.send(&request).await.unwrap_err();
            assert!(
                matches!(error, SendError::InvalidRequest(_)),
                "{header}: {error:?}"
            );
        }
    }
}
