//! The books: every payment and refund posted once in the transaction that moves the money,
//! and the check that proves it (run after every test of the suite, on its way out: see
//! `shop::db::TestDb`). On SQLite and PostgreSQL.

use coffer::ledger::{self, Account, Cause, LedgerError, Posted, Transfer};
use coffer_money::{Currency, Money};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::shop::{Backend, Shop};

both_backends!(
    a_card_payment_is_posted_once_to_the_channel_and_the_games_revenue,
    a_refund_gives_back_through_the_channel_it_came_from,
    a_transfer_posted_again_is_posted_once_and_other_figures_are_refused,
    a_posting_with_one_leg_is_caught_by_the_check_and_the_command,
);

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("USD").unwrap())
}

async fn balances(shop: &Shop) -> Vec<Value> {
    let (status, body) = shop.admin("GET", "/v1/admin/ledger/balances", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

/// Debits minus credits of `account` of the test game in `currency`.
fn net(balances: &[Value], account: &str, currency: &str) -> i64 {
    balances
        .iter()
        .filter(|b| {
            b["game"] == "star-knights" && b["account"] == account && b["currency"] == currency
        })
        .map(|b| b["debits_minor"].as_i64().unwrap() - b["credits_minor"].as_i64().unwrap())
        .sum()
}

async fn check(shop: &Shop) -> Value {
    let (status, body) = shop.admin("GET", "/v1/admin/ledger/check", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn a_card_payment_is_posted_once_to_the_channel_and_the_games_revenue(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let order_no = shop.paid_card_order(&player, "ledger-1").await;
    // The same payment told again by query: applied once, posted once.
    let orders = shop.running.as_ref().unwrap().state.orders.clone();
    let (order, attempt) = orders
        .attempt_by_ref("carespay", &order_no_ref(&shop, &order_no).await)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(order.order_no.as_str(), order_no);
    orders
        .confirm_by_query("carespay", &attempt.payment_ref)
        .await
        .unwrap();

    let books = balances(&shop).await;
    assert_eq!(net(&books, "clearing:carespay", "USD"), 99);
    assert_eq!(net(&books, "revenue", "USD"), -99);
    let report = check(&shop).await;
    assert_eq!(report["violations"], json!([]));
    assert_eq!(report["transfers"], 1);
    assert_eq!(report["paid_orders"], 1);
    assert_eq!(
        report["totals"],
        json!([{ "currency": "USD", "debits_minor": 99, "credits_minor": 99 }])
    );
}

/// The payment reference of an order's first attempt.
async fn order_no_ref(shop: &Shop, order_no: &str) -> String {
    let (_, detail) = shop
        .admin("GET", &format!("/v1/admin/orders/{order_no}"), None)
        .await;
    detail["attempts"][0]["payment_ref"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn a_refund_gives_back_through_the_channel_it_came_from(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let order_no = shop.paid_card_order(&player, "ledger-2").await;
    let answer = shop
        .call(
            "POST",
            &format!("/v1/orders/{order_no}/refunds"),
            Some(json!({ "amount_minor": 40, "reason": "player request" })),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["status"], "succeeded", "{}", answer.body);

    let books = balances(&shop).await;
    assert_eq!(net(&books, "clearing:carespay", "USD"), 99 - 40);
    assert_eq!(net(&books, "revenue", "USD"), -99);
    assert_eq!(net(&books, "refunds", "USD"), 40);
    let report = check(&shop).await;
    assert_eq!(report["violations"], json!([]));
    assert_eq!(
        (
            report["transfers"].as_i64(),
            report["succeeded_refunds"].as_i64()
        ),
        (Some(2), Some(1))
    );
}

async fn post(shop: &Shop, id: &'static str, amount: Money) -> Result<Posted, String> {
    shop.store()
        .write((id, amount), |tx, (id, amount)| {
            Box::pin(async move {
                let game = coffer::games::GameId::parse("star-knights").unwrap();
                ledger::post(
                    tx,
                    &Transfer {
                        cause: Cause::Payment,
                        upstream_id: id,
                        game: Some(&game),
                        debit: Account::Clearing("testpay".into()),
                        credit: Account::Revenue,
                        amount: *amount,
                        order_no: None,
                    },
                )
                .await
            })
        })
        .await
        .map_err(|e: LedgerError| e.to_string())
}

async fn a_transfer_posted_again_is_posted_once_and_other_figures_are_refused(backend: Backend) {
    let mut shop = Shop::start(backend).await;
    assert_eq!(post(&shop, "testpay:P-1", usd(500)).await, Ok(Posted::New));
    assert_eq!(
        post(&shop, "testpay:P-1", usd(500)).await,
        Ok(Posted::AlreadyPosted)
    );
    let refused = post(&shop, "testpay:P-1", usd(501)).await.unwrap_err();
    assert!(refused.contains("other figures"), "{refused}");
    let refused = post(&shop, "testpay:P-2", usd(0)).await.unwrap_err();
    assert!(refused.contains("positive"), "{refused}");
    let entries = shop
        .count("SELECT CAST(COUNT(*) AS BIGINT) FROM ledger_entries")
        .await;
    assert_eq!(entries, 2, "one transfer, two legs");
    // Balanced, but it pays no order: the books are right to say so.
    let report = check(&shop).await;
    assert_eq!(
        report["violations"],
        json!([]),
        "a posting without an order breaks no rule"
    );
    shop.db.books_broken_on_purpose();
}

async fn a_posting_with_one_leg_is_caught_by_the_check_and_the_command(backend: Backend) {
    let mut shop = Shop::start(backend).await;
    let command = |expect_success: bool, url: String| async move {
        let dir = tempfile::tempdir().unwrap();
        let output = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_coffer"))
                .args(["ledger", "check"])
                .current_dir(dir.path())
                .env_remove("COFFER_CONFIG")
                .env("COFFER_DATABASE__URL", url)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert_eq!(
            output.status.success(),
            expect_success,
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_str::<Value>(&stdout).unwrap()
    };
    assert_eq!(
        command(true, shop.db.url.clone()).await["violations"],
        json!([])
    );

    // A bug that writes the debit and forgets the credit.
    sqlx::query(
        "INSERT INTO ledger_entries (kind, upstream_id, side, game_id, account, currency, \
         amount_minor, order_no, created_at) \
         VALUES ('payment', 'testpay:HALF', 'debit', 'star-knights', 'clearing:testpay', 'USD', \
         700, NULL, 0)",
    )
    .execute(shop.store().pool())
    .await
    .unwrap();
    let report = check(&shop).await;
    let broken: Vec<&str> = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["invariant"].as_str().unwrap())
        .collect();
    assert_eq!(
        broken,
        ["unbalanced_transfer", "unbalanced_currency"],
        "{report}"
    );
    let from_command = command(false, shop.db.url.clone()).await;
    assert_eq!(from_command["violations"], report["violations"]);
    shop.db.books_broken_on_purpose();
}
