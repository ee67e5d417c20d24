//! The gateway's audit records: one log line per request when its answer starts, and one more
//! when a stream ends.

use std::time::Instant;

use axum::{http::StatusCode, response::Response};

use super::{request_info::RequestInfo, status_response};
use crate::{error::Error, http::ApiError};

/// One gateway request's audit record: logged when its answer starts, and for a stream again
/// when it ends.
pub(super) struct Record {
    pub id: String,
    pub info: RequestInfo,
    pub started: Instant,
    pub principal: String,
    pub credential: Option<String>,
}

impl Record {
    pub(super) fn log(&self, status: StatusCode) {
        let i = &self.info;
        tracing::info!(
            target: "vcm::audit",
            kind = "gateway",
            principal = %self.principal,
            credential = self.credential.as_deref().unwrap_or_default(),
            cluster = %self.id,
            verb = %i.verb,
            resource = %i.resource,
            namespace = %i.namespace,
            name = %i.name,
            status = status.as_u16(),
            duration_ms = self.started.elapsed().as_millis() as u64,
            "gateway request"
        );
    }

    pub(super) fn refused(self, e: Error) -> Response {
        let response = status_response(ApiError::from(e));
        self.log(response.status());
        response
    }
}

/// The end of a stream's record: logged when the stream's body or bridge is dropped.
pub(super) struct Ended(pub Record);

impl Drop for Ended {
    fn drop(&mut self) {
        let r = &self.0;
        tracing::info!(
            target: "vcm::audit",
            kind = "gateway",
            principal = %r.principal,
            cluster = %r.id,
            verb = %r.info.verb,
            resource = %r.info.resource,
            namespace = %r.info.namespace,
            name = %r.info.name,
            duration_ms = r.started.elapsed().as_millis() as u64,
            "gateway stream ended"
        );
    }
}
