//! The house rules that a reader of the source can check: each table belongs to one area, and
//! only that area names it in SQL. Another area calls the owner's functions, or reads a view
//! the owner publishes (migrations/*/0005_published_views.sql). Only the channels area names
//! the plugin contract's records. See docs/architecture.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every table of the schema, by the area (a folder of `host/src`) that owns it.
const TABLE_OWNERS: &[(&str, &[&str])] = &[
    ("games", &["games", "game_api_keys", "used_signatures"]),
    ("players", &["players", "player_sessions"]),
    ("catalog", &["skus", "store_products", "purchase_counts"]),
    (
        "orders",
        &[
            "orders",
            "order_transitions",
            "payment_attempts",
            "idempotency_keys",
            "payment_conflicts",
            "refunds",
        ],
    ),
    ("fulfillment", &["outbox_events", "delivery_attempts"]),
    ("legacy", &["legacy_profiles", "legacy_payment_records"]),
    ("store", &["instances"]),
    ("stores", &["store_purchases"]),
    ("ledger", &["ledger_entries"]),
    (
        "reconcile",
        &[
            "reconciliations",
            "statement_lines",
            "reconciliation_findings",
        ],
    ),
];

/// The views areas publish for others to read (never to write).
const PUBLISHED_VIEWS: &[(&str, &[&str])] = &[
    ("players", &["player_directory"]),
    ("ledger", &["ledger_postings"]),
    ("reconcile", &["matched_statement_fees"]),
    (
        "orders",
        &[
            "paid_orders",
            "paid_attempts",
            "succeeded_refunds",
            "attempt_directory",
            "refund_directory",
            "order_facts",
            "attempt_timings",
        ],
    ),
];

/// The SQL words after which a table is named; the code writes SQL keywords in capitals.
const READ_WORDS: &[&str] = &["FROM", "JOIN"];
const WRITE_WORDS: &[&str] = &["INTO", "UPDATE", "TABLE"];

fn host_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The names after `CREATE <kind>` in the SQLite migrations.
fn created(kind: &str) -> BTreeSet<String> {
    let dir = host_dir().join("../migrations/sqlite");
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("the migrations folder") {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let words: Vec<&str> = text.split_whitespace().collect();
        for pair in words.windows(3) {
            if pair[0] == "CREATE" && pair[1] == kind {
                names.insert(pair[2].trim_end_matches('(').to_owned());
            }
        }
    }
    names
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The area of a source file: its first folder under `src`, or the file's own name.
fn area_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_owned()
}

/// `(word, name)` for every SQL keyword of `words` followed by an identifier in `text`.
fn named_after<'t>(text: &'t str, words: &[&str]) -> Vec<(&'t str, &'t str)> {
    let tokens: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|t| !t.is_empty())
        .collect();
    tokens
        .windows(2)
        .filter(|pair| words.contains(&pair[0]))
        .map(|pair| (pair[0], pair[1]))
        .collect()
}

fn owners(map: &[(&str, &[&str])]) -> BTreeMap<String, String> {
    map.iter()
        .flat_map(|(area, names)| names.iter().map(move |n| (n.to_string(), area.to_string())))
        .collect()
}

#[test]
fn every_table_and_view_of_the_schema_has_one_owner() {
    let tables = owners(TABLE_OWNERS);
    let views = owners(PUBLISHED_VIEWS);
    let schema_tables = created("TABLE");
    let schema_views = created("VIEW");
    let listed: BTreeSet<String> = tables.keys().cloned().collect();
    assert_eq!(
        listed, schema_tables,
        "TABLE_OWNERS must list exactly the tables the migrations create"
    );
    let listed: BTreeSet<String> = views.keys().cloned().collect();
    assert_eq!(
        listed, schema_views,
        "PUBLISHED_VIEWS must list exactly the views the migrations create"
    );
    let counted: usize = TABLE_OWNERS.iter().map(|(_, names)| names.len()).sum();
    assert_eq!(counted, tables.len(), "a table is listed under two areas");
}

#[test]
fn only_its_area_names_a_table_in_sql() {
    let tables = owners(TABLE_OWNERS);
    let views = owners(PUBLISHED_VIEWS);
    let src = host_dir().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "the scan found the sources");
    let mut trespasses = Vec::new();
    let mut owners_seen = BTreeSet::new();
    for file in &files {
        let area = area_of(&src, file);
        let text = std::fs::read_to_string(file).unwrap();
        let shown = file.strip_prefix(&src).unwrap().display();
        for (word, name) in named_after(&text, &[READ_WORDS, WRITE_WORDS].concat()) {
            if let Some(owner) = tables.get(name) {
                if *owner == area {
                    owners_seen.insert(name.to_owned());
                } else {
                    trespasses.push(format!("{shown}: {word} {name} (owned by {owner})"));
                }
            } else if let Some(publisher) = views.get(name)
                && WRITE_WORDS.contains(&word)
                && *publisher != area
            {
                trespasses.push(format!("{shown}: {word} {name} (a view of {publisher})"));
            }
        }
    }
    assert!(
        trespasses.is_empty(),
        "areas naming tables they do not own (call the owner's function or read its view):\n{}",
        trespasses.join("\n")
    );
    // The scan sees SQL at all: every owner names its own tables somewhere.
    assert!(
        owners_seen.contains("orders") && owners_seen.contains("players"),
        "the scan found no SQL; did the SQL style change?"
    );
}

/// The plugin contract's generated records, named outside the channels area.
fn contract_names_outside_channels() -> Vec<String> {
    let src = host_dir().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for file in &files {
        if area_of(&src, file) == "channels" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.contains("coffer_plugin_runtime::contract") {
                let shown = file.strip_prefix(&src).unwrap().display();
                found.push(format!("{shown}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn only_the_channels_area_speaks_the_plugin_contract() {
    let found = contract_names_outside_channels();
    assert!(
        found.is_empty(),
        "the plugin contract's records are converted in channels/contract.rs; other areas use \
         the types of channels/model.rs:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_scan_sees_reads_and_writes() {
    let found = named_after(
        "sqlx::query(\"SELECT id FROM players p JOIN games g\"); \"INSERT INTO orders (a)\"",
        &[READ_WORDS, WRITE_WORDS].concat(),
    );
    assert_eq!(
        found,
        [("FROM", "players"), ("JOIN", "games"), ("INTO", "orders")]
    );
}

/// A migration's statements with comments and spacing gone, and the two known differences
/// between the backends written one way: SQLite's flags are `INTEGER` (sqlx's `Any` driver
/// cannot read its `BOOLEAN`) and its generated ids `INTEGER PRIMARY KEY AUTOINCREMENT`.
fn normalized_migration(sql: &str, sqlite: bool) -> String {
    let text: String = sql
        .lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" ");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if sqlite {
        text.replace(
            "INTEGER PRIMARY KEY AUTOINCREMENT",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        )
    } else {
        text.replace("BOOLEAN", "INTEGER")
    }
}

fn migration_files(backend: &str) -> BTreeMap<String, String> {
    let dir = host_dir().join("../migrations").join(backend);
    std::fs::read_dir(&dir)
        .expect("the migrations folder")
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

#[test]
fn sqlite_and_postgres_migrations_hold_the_same_schema() {
    let sqlite = migration_files("sqlite");
    let postgres = migration_files("postgres");
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        postgres.keys().collect::<Vec<_>>(),
        "every migration exists for both backends, with the same number and name"
    );
    for (name, sql) in &sqlite {
        assert_eq!(
            normalized_migration(sql, true),
            normalized_migration(&postgres[name], false),
            "{name} differs between the backends beyond the known type differences"
        );
    }
}

#[test]
fn the_wit_package_version_is_the_contract_version_of_the_host_and_the_sdk() {
    let read = |path: &str| std::fs::read_to_string(host_dir().join(path)).unwrap();
    let wit = read("../wit/channel.wit");
    let package = wit
        .lines()
        .find_map(|line| line.trim().strip_prefix("package coffer:channel@"))
        .map(|version| version.trim_end_matches(';'));
    assert_eq!(package, Some(coffer_plugin_runtime::CONTRACT_VERSION));
    let sdk = read("../plugins/sdk/src/lib.rs");
    let sdk_version = sdk
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("pub const CONTRACT_VERSION: &str = \"")
        })
        .map(|version| version.trim_end_matches("\";"));
    assert_eq!(sdk_version, Some(coffer_plugin_runtime::CONTRACT_VERSION));
}

/// Every frozen snapshot `wit/since_v<version>/` holds that version's package, the host loads
/// it, and the host loads no version without a snapshot (or the newest WIT).
#[test]
fn every_contract_version_the_host_loads_has_its_frozen_snapshot() {
    let mut snapshots = BTreeSet::new();
    for entry in std::fs::read_dir(host_dir().join("../wit")).unwrap() {
        let path = entry.unwrap().path();
        let Some(version) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("since_v"))
            .map(str::to_owned)
        else {
            continue;
        };
        let wit = std::fs::read_to_string(path.join("channel.wit")).unwrap();
        assert!(
            wit.contains(&format!("package coffer:channel@{version};")),
            "{} holds another version",
            path.display()
        );
        snapshots.insert(version);
    }
    let loaded: BTreeSet<String> = coffer_plugin_runtime::SUPPORTED_CONTRACT_VERSIONS
        .iter()
        .filter(|v| **v != coffer_plugin_runtime::CONTRACT_VERSION)
        .map(|v| v.to_string())
        .collect();
    assert_eq!(snapshots, loaded);
    assert!(snapshots.contains("0.1.0"));
}
