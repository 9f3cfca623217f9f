//! `coffer-call`: sends one signed request to Coffer's game-server API and prints the answer.
//!
//! ```text
//! coffer-call --key-id ck_... --secret cs_... GET '/v1/catalog?region=CN'
//! coffer-call POST /v1/orders '{"player_id":"pl_...","sku":"gems-100",...}' --idempotency-key k1
//! ```
//! The key id, secret and URL may also come from COFFER_KEY_ID, COFFER_SECRET and COFFER_URL.
//! A POST without `--idempotency-key` gets a fresh one, printed, so that it can be retried.

use clap::Parser;

#[derive(Parser)]
#[command(about = "Send a signed request to Coffer's game-server API")]
struct Args {
    /// HTTP method: GET or POST.
    method: String,
    /// Path and query, e.g. /v1/orders or '/v1/catalog?region=CN'.
    path: String,
    /// JSON body, for POST.
    body: Option<String>,
    #[arg(long, env = "COFFER_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, env = "COFFER_KEY_ID")]
    key_id: String,
    #[arg(long, env = "COFFER_SECRET", hide_env_values = true)]
    secret: String,
    #[arg(long)]
    idempotency_key: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let body: Option<serde_json::Value> = args
        .body
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| format!("the body is not JSON: {e}"))?;
    let method = args.method.to_uppercase();
    let idempotency_key = match args.idempotency_key {
        Some(key) => Some(key),
        None if method == "POST" => {
            let key = fresh_key();
            eprintln!("Idempotency-Key: {key} (pass --idempotency-key {key} to retry it)");
            Some(key)
        }
        None => None,
    };
    let client = coffer_signing::GameClient::new(&args.url, &args.key_id, &args.secret);
    let answer = client
        .send(
            &method,
            &args.path,
            body.as_ref(),
            idempotency_key.as_deref(),
        )
        .await?;
    println!("{}", answer.status);
    println!("{}", serde_json::to_string_pretty(&answer.body)?);
    if !answer.status.is_success() {
        std::process::exit(1);
    }
    Ok(())
}

/// A key unique enough for a person at a terminal: the time in nanoseconds and the process id.
fn fresh_key() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("cc-{nanos:x}-{:x}", std::process::id())
}
