//! `/v1/admin/reports/*`: revenue, payments, refunds and reconciliation for a period, as JSON
//! or (`format=csv`) CSV.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::api::problem::Problem;
use crate::app::AppState;
use crate::reconcile::Day;
use crate::reports::{self, CsvRow, GroupBy, Period};

/// The query every report takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// First day, `YYYY-MM-DD`; today when absent.
    #[serde(default)]
    pub from: Option<String>,
    /// Last day, inclusive; `from` when absent.
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub game: Option<String>,
    /// Hours east of UTC that days are cut at; 0 by default.
    #[serde(default)]
    pub utc_offset_hours: i32,
    #[serde(default)]
    pub group_by: GroupBy,
    #[serde(default)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Csv,
}

impl ReportQuery {
    fn period(&self) -> Result<Period, Problem> {
        let day = |text: &str| {
            Day::parse(text)
                .ok_or_else(|| Problem::bad_request(format!("{text:?} is not a day (YYYY-MM-DD)")))
        };
        if !(-12..=14).contains(&self.utc_offset_hours) {
            return Err(Problem::bad_request(
                "utc_offset_hours is between -12 and 14",
            ));
        }
        let offset_s = self.utc_offset_hours * 3600;
        let first = match &self.from {
            Some(from) => day(from)?,
            None => Day::of(crate::store::now_ms(), offset_s),
        };
        let last = match &self.to {
            Some(to) => day(to)?,
            None => first,
        };
        if last < first {
            return Err(Problem::bad_request("`to` is before `from`"));
        }
        Ok(Period {
            from_ms: first.start_ms(offset_s),
            to_ms: last.end_ms(offset_s),
            game: self.game.clone().filter(|g| !g.is_empty()),
            offset_s,
        })
    }
}

fn answer<T: Serialize + CsvRow>(rows: Vec<T>, format: Format) -> Response {
    match format {
        Format::Json => Json(rows).into_response(),
        Format::Csv => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            reports::to_csv(&rows),
        )
            .into_response(),
    }
}

fn failed(error: sqlx::Error) -> Problem {
    Problem::internal(&error)
}

/// `GET /v1/admin/reports/revenue?from=&to=&game=&group_by=channel|sku|region|day&format=`.
pub async fn revenue(
    State(state): State<AppState>,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let rows = reports::revenue(&state.store, &query.period()?, query.group_by)
        .await
        .map_err(failed)?;
    Ok(answer(rows, query.format))
}

/// `GET /v1/admin/reports/payments`: success rate and time to pay per channel.
pub async fn payments(
    State(state): State<AppState>,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let rows = reports::payments(&state.store, &query.period()?)
        .await
        .map_err(failed)?;
    Ok(answer(rows, query.format))
}

/// `GET /v1/admin/reports/refunds`: refund rate per game and currency.
pub async fn refunds(
    State(state): State<AppState>,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let rows = reports::refunds(&state.store, &query.period()?)
        .await
        .map_err(failed)?;
    Ok(answer(rows, query.format))
}

/// `GET /v1/admin/reports/reconciliations`: each channel's runs in the period.
pub async fn reconciliations(
    State(state): State<AppState>,
    query: Result<Query<ReportQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let rows = reports::reconciliations(&state.store, &query.period()?)
        .await
        .map_err(failed)?;
    Ok(answer(rows, query.format))
}
