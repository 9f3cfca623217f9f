//! The documented example configuration and the demo configuration stay valid.

use coffer::config::Config;

#[test]
fn example_configuration_parses_and_equals_the_defaults() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/coffer.toml"
    ))
    .unwrap();
    let example = Config::from_toml(&text).unwrap();
    let defaults = serde_json::to_value(Config::default()).unwrap();
    assert_eq!(
        serde_json::to_value(example).unwrap(),
        defaults,
        "examples/coffer.toml documents the defaults"
    );
}

#[test]
fn example_configuration_documents_every_option() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/coffer.toml"
    ))
    .unwrap();
    let defaults = serde_json::to_value(Config::default()).unwrap();
    let mut missing = Vec::new();
    let mut stack = vec![(String::new(), &defaults)];
    while let Some((prefix, value)) = stack.pop() {
        let Some(table) = value.as_object() else {
            continue;
        };
        for (key, value) in table {
            let path = format!("{prefix}{key}");
            if value.is_object() && !matches!(key.as_str(), "channels") {
                stack.push((format!("{path}."), value));
            } else if !text.contains(&format!("\n{key} = "))
                && !matches!(key.as_str(), "tokens" | "channels")
            {
                missing.push(path);
            }
        }
    }
    assert!(missing.is_empty(), "undocumented options: {missing:?}");
}

#[test]
fn demo_configuration_parses() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/demo.toml"
    ))
    .unwrap();
    let demo = Config::from_toml(&text).unwrap();
    assert!(demo.server.listen.ip().is_loopback());
    assert_eq!(demo.admin.tokens.len(), 1);
    for channel in ["carespay", "alipay", "wechatpay", "testpay"] {
        assert!(demo.channels.contains_key(channel), "{channel}");
    }
    // The demo's constants are the simulator's.
    let wechat = &demo.channels["wechatpay"].settings;
    assert_eq!(
        wechat["platform-serial"],
        coffer_sim::keys::WECHAT_PLATFORM_SERIAL
    );
    assert_eq!(wechat["mch-id"], coffer_sim::wechatpay::MCH_ID);
    assert_eq!(
        wechat["merchant-serial"],
        coffer_sim::wechatpay::MERCHANT_SERIAL
    );
    assert_eq!(
        demo.channels["alipay"].settings["app-id"],
        coffer_sim::alipay::APP_ID
    );
    assert_eq!(
        demo.channels["carespay"].settings["merchant-no"],
        coffer_sim::carespay::MERCHANT_NO
    );
}
