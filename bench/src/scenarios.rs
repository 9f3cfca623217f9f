//! What the load consists of: the requests of each scenario, and the report lines.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::load::{self, MakeRequest, Outcome, Request};
use crate::world::{Commits, LEGACY_PRODUCT, World};

pub struct Settings {
    pub seconds: Duration,
    pub connections: usize,
    pub purchases: usize,
    pub label: String,
}

/// The old client's approved test card.
const CARD_APPROVED: &str = "4242424242424242";
const CARD_3DS: &str = "4000000000003220";

pub async fn run_all(world: &World, settings: &Settings, only: &[String]) -> Result<()> {
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    // Bill and order numbers unique to this run (a rerun against the same database is fine).
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis()
        % 100_000_000;
    let addr = world.coffer_addr;
    let mut paid_bills = 0;
    if wanted("legacy-pay") {
        let outcome = measured(world, settings, "legacy-pay", |s| {
            load::closed_loop(addr, s.connections, s.seconds, legacy_pay(world, run))
        })
        .await;
        paid_bills = outcome.requests();
    }
    if wanted("legacy-record") && paid_bills > 0 {
        measured(world, settings, "legacy-record", |s| {
            load::closed_loop(
                addr,
                s.connections,
                s.seconds,
                legacy_record(world, run, paid_bills),
            )
        })
        .await;
    }
    if wanted("legacy-user") {
        let pids: Vec<String> = world.legacy.iter().map(|(pid, _)| pid.clone()).collect();
        let make: MakeRequest = Arc::new(move |n| {
            Request::get(format!("/api/users/{}", pids[n as usize % pids.len()]))
        });
        measured(world, settings, "legacy-user", |s| {
            load::closed_loop(addr, s.connections, s.seconds, make.clone())
        })
        .await;
    }
    if wanted("legacy-health") {
        let make: MakeRequest = Arc::new(|_| Request::get("/api/health"));
        measured(world, settings, "legacy-health", |s| {
            load::closed_loop(addr, s.connections, s.seconds, make.clone())
        })
        .await;
    }
    if wanted("v1-orders") {
        measured(world, settings, "v1-orders", |s| {
            load::closed_loop(addr, s.connections, s.seconds, card_orders(world, run, "c"))
        })
        .await;
    }
    if wanted("v1-orders-1000") {
        measured(world, settings, "v1-orders-1000", |s| {
            load::open_loop(addr, 1000, s.seconds, 64, card_orders(world, run, "o"))
        })
        .await;
    }
    for (name, pipeline) in [
        ("pipeline-carespay", Pipeline::CaresPayDirect),
        ("pipeline-carespay-3ds", Pipeline::CaresPay3ds),
        ("pipeline-alipay-qr", Pipeline::AlipayQr),
    ] {
        if wanted(name) {
            pipeline_run(world, settings, name, pipeline, run).await?;
        }
    }
    Ok(())
}

/// Runs `scenario`, then prints its line with Coffer's CPU use and memory meanwhile.
async fn measured<F, Fut>(world: &World, settings: &Settings, name: &str, scenario: F) -> Outcome
where
    F: FnOnce(&Settings) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let commits_before = world.commits().await.ok().flatten();
    let cpu_before = world.coffer.cpu();
    let mut outcome = scenario(settings).await;
    let cpu = world.coffer.cpu() - cpu_before;
    let cpu_share = cpu.as_secs_f64() / outcome.elapsed.as_secs_f64() * 100.0;
    println!(
        "{}{:<34} {:>9.0} {:>8.1} {:>8.1} {:>7} {:>9.0}% {:>8.0} {:>9}",
        prefix(&settings.label),
        name,
        outcome.per_second(),
        outcome.percentile_ms(0.50),
        outcome.percentile_ms(0.99),
        outcome.errors(),
        cpu_share,
        world.coffer.rss_mib(),
        jobs_per_commit(world, commits_before).await,
    );
    if outcome.errors() > 0 {
        println!("    answers by status: {:?}", outcome.statuses);
    }
    outcome
}

/// The table's last column: write jobs per SQLite commit since `before` ("-" on PostgreSQL).
async fn jobs_per_commit(world: &World, before: Option<Commits>) -> String {
    match world.commits().await {
        Ok(Some(now)) => now.per_commit_since(before),
        _ => "-".into(),
    }
}

fn prefix(label: &str) -> String {
    if label.is_empty() {
        String::new()
    } else {
        format!("[{label}] ")
    }
}

/// The old client's form, field for field (its own merchant key and signature included, which
/// Coffer ignores), paid with its player's session.
fn legacy_pay(world: &World, run: u128) -> MakeRequest {
    let tokens: Vec<String> = world.legacy.iter().map(|(_, t)| t.clone()).collect();
    // The client percent-encodes productInfo itself, then the form encodes it again.
    let product = percent(&percent(LEGACY_PRODUCT));
    Arc::new(move |n| {
        let bill = format!("B{run:08}{n:08}");
        let fields = [
            ("shippingEmail", "ada@example.test"),
            ("shippingCountry", "US"),
            ("shippingFirstName", "Ada"),
            ("shippingLastName", "Player"),
            ("shippingAddress", "1 Main St"),
            ("shippingZipCode", "94105"),
            ("shippingCity", "San Francisco"),
            ("billNo", &bill),
            ("md5_key", "the-key-the-old-client-shipped"),
            ("currency", "1"),
            ("language", "en"),
            ("merNo", "100140"),
            ("returnURL", "http://119.91.142.92:5001/api/get3DResult"),
            ("noticeUrl", "aaa"),
            ("lastName", "Player"),
            ("firstName", "Ada"),
            ("country", "US"),
            ("city", "San Francisco"),
            ("address", "1 Main St"),
            ("zipCode", "94105"),
            ("email", "ada@example.test"),
            ("ip", "203.0.113.7"),
            ("phone", "13800000000"),
            ("cardNum", CARD_APPROVED),
            ("month", "12"),
            ("year", "2031"),
            ("cvv2", "123"),
            ("amount", "8"),
            ("md5Info", "0123456789abcdef0123456789abcdef"),
        ];
        let mut body = fields
            .iter()
            .map(|(k, v)| format!("{k}={}", percent(v)))
            .collect::<Vec<_>>()
            .join("&");
        body.push_str(&format!("&productInfo={product}"));
        Request {
            method: hyper::Method::POST,
            path: "/api/pay".into(),
            headers: vec![
                ("content-type", "application/x-www-form-urlencoded".into()),
                (
                    "authorization",
                    format!("Bearer {}", tokens[n as usize % tokens.len()]),
                ),
            ],
            body: body.into_bytes(),
        }
    })
}

/// The record the old client uploads after each payment of [`legacy_pay`] (bills paid there).
fn legacy_record(world: &World, run: u128, paid: u64) -> MakeRequest {
    let players = world.legacy.clone();
    Arc::new(move |n| {
        let bill_n = n % paid;
        let (pid, token) = &players[bill_n as usize % players.len()];
        let body = json!({
            "user_id": pid, "user_name": pid, "amount": "8.00",
            "order_no": format!("B{run:08}{bill_n:08}"), "pay_time": "2026-12-01 10:00:00",
            "product_id": "itemBtn1", "product_info": LEGACY_PRODUCT,
            "product_details": { "diamonds": 12 }
        });
        Request {
            method: hyper::Method::POST,
            path: "/api/payments/record".into(),
            headers: vec![
                ("content-type", "application/json".into()),
                ("authorization", format!("Bearer {token}")),
            ],
            body: body.to_string().into_bytes(),
        }
    })
}

/// Signed `POST /v1/orders` of a card approved at once (CaresPay, USD).
fn card_orders(world: &World, run: u128, tag: &'static str) -> MakeRequest {
    let (players, key_id, secret) = (
        world.players.clone(),
        world.client.key_id.clone(),
        world.client.secret.clone(),
    );
    Arc::new(move |n| {
        let merchant_order_no = format!("{tag}{run}-{n}");
        let body = card_order(
            &players[n as usize % players.len()],
            &merchant_order_no,
            CARD_APPROVED,
        );
        signed_post(&key_id, &secret, "/v1/orders", &body, &merchant_order_no)
    })
}

fn card_order(player: &str, merchant_order_no: &str, card: &str) -> Value {
    json!({
        "player_id": player, "sku": "gems-100", "region": "US",
        "merchant_order_no": merchant_order_no, "method": "card", "flow": "direct_card",
        "channel": "carespay", "client_ip": "203.0.113.7",
        "customer": { "email": "p@example.test", "first_name": "B", "last_name": "P",
                      "billing": { "country": "US", "city": "SF", "line1": "1 Main", "postal_code": "94105" } },
        "card": { "number": card, "expiry_month": 12, "expiry_year": 2031, "cvc": "123",
                  "holder_name": "B P" }
    })
}

fn signed_post(key_id: &str, secret: &str, path: &str, body: &Value, key: &str) -> Request {
    let body = body.to_string().into_bytes();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let signature = coffer_signing::signature_header(secret, now, "POST", path, &body);
    Request {
        method: hyper::Method::POST,
        path: path.into(),
        headers: vec![
            ("content-type", "application/json".into()),
            ("coffer-key", key_id.to_owned()),
            ("coffer-signature", signature),
            ("idempotency-key", key.to_owned()),
        ],
        body,
    }
}

/// Percent-encodes everything but unreserved characters.
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[derive(Clone, Copy)]
enum Pipeline {
    /// A card approved at once (the channel's answer pays the order), then delivery.
    CaresPayDirect,
    /// 3-D Secure: the cardholder approves at the simulator, whose notification (an unsigned
    /// claim) Coffer confirms with a signed query; then delivery. MD5 throughout.
    CaresPay3ds,
    /// A QR code paid at the simulator, whose RSA-signed notification pays the order.
    AlipayQr,
}

impl Pipeline {
    /// What its order numbers start with.
    fn tag(self) -> &'static str {
        match self {
            Self::CaresPayDirect => "pd",
            Self::CaresPay3ds => "p3",
            Self::AlipayQr => "pa",
        }
    }
}

/// `settings.purchases` purchases from `settings.connections` concurrent game servers and
/// players, until the sample game server has granted every one.
async fn pipeline_run(
    world: &World,
    settings: &Settings,
    name: &str,
    pipeline: Pipeline,
    run: u128,
) -> Result<()> {
    let before = world.granted().await?;
    let commits_before = world.commits().await.ok().flatten();
    let cpu_before = world.coffer.cpu();
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..settings.connections {
        let (next, total) = (next.clone(), settings.purchases);
        let (client, http, sim) = (
            world.client.clone(),
            world.http.clone(),
            world.sim_url.clone(),
        );
        let players = world.players.clone();
        clients.spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, anyhow::Error>(());
                }
                let player = &players[i % players.len()];
                let merchant_order_no = format!("{}{run}-{i}", pipeline.tag());
                let body = match pipeline {
                    Pipeline::CaresPayDirect => {
                        card_order(player, &merchant_order_no, CARD_APPROVED)
                    }
                    Pipeline::CaresPay3ds => card_order(player, &merchant_order_no, CARD_3DS),
                    Pipeline::AlipayQr => json!({
                        "player_id": player, "sku": "gems-100", "region": "CN",
                        "merchant_order_no": merchant_order_no, "method": "alipay",
                        "flow": "qr_code", "client_ip": "203.0.113.7" }),
                };
                let order = client
                    .send("POST", "/v1/orders", Some(&body), Some(&merchant_order_no))
                    .await?;
                if order.status.as_u16() != 201 {
                    bail!("order refused: {} {}", order.status, order.body);
                }
                let order_no = order.body["order_no"].as_str().context("no order_no")?;
                let pay = match pipeline {
                    Pipeline::CaresPayDirect => continue,
                    Pipeline::CaresPay3ds => http
                        .post(format!("{sim}/_control/carespay/3ds/{order_no}"))
                        .json(&json!({ "approve": true })),
                    Pipeline::AlipayQr => {
                        http.post(format!("{sim}/_control/alipay/pay/{order_no}"))
                    }
                };
                pay.send().await?.error_for_status()?;
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done??;
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut granted = 0;
    while Instant::now() < deadline {
        granted = world.granted().await? - before;
        if granted >= settings.purchases {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    let cpu = world.coffer.cpu() - cpu_before;
    println!(
        "{}{:<34} {:>9.0} {:>8} {:>8} {:>7} {:>9.0}% {:>8.0} {:>9}",
        prefix(&settings.label),
        name,
        granted as f64 / elapsed.as_secs_f64(),
        "-",
        "-",
        settings.purchases.saturating_sub(granted),
        cpu.as_secs_f64() / elapsed.as_secs_f64() * 100.0,
        world.coffer.rss_mib(),
        jobs_per_commit(world, commits_before).await,
    );
    Ok(())
}
