use super::*;
use coffer_money::Currency;

fn price(region: Option<&str>, currency: &str, amount_minor: i64) -> PriceSpec {
    PriceSpec {
        region: region.map(|r| crate::games::Region::parse(r).unwrap()),
        currency: currency.into(),
        amount_minor,
    }
}

fn gems() -> SkuSpec {
    SkuSpec {
        code: "gems-100".into(),
        kind: SkuKind::CurrencyPack,
        title: "100 Gems".into(),
        description: String::new(),
        grants: vec![Grant {
            item: "gem".into(),
            quantity: 100,
        }],
        prices: vec![
            price(Some("CN"), "CNY", 600),
            price(Some("JP"), "JPY", 120),
            price(Some("HK"), "HKD", 800),
            price(Some("HK"), "USD", 99),
            price(None, "USD", 99),
        ],
        period_days: None,
        stock_total: None,
        per_player_limit: None,
        sale_starts_at: None,
        sale_ends_at: None,
        enabled: true,
        store_products: vec![],
    }
}

fn region(code: &str) -> crate::games::Region {
    crate::games::Region::parse(code).unwrap()
}

#[test]
fn regional_prices_win_over_the_fallback() {
    let sku = gems();
    let cny = sku.price_for(&region("CN"), None).unwrap();
    assert_eq!((cny.minor(), cny.currency().code()), (600, "CNY"));
    let jpy = sku.price_for(&region("JP"), None).unwrap();
    assert_eq!((jpy.minor(), jpy.to_decimal().as_str()), (120, "120"));
    let elsewhere = sku.price_for(&region("DE"), None).unwrap();
    assert_eq!(
        (elsewhere.minor(), elsewhere.currency().code()),
        (99, "USD")
    );
}

#[test]
fn ambiguous_or_missing_currencies_are_refused() {
    let sku = gems();
    assert!(
        sku.price_for(&region("HK"), None).is_err(),
        "two currencies in HK"
    );
    let usd = Currency::parse("USD").unwrap();
    assert_eq!(sku.price_for(&region("HK"), Some(usd)).unwrap().minor(), 99);
    let eur = Currency::parse("EUR").unwrap();
    assert!(sku.price_for(&region("CN"), Some(eur)).is_err());
    let mut cn_only = gems();
    cn_only.prices.retain(|p| p.region.is_some());
    assert!(cn_only.price_for(&region("DE"), None).is_err());
}

#[test]
fn specs_are_validated() {
    assert!(gems().validate().is_ok());
    let mut bad = gems();
    bad.prices.push(price(Some("CN"), "CNY", 700));
    assert!(bad.validate().is_err(), "duplicate region and currency");
    let mut bad = gems();
    bad.prices[0].amount_minor = 0;
    assert!(bad.validate().is_err(), "free");
    let mut bad = gems();
    bad.prices[0].currency = "XXY".into();
    assert!(bad.validate().is_err(), "unknown currency");
    let mut bad = gems();
    bad.kind = SkuKind::Subscription;
    assert!(bad.validate().is_err(), "subscription without a period");
    bad.period_days = Some(30);
    assert!(bad.validate().is_ok());
    let mut bad = gems();
    bad.grants[0].quantity = -1;
    assert!(bad.validate().is_err());
    let mut bad = gems();
    (bad.sale_starts_at, bad.sale_ends_at) = (Some(10), Some(10));
    assert!(bad.validate().is_err());
    let mut bad = gems();
    bad.code = "a/b".into();
    assert!(bad.validate().is_err());
}

#[test]
fn sale_windows_and_one_time_limits() {
    let mut sku = gems();
    (sku.sale_starts_at, sku.sale_ends_at) = (Some(1_000), Some(2_000));
    assert!(!sku.on_sale_at(999));
    assert!(sku.on_sale_at(1_000));
    assert!(!sku.on_sale_at(2_000));
    sku.enabled = false;
    assert!(!sku.on_sale_at(1_500));
    let mut once = gems();
    once.kind = SkuKind::OneTime;
    once.per_player_limit = Some(5);
    assert_eq!(once.effective_limit(), Some(1));
}
