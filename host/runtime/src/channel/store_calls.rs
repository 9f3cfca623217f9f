//! The `store` export's calls, for app store channels. A plugin built before contract 0.3.0 has
//! no such export and answers every one of them `unsupported`.

use std::sync::atomic::Ordering;

use super::{CallClass, Channel, Sandbox};
use crate::bindings::types::*;
use crate::error::PluginError;
use crate::sandbox::within_budget;

impl Channel {
    /// The signed request asking the store about the purchase `proof` names.
    pub async fn build_store_lookup(&self, proof: &StoreProof) -> Result<HttpRequest, PluginError> {
        let http = call!(self, self.output_limit(), call_build_lookup(proof))?
            .map_err(PluginError::Channel)?;
        self.config.check_egress(&http.url)?;
        Ok(http)
    }

    /// The purchase the store's answer confirms, verified by the plugin. It must be the one
    /// asked about: the same proof token, at least one unit.
    pub async fn parse_store_lookup(
        &self,
        proof: &StoreProof,
        response: &HttpResponse,
    ) -> Result<StorePurchase, PluginError> {
        let purchase = call!(
            self,
            self.output_limit(),
            call_parse_lookup(proof, response)
        )?
        .map_err(PluginError::Channel)?;
        if purchase.token != proof.token {
            return Err(PluginError::ContractViolation(format!(
                "asked about store purchase {}, answered about {}",
                proof.token, purchase.token
            )));
        }
        check_purchase(&purchase)?;
        Ok(purchase)
    }

    /// The request acknowledging a delivered purchase, if the store wants one.
    pub async fn build_store_acknowledge(
        &self,
        purchase: &StorePurchase,
    ) -> Result<Option<HttpRequest>, PluginError> {
        let http = call!(self, self.output_limit(), call_build_acknowledge(purchase))?
            .map_err(PluginError::Channel)?;
        if let Some(http) = &http {
            self.config.check_egress(&http.url)?;
        }
        Ok(http)
    }

    /// Ok once the store took the acknowledgement.
    pub async fn parse_store_acknowledge_response(
        &self,
        purchase: &StorePurchase,
        response: &HttpResponse,
    ) -> Result<(), PluginError> {
        call!(
            self,
            self.output_limit(),
            call_parse_acknowledge_response(purchase, response)
        )?
        .map_err(PluginError::Channel)
    }

    /// The request for a page of purchases revoked since `since` (Unix seconds), if the store
    /// lists them.
    pub async fn build_revoked_request(
        &self,
        since: i64,
        page: Option<&str>,
    ) -> Result<Option<HttpRequest>, PluginError> {
        let http = call!(
            self,
            self.output_limit(),
            call_build_revoked_request(since, page)
        )?
        .map_err(PluginError::Channel)?;
        if let Some(http) = &http {
            self.config.check_egress(&http.url)?;
        }
        Ok(http)
    }

    /// A page of revoked purchases; it may be long, so it runs with a statement's limits.
    pub async fn parse_revoked_response(
        &self,
        response: &HttpResponse,
    ) -> Result<RevokedPage, PluginError> {
        let limit = self.engine.limits().statement_output_bytes;
        let page = call!(
            self,
            CallClass::Statement,
            limit,
            call_parse_revoked_response(response)
        )?
        .map_err(PluginError::Channel)?;
        page.purchases.iter().try_for_each(check_purchase)?;
        Ok(page)
    }

    /// The channel's access token while it is fresh; `None` when it has none or it expired.
    pub fn access_token(&self) -> Option<String> {
        self.access.current(self.engine.inner.clock.now_ms())
    }

    /// Whether this channel is known to use no access token (its plugin said so).
    pub fn needs_no_access_token(&self) -> bool {
        self.access.none_needed.load(Ordering::Relaxed)
    }

    /// Held while a token is fetched: concurrent callers wait, then find the fresh token.
    pub async fn access_token_refresh(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.access.refresh.lock().await
    }

    /// The request for a fresh access token. `None` (remembered) when the channel needs none.
    pub async fn build_access_token_request(&self) -> Result<Option<HttpRequest>, PluginError> {
        let http = call!(self, self.output_limit(), call_build_access_token_request())?
            .map_err(PluginError::Channel)?;
        match &http {
            Some(http) => self.config.check_egress(&http.url)?,
            None => self.access.none_needed.store(true, Ordering::Relaxed),
        }
        Ok(http)
    }

    /// Reads the token endpoint's answer and keeps the token for the calls that follow.
    pub async fn parse_access_token_response(
        &self,
        response: &HttpResponse,
    ) -> Result<(), PluginError> {
        let token = call!(
            self,
            self.output_limit(),
            call_parse_access_token_response(response)
        )?
        .map_err(PluginError::Channel)?;
        if token.token.is_empty() {
            return Err(PluginError::ContractViolation(
                "the access token is empty".into(),
            ));
        }
        let now = self.engine.inner.clock.now_ms();
        self.access.store(token.token, token.expires_in, now);
        Ok(())
    }

    /// Drops the token (the channel refused it): the next call fetches a new one.
    pub fn forget_access_token(&self) {
        self.access.forget();
    }
}

/// What every purchase a plugin reports must satisfy.
fn check_purchase(purchase: &StorePurchase) -> Result<(), PluginError> {
    let violation = |why: String| Err(PluginError::ContractViolation(why));
    if purchase.transaction_id.is_empty() {
        return violation("a store purchase without a transaction id".into());
    }
    if purchase.quantity == 0 {
        return violation(format!(
            "store purchase {} is of zero units",
            purchase.transaction_id
        ));
    }
    if purchase.price.as_ref().is_some_and(|p| p.minor < 0) {
        return violation(format!(
            "store purchase {} has a negative price",
            purchase.transaction_id
        ));
    }
    Ok(())
}
