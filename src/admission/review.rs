//! Reading an AdmissionReview from raw bytes, with errors that say what is wrong.

use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionReview};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ReviewError {
    #[error("not an AdmissionReview: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the AdmissionReview has no request")]
    NoRequest,
}

pub fn parse(body: &[u8]) -> Result<AdmissionRequest<DynamicObject>, ReviewError> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body)?;
    review.try_into().map_err(|_| ReviewError::NoRequest)
}
