//! `coffer import-legacy`: an old `game_db` on the machine's MariaDB (created by the test,
//! with the old services' own table definitions), imported into SQLite and PostgreSQL.

use crate::legacy;
use crate::legacy::{json_call, legacy_shop};
use crate::shop::{Backend, VIEWER_TOKEN};
use coffer::games::GameId;
use coffer::legacy::import::{ImportReport, ImportSource, run};
use serde_json::json;
use sqlx::Connection;
use sqlx::mysql::MySqlConnection;

both_backends!(the_old_database_is_imported_once);

fn mysql_base() -> String {
    std::env::var("COFFER_TEST_MYSQL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// A `game_db` of its own, dropped when the test ends (unless it panics first).
struct OldDatabase {
    name: String,
}

impl OldDatabase {
    async fn create(backend: Backend) -> Self {
        let name = format!(
            "coffer_legacy_{}_{}",
            std::process::id(),
            match backend {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgres",
            }
        );
        let mut admin = MySqlConnection::connect(&mysql_base()).await.unwrap();
        for statement in [
            format!("DROP DATABASE IF EXISTS {name}"),
            format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut admin)
                .await
                .unwrap();
        }
        let mut old = MySqlConnection::connect(&format!("{}/{name}", mysql_base()))
            .await
            .unwrap();
        // The old account service's own definitions.
        sqlx::raw_sql(
            "CREATE TABLE users (
                id INT AUTO_INCREMENT PRIMARY KEY,
                pid VARCHAR(50) UNIQUE NOT NULL,
                name VARCHAR(100) NOT NULL,
                password VARCHAR(100) NOT NULL,
                level INT DEFAULT 1,
                gold INT DEFAULT 500,
                icon VARCHAR(100) DEFAULT '1',
                created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
            CREATE TABLE payment_records (
                id INT AUTO_INCREMENT PRIMARY KEY,
                user_id VARCHAR(50) NOT NULL,
                user_name VARCHAR(100) NOT NULL,
                amount DECIMAL(10,2) NOT NULL,
                order_no VARCHAR(100) NOT NULL UNIQUE,
                pay_time DATETIME NOT NULL,
                raw_response JSON DEFAULT NULL,
                product_id VARCHAR(20) NULL,
                product_info TEXT NULL,
                product_details JSON NULL,
                created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
                updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
            INSERT INTO users (id, pid, name, password, level, gold, icon) VALUES
                (7, 'p7', '七号', 'plain-pass-7', 3, 1200, '4'),
                (8, 'p8', 'Eight', '123456', 1, 500, '1'),
                (9, 'has space', 'Nine', 'whatever', 1, 500, '1');
            INSERT INTO payment_records (id, user_id, user_name, amount, order_no, pay_time,
                raw_response, product_id, product_info, product_details) VALUES
                (1, 'p7', '七号', 8.00, '1001404732000616', '2025-07-21 18:17:30',
                 '{\"code\":\"P0001\",\"cardNum\":\"secret\"}', 'itemBtn1', '钻石礼包-12钻石',
                 '{\"diamonds\":12}'),
                (2, 'p8', 'Eight', 20.00, '1001401111100002', '2025-07-22 09:00:00',
                 NULL, NULL, NULL, NULL),
                (3, 'gone', 'Deleted', 40.00, '1001402222200003', '2025-07-23 09:00:00',
                 NULL, NULL, NULL, NULL);",
        )
        .execute(&mut old)
        .await
        .unwrap();
        Self { name }
    }

    fn url(&self) -> String {
        format!("{}/{}", mysql_base(), self.name)
    }

    async fn drop(self) {
        let mut admin = MySqlConnection::connect(&mysql_base()).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {}",
            self.name
        )))
        .execute(&mut admin)
        .await
        .unwrap();
    }
}

async fn the_old_database_is_imported_once(backend: Backend) {
    let old = OldDatabase::create(backend).await;
    let shop = legacy_shop(backend).await;
    // Someone registered the old player p8's pid before the import: never merged into.
    let (_, squatter) = json_call(
        &shop,
        "POST",
        "/api/auth/register",
        Some(json!({ "pid": "p8", "name": "Not Eight", "password": "squatter-pass" })),
        None,
    )
    .await;
    assert_eq!(squatter["success"], true, "{squatter}");
    let state = &shop.running.as_ref().unwrap().state;
    let game = GameId::parse("star-knights").unwrap();
    let source = ImportSource {
        url: old.url(),
        time_zone: "+08:00".into(),
    };
    let report = run(&state.store, &state.players, &game, &source)
        .await
        .unwrap();
    assert_eq!(
        report,
        ImportReport {
            players_imported: 1,
            players_present: 0,
            players_refused: 1,
            players_conflicting: 1,
            records_imported: 1,
            records_present: 0,
            records_conflicting: 1,
            records_orphaned: 1,
        }
    );

    // The old plaintext password now logs in against an Argon2id hash; the profile is kept.
    let (_, login) = json_call(
        &shop,
        "POST",
        "/api/auth/login",
        Some(json!({ "pid": "p7", "password": "plain-pass-7" })),
        None,
    )
    .await;
    assert_eq!(login["success"], true, "{login}");
    assert_eq!(
        login["data"],
        json!({ "id": 7, "pid": "p7", "name": "七号", "level": 3, "gold": 1200, "icon": "4" })
    );
    let (_, old_p8) = json_call(
        &shop,
        "POST",
        "/api/auth/login",
        Some(json!({ "pid": "p8", "password": "123456" })),
        None,
    )
    .await;
    assert_eq!(
        old_p8["success"], false,
        "not merged into the newer account"
    );
    let hashes: Vec<String> =
        sqlx::query_scalar("SELECT password_hash FROM players WHERE username = 'p7'")
            .fetch_all(state.store.pool())
            .await
            .unwrap();
    assert!(
        hashes.iter().all(|h| h.starts_with("$argon2id$")),
        "{hashes:?}"
    );

    // The old records, listed the old way; the raw channel response stayed behind.
    let (_, all) = json_call(&shop, "GET", "/api/payments/all", None, Some(VIEWER_TOKEN)).await;
    let rows = all["data"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{all}");
    assert!(
        !all.to_string().contains("1001401111100002"),
        "p8's record left out"
    );
    let first = rows
        .iter()
        .find(|r| r["order_no"] == "1001404732000616")
        .unwrap();
    assert_eq!(first["amount"], "8.00");
    assert_eq!(first["user_id"], "p7");
    assert_eq!(first["pay_time"], "2025-07-21T10:17:30.000Z");
    assert_eq!(first["product_info"], "钻石礼包-12钻石");
    assert_eq!(first["product_details"], "{\"diamonds\":12}");
    assert!(!all.to_string().contains("secret"));

    // Again: nothing twice.
    let again = run(&state.store, &state.players, &game, &source)
        .await
        .unwrap();
    assert_eq!(
        again,
        ImportReport {
            players_imported: 0,
            players_present: 1,
            players_refused: 1,
            players_conflicting: 1,
            records_imported: 0,
            records_present: 1,
            records_conflicting: 1,
            records_orphaned: 1,
        }
    );
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM legacy_payment_records")
            .await,
        1
    );

    // A bill paid in the old system is not paid again.
    let (status, answer) = legacy::pay(
        &shop,
        &legacy::pay_form(
            "1001404732000616",
            coffer_sim::carespay::CARD_APPROVED,
            "8",
            legacy::DIAMONDS_12,
        ),
        None,
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::CONFLICT, "{answer}");
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 0);

    // New players are numbered after the imported ones.
    let (_, registered) = json_call(
        &shop,
        "POST",
        "/api/auth/register",
        Some(json!({ "pid": "newcomer", "name": "New", "password": "long enough" })),
        None,
    )
    .await;
    let new_id = registered["data"]["id"].as_i64().unwrap();
    assert!(new_id > 7, "{registered}");
    let ids: Vec<i64> = sqlx::query_scalar("SELECT legacy_id FROM legacy_profiles")
        .fetch_all(state.store.pool())
        .await
        .unwrap();
    assert_eq!(ids.iter().filter(|id| **id == new_id).count(), 1);

    // A wrong time zone or an unreachable database is a clear error that imports nothing.
    let bad_zone = ImportSource {
        url: old.url(),
        time_zone: "Asia/Shanghai".into(),
    };
    assert!(
        run(&state.store, &state.players, &game, &bad_zone)
            .await
            .is_err()
    );
    shop.stop().await;
    old.drop().await;
}
