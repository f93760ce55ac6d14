//! What the admission webhook records: the reviews answered and their duration, the API lookups
//! its budget refused.

use super::{AdmissionLabels, LookupRefusal, LookupRefusalLabels, Metrics, WebhookLabels};

impl Metrics {
    pub fn admission(&self, labels: AdmissionLabels, took: std::time::Duration) {
        self.admission_duration
            .get_or_create(&WebhookLabels {
                webhook: labels.webhook,
            })
            .observe(took.as_secs_f64());
        self.admission_requests.get_or_create(&labels).inc();
    }

    /// An API lookup the webhook's budget refused.
    pub fn lookup_refused(&self, reason: LookupRefusal) {
        self.admission_lookups_refused
            .get_or_create(&LookupRefusalLabels { reason })
            .inc();
    }
}
