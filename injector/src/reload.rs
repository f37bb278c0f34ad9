//! Following the files the webhook serves from: its certificate and key, and the trust
//! anchors it gives proxies. Each is read again on every tick; a change that loads is used
//! from then on, one that does not is logged and the last good one kept.

use crate::{CertFiles, InjectFlags, Webhook};
use std::{sync::Arc, time::Duration};
use weft_injector_patch::Injector;

/// What to follow.
pub struct Reloader {
    /// The serving certificate.
    pub certs: Arc<CertFiles>,
    /// The injection's flags; their trust anchors file is followed.
    pub flags: InjectFlags,
    /// The webhook whose injection is replaced when the anchors change.
    pub webhook: Arc<Webhook>,
}

impl Reloader {
    /// Checks every file once; returns whether the certificate or the anchors changed.
    pub fn poll(&self) -> bool {
        let cert = match self.certs.poll() {
            Ok(changed) => changed,
            Err(e) => {
                tracing::warn!("keeping the current certificate: {e}");
                false
            }
        };
        if self.flags.trust_anchors.is_none() {
            return cert;
        }
        let anchors = match self.flags.config() {
            Ok(config)
                if config.trust_anchors != self.webhook.injector().config().trust_anchors =>
            {
                tracing::info!("the trust anchors changed; new pods get the new ones");
                self.webhook.set_injector(Injector::new(config));
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::warn!("keeping the current trust anchors: {e}");
                false
            }
        };
        cert || anchors
    }

    /// Polls every `every` until dropped.
    pub async fn run(self, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            self.poll();
        }
    }
}
