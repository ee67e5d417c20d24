//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations and the
//! wire types' `ToSchema` derives; served at `/openapi.json`.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::api::{ErrorBody, ErrorDetail};

/// The document's fixed parts; the paths and their schemas come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "vcm",
        description = "Temporary Kubernetes clusters for CI/CD, on demand. Every error body is \
            `{\"error\":{\"code\",\"message\",\"request_id\"}}`."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, ErrorDetail)),
    tags((name = "clusters", description = "Virtual clusters and their credentials")),
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the paths refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("vcm_<64 hex characters>")
            .description(Some("An API token (`vcm token create`)"))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}
