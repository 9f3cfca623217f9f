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
fn demo_configuration_parses() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/demo.toml"
    ))
    .unwrap();
    let demo = Config::from_toml(&text).unwrap();
    assert!(demo.server.listen.ip().is_loopback());
    assert_eq!(demo.admin.tokens.len(), 1);
    assert!(demo.channels.contains_key("testpay"));
}
