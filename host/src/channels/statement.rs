//! Fetching a channel's statement of one day through its plugin: the request it builds, the
//! download links it follows, and the lines it reads from the document.

use coffer_plugin_runtime::Channel;
use coffer_plugin_runtime::contract::StatementStep;

use super::StatementEntry;
use super::http::ChannelHttp;

/// Download links a statement may lead through before its document.
const MAX_FOLLOWS: usize = 5;

/// The statement of `day` (`YYYY-MM-DD`, the channel's time zone), line by line. An error is a
/// sentence naming what failed, safe to show an operator.
pub async fn fetch(
    channel: &Channel,
    http: &ChannelHttp,
    day: &str,
) -> Result<Vec<StatementEntry>, String> {
    let mut request = channel
        .build_statement_request(day)
        .await
        .map_err(|e| format!("the plugin cannot ask for the statement: {e}"))?;
    for _ in 0..=MAX_FOLLOWS {
        let response = http
            .send(&request)
            .await
            .map_err(|e| format!("the channel did not answer the statement request: {e}"))?;
        let step = channel
            .parse_statement_response(day, &response)
            .await
            .map_err(|e| format!("the plugin cannot read the statement answer: {e}"))?;
        match step {
            StatementStep::Follow(next) => request = next,
            StatementStep::Document(document) => {
                let lines = channel
                    .parse_statement(&document)
                    .await
                    .map_err(|e| format!("the plugin cannot read the statement: {e}"))?;
                return Ok(lines.into_iter().map(StatementEntry::from).collect());
            }
        }
    }
    Err(format!(
        "the statement led through more than {MAX_FOLLOWS} download links"
    ))
}
