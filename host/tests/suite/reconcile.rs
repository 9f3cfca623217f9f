//! Reconciliation against each channel's statement, served by the simulator in the channel's
//! real layout (Alipay's zip of GBK CSV files, WeChat Pay's backtick CSV, CaresPay's batch
//! list): a clean day finds nothing and posts each fee once, each injected discrepancy is found
//! and named, and a payment the channel took while its notification was lost becomes paid,
//! once. On SQLite and PostgreSQL.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::shop::{Backend, Shop};

both_backends!(
    a_clean_alipay_day_finds_nothing_and_posts_each_fee_once,
    a_clean_wechatpay_day_finds_nothing_and_posts_each_fee_once,
    a_clean_carespay_day_finds_nothing_and_posts_each_fee_once,
    each_discrepancy_in_an_alipay_statement_is_found_and_named,
    each_discrepancy_in_a_wechatpay_statement_is_found_and_named,
    each_discrepancy_in_a_carespay_statement_is_found_and_named,
    an_alipay_payment_whose_notification_was_lost_is_settled_by_reconciliation_once,
    a_wechatpay_payment_whose_notification_was_lost_is_settled_by_reconciliation_once,
    a_matched_fee_missing_from_the_books_is_caught_by_the_check,
    a_clean_day_of_a_thousand_card_purchases_and_their_refunds_has_no_false_findings,
    a_payment_the_channel_lists_on_the_next_day_is_not_short_on_either,
);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    Alipay,
    WechatPay,
    CaresPay,
}

impl Via {
    fn id(self) -> &'static str {
        match self {
            Self::Alipay => "alipay",
            Self::WechatPay => "wechatpay",
            Self::CaresPay => "carespay",
        }
    }

    /// Today as the channel cuts its statements (Beijing time, or UTC for CaresPay).
    fn today(self) -> String {
        let offset = if self == Self::CaresPay { 0 } else { 8 * 3600 };
        coffer::reconcile::Day::of(coffer::store::now_ms(), offset).to_string()
    }

    /// What a gems-100 costs through it, and the fee the simulator charges on that.
    fn price_and_fee(self) -> (i64, i64) {
        match self {
            // 0.6% of 6.00 CNY.
            Self::Alipay | Self::WechatPay => (600, 4),
            // 3% of 0.99 USD.
            Self::CaresPay => (99, 3),
        }
    }

    /// Creates an order through this channel; returns its number, not paid yet for the QR
    /// channels (the card is paid at once).
    async fn order(self, shop: &Shop, player: &str, merchant_order_no: &str) -> String {
        let created = match self {
            Self::Alipay => shop.order_qr(player, "gems-100", merchant_order_no).await,
            Self::WechatPay => {
                let mut body = shop.qr_order(player, "gems-100", merchant_order_no);
                body["method"] = json!("wechat-pay");
                body["channel"] = json!("wechatpay");
                shop.call("POST", "/v1/orders", Some(body)).await
            }
            Self::CaresPay => {
                return shop.paid_card_order(player, merchant_order_no).await;
            }
        };
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        created.body["order_no"].as_str().unwrap().to_owned()
    }

    /// The player pays at the channel (the QR channels); the card was paid already.
    async fn pay(self, shop: &Shop, order_no: &str) {
        if self != Self::CaresPay {
            shop.sim_control(
                &format!("/_control/{}/pay/{order_no}", self.id()),
                json!({}),
            )
            .await;
        }
    }

    async fn paid(self, shop: &Shop, player: &str, merchant_order_no: &str) -> String {
        let order_no = self.order(shop, player, merchant_order_no).await;
        self.pay(shop, &order_no).await;
        shop.wait_for_status(&order_no, "paid").await;
        order_no
    }

    async fn reconcile(self, shop: &Shop) -> Value {
        self.reconcile_day(shop, &self.today()).await
    }

    async fn reconcile_day(self, shop: &Shop, day: &str) -> Value {
        let (status, body) = shop
            .admin(
                "POST",
                "/v1/admin/reconciliations",
                Some(json!({ "channel": self.id(), "day": day })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Tells the simulator how to change this channel's statements from now on.
    async fn edit_statements(self, shop: &Shop, edits: Value) {
        shop.http
            .put(shop.sim.url(&format!("/_control/statements/{}", self.id())))
            .json(&edits)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }

    async fn fees_posted(self, shop: &Shop) -> i64 {
        let (_, balances) = shop.admin("GET", "/v1/admin/ledger/balances", None).await;
        let account = format!("fees:{}", self.id());
        balances
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["account"] == account.as_str())
            .map(|b| b["debits_minor"].as_i64().unwrap() - b["credits_minor"].as_i64().unwrap())
            .sum()
    }
}

/// The payment reference the channel knows an order's first attempt by.
async fn payment_ref(shop: &Shop, order_no: &str) -> String {
    let (_, detail) = shop
        .admin("GET", &format!("/v1/admin/orders/{order_no}"), None)
        .await;
    detail["attempts"][0]["payment_ref"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn kinds(summary: &Value) -> BTreeSet<(String, String)> {
    summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                f["payment_ref"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn shop_for(backend: Backend) -> (Shop, String) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    (shop, player)
}

async fn a_clean_day_finds_nothing_and_posts_each_fee_once(backend: Backend, via: Via) {
    let (shop, player) = shop_for(backend).await;
    let first = via.paid(&shop, &player, "rc-1").await;
    via.paid(&shop, &player, "rc-2").await;
    let refund = shop
        .call(
            "POST",
            &format!("/v1/orders/{first}/refunds"),
            Some(json!({ "amount_minor": 50 })),
        )
        .await;
    assert_eq!(refund.status, StatusCode::CREATED, "{}", refund.body);
    assert_eq!(refund.body["status"], "succeeded", "{}", refund.body);

    let summary = via.reconcile(&shop).await;
    assert_eq!(summary["findings"], json!([]), "{summary}");
    assert_eq!(
        (summary["lines"].as_i64(), summary["matched"].as_i64()),
        (Some(3), Some(3))
    );
    let fees = via.fees_posted(&shop).await;
    let (_, fee) = via.price_and_fee();
    // Two payments' fees, less what a channel gives back on the refund (if it does).
    assert!(
        (2 * fee - 1..=2 * fee).contains(&fees),
        "fees {fees}: {summary}"
    );

    // The same day again: the same answer, nothing posted twice.
    let again = via.reconcile(&shop).await;
    assert_eq!(again["findings"], json!([]));
    assert_eq!(via.fees_posted(&shop).await, fees);
    let (status, stored) = shop
        .admin(
            "GET",
            &format!("/v1/admin/reconciliations/{}/{}", via.id(), via.today()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (stored["status"].as_str(), stored["findings"].clone()),
        (Some("done"), json!([]))
    );
}

async fn a_clean_alipay_day_finds_nothing_and_posts_each_fee_once(backend: Backend) {
    a_clean_day_finds_nothing_and_posts_each_fee_once(backend, Via::Alipay).await;
}

async fn a_clean_wechatpay_day_finds_nothing_and_posts_each_fee_once(backend: Backend) {
    a_clean_day_finds_nothing_and_posts_each_fee_once(backend, Via::WechatPay).await;
}

async fn a_clean_carespay_day_finds_nothing_and_posts_each_fee_once(backend: Backend) {
    a_clean_day_finds_nothing_and_posts_each_fee_once(backend, Via::CaresPay).await;
}

async fn each_discrepancy_is_found_and_named(backend: Backend, via: Via) {
    let (shop, player) = shop_for(backend).await;
    let (price, fee) = via.price_and_fee();
    let mut refs = Vec::new();
    for name in ["rc-short", "rc-amount", "rc-refund", "rc-ok"] {
        let order_no = via.paid(&shop, &player, name).await;
        refs.push(payment_ref(&shop, &order_no).await);
    }
    let [short, changed, refunded, matched] = [&refs[0], &refs[1], &refs[2], &refs[3]];
    shop.http
        .put(shop.sim.url(&format!("/_control/statements/{}", via.id())))
        .json(&json!({
            "drop": [short],
            "amounts": { changed.clone(): price - 1 },
            "extra_payments": [{ "out_trade_no": "NEVER-SEEN-1", "amount_minor": price }],
            "extra_refunds": [{ "out_trade_no": refunded.clone(), "amount_minor": price / 2 }],
        }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();

    let summary = via.reconcile(&shop).await;
    let expected: BTreeSet<(String, String)> = [
        ("short", short.as_str()),
        ("amount_mismatch", changed.as_str()),
        ("long", "NEVER-SEEN-1"),
        ("refund_not_recorded", refunded.as_str()),
    ]
    .into_iter()
    .map(|(k, r)| (k.to_owned(), r.to_owned()))
    .collect();
    assert_eq!(kinds(&summary), expected, "{summary}");
    let mismatch = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "amount_mismatch")
        .unwrap();
    assert_eq!(
        (
            mismatch["statement_minor"].as_i64(),
            mismatch["local_minor"].as_i64()
        ),
        (Some(price - 1), Some(price))
    );
    // Only the lines that agree are matched, and only their fees posted.
    assert_eq!(summary["matched"], 2, "{summary}");
    assert!(!kinds(&summary).iter().any(|(_, r)| r == matched));
    assert_eq!(via.fees_posted(&shop).await, 2 * fee);
}

async fn each_discrepancy_in_an_alipay_statement_is_found_and_named(backend: Backend) {
    each_discrepancy_is_found_and_named(backend, Via::Alipay).await;
}

async fn each_discrepancy_in_a_wechatpay_statement_is_found_and_named(backend: Backend) {
    each_discrepancy_is_found_and_named(backend, Via::WechatPay).await;
}

async fn each_discrepancy_in_a_carespay_statement_is_found_and_named(backend: Backend) {
    each_discrepancy_is_found_and_named(backend, Via::CaresPay).await;
}

async fn a_lost_notification_is_settled_by_reconciliation_once(backend: Backend, via: Via) {
    let (shop, player) = shop_for(backend).await;
    let order_no = via.order(&shop, &player, "rc-lost").await;
    shop.set_faults(json!({ "drop_notifications": 1 })).await;
    via.pay(&shop, &order_no).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, detail) = shop
        .admin("GET", &format!("/v1/admin/orders/{order_no}"), None)
        .await;
    assert_eq!(
        detail["order"]["status"], "pending",
        "the notification was lost"
    );

    let summary = via.reconcile(&shop).await;
    let payment_ref = payment_ref(&shop, &order_no).await;
    assert_eq!(
        kinds(&summary),
        BTreeSet::from([("long_settled".to_owned(), payment_ref)]),
        "{summary}"
    );
    shop.wait_for_status(&order_no, "paid").await;
    // Again: already paid, nothing to settle, one order.paid event in all.
    let again = via.reconcile(&shop).await;
    assert_eq!(again["findings"], json!([]), "{again}");
    let paid_events = shop
        .count("SELECT CAST(COUNT(*) AS BIGINT) FROM outbox_events WHERE kind = 'order.paid'")
        .await;
    assert_eq!(paid_events, 1);
}

async fn an_alipay_payment_whose_notification_was_lost_is_settled_by_reconciliation_once(
    backend: Backend,
) {
    a_lost_notification_is_settled_by_reconciliation_once(backend, Via::Alipay).await;
}

async fn a_wechatpay_payment_whose_notification_was_lost_is_settled_by_reconciliation_once(
    backend: Backend,
) {
    a_lost_notification_is_settled_by_reconciliation_once(backend, Via::WechatPay).await;
}

async fn a_matched_fee_missing_from_the_books_is_caught_by_the_check(backend: Backend) {
    let (mut shop, player) = shop_for(backend).await;
    Via::Alipay.paid(&shop, &player, "rc-fee").await;
    Via::Alipay.reconcile(&shop).await;
    let (_, clean) = shop.admin("GET", "/v1/admin/ledger/check", None).await;
    assert_eq!(
        (
            clean["violations"].clone(),
            clean["statement_fees"].as_i64()
        ),
        (json!([]), Some(1))
    );
    // A bug that forgets to post the fees of a statement.
    sqlx::query("DELETE FROM ledger_entries WHERE kind = 'fee'")
        .execute(shop.store().pool())
        .await
        .unwrap();
    let (_, report) = shop.admin("GET", "/v1/admin/ledger/check", None).await;
    let broken: Vec<&str> = report["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["invariant"].as_str().unwrap())
        .collect();
    assert_eq!(broken, ["fee_not_posted"], "{report}");
    shop.db.books_broken_on_purpose();
}

async fn a_clean_day_of_a_thousand_card_purchases_and_their_refunds_has_no_false_findings(
    backend: Backend,
) {
    const PURCHASES: usize = 1000;
    let (shop, player) = shop_for(backend).await;
    let mut orders = Vec::with_capacity(PURCHASES);
    for chunk in (0..PURCHASES).collect::<Vec<_>>().chunks(50) {
        let names: Vec<String> = chunk.iter().map(|i| format!("rc-day-{i}")).collect();
        let paid =
            futures::future::join_all(names.iter().map(|name| shop.paid_card_order(&player, name)))
                .await;
        orders.extend(paid);
    }
    // One in ten refunded, in part or whole.
    for (i, order_no) in orders.iter().enumerate().filter(|(i, _)| i % 10 == 0) {
        let amount = if i % 20 == 0 { 99 } else { 33 };
        let refund = shop
            .call(
                "POST",
                &format!("/v1/orders/{order_no}/refunds"),
                Some(json!({ "amount_minor": amount })),
            )
            .await;
        assert_eq!(refund.body["status"], "succeeded", "{}", refund.body);
    }
    let summary = Via::CaresPay.reconcile(&shop).await;
    assert_eq!(summary["findings"], json!([]), "no false findings");
    let lines = PURCHASES + PURCHASES / 10;
    assert_eq!(
        (summary["lines"].as_u64(), summary["matched"].as_u64()),
        (Some(lines as u64), Some(lines as u64))
    );
    // 3% of 0.99 USD on every purchase; CaresPay gives no fee back on a refund.
    assert_eq!(Via::CaresPay.fees_posted(&shop).await, 3 * PURCHASES as i64);
}

/// Paid just before midnight here, listed just after it there: today's statement lacks the
/// payment (a `short`, for now), tomorrow's lists it, which resolves today's finding; running
/// today again then finds nothing, and neither day counts an open finding.
async fn a_payment_the_channel_lists_on_the_next_day_is_not_short_on_either(backend: Backend) {
    let via = Via::Alipay;
    let (shop, player) = shop_for(backend).await;
    let (price, _) = via.price_and_fee();
    let order_no = via.paid(&shop, &player, "rc-midnight").await;
    let late = payment_ref(&shop, &order_no).await;
    let today = via.today();
    let tomorrow = coffer::reconcile::Day::parse(&today)
        .unwrap()
        .plus(1)
        .to_string();

    via.edit_statements(&shop, json!({ "drop": [late] })).await;
    let first = via.reconcile_day(&shop, &today).await;
    assert_eq!(
        kinds(&first),
        BTreeSet::from([("short".to_owned(), late.clone())]),
        "{first}"
    );

    via.edit_statements(
        &shop,
        json!({ "extra_payments": [{ "out_trade_no": late, "amount_minor": price }] }),
    )
    .await;
    let next = via.reconcile_day(&shop, &tomorrow).await;
    assert_eq!(next["findings"], json!([]), "{next}");
    assert_eq!(next["matched"], 1, "{next}");

    let (_, stored) = shop
        .admin(
            "GET",
            &format!("/v1/admin/reconciliations/alipay/{today}"),
            None,
        )
        .await;
    let short = &stored["findings"][0];
    assert_eq!(short["kind"], "short", "{stored}");
    assert!(short["resolved_at_ms"].is_i64(), "{stored}");
    assert_eq!(
        short["resolution"],
        format!("listed on the statement of {tomorrow}")
    );
    let (_, report) = shop
        .admin(
            "GET",
            &format!("/v1/admin/reports/reconciliations?from={today}&to={tomorrow}"),
            None,
        )
        .await;
    let open: Vec<i64> = report
        .as_array()
        .unwrap_or_else(|| panic!("{report}"))
        .iter()
        .map(|d| d["findings"].as_i64().unwrap())
        .collect();
    assert_eq!(open, [0, 0], "{report}");

    via.edit_statements(&shop, json!({ "drop": [late] })).await;
    let again = via.reconcile_day(&shop, &today).await;
    assert_eq!(again["findings"], json!([]), "{again}");
}
