//! The statuses every route can answer because of how it takes its input, added to the OpenAPI
//! document from what each operation declares.
//!
//! Why here and not in each `#[utoipa::path]`: these answers come from the extractors and the
//! edge, not from the handlers, and they apply to every operation that has the same kind of
//! input. Listing them by hand on 21 routes drifted (a route forgot 401, another 413), and a
//! caller generating a client from the document, or schemathesis checking the server against
//! it, saw statuses the document did not mention. What an operation declares decides:
//!
//! - **a bearer key** (`security(("bearer" = []))`, the `Operator` and `Tenant` extractors):
//!   401 (no key, a malformed header, an unknown or revoked key), 403 (the other kind of key:
//!   the operator key on a workspace route, a workspace key on an operator route) and 503 (the
//!   store did not answer while the key was checked);
//! - **a path id** (the `Path` extractor, then a look-up): 400 (not UTF-8 once decoded), 404
//!   (no such object in the caller's workspace) and 422 (a control character);
//! - **a JSON body** (the `Json` extractor and the edge): 400 (not JSON, not UTF-8), 408 (the
//!   body did not arrive within `http.body_read_timeout`), 413 (over the body limit), 415
//!   (not `application/json`) and 422 (a shape or value the route does not take).
//!
//! A status the handler documents itself keeps its own description (it says more); only
//! missing ones are added. Handler-specific answers (409, 502, 503 from a partner) stay in the
//! handlers' own `responses(...)`.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

/// Adds the input-driven statuses to every operation of `document`.
pub(crate) fn complete(document: &mut OpenApi) {
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            for (status, description) in implied_statuses(operation) {
                operation.responses.responses.entry(status.to_string()).or_insert_with(|| error_response(description));
            }
        }
    }
}

/// The statuses `operation`'s declared input implies, with what each means there.
fn implied_statuses(operation: &Operation) -> Vec<(u16, &'static str)> {
    let mut statuses = Vec::new();
    let keyed = operation.security.as_ref().is_some_and(|requirements| {
        requirements.iter().any(|r| *r != utoipa::openapi::security::SecurityRequirement::default())
    });
    let path_id = operation.parameters.iter().flatten().any(|p| match p {
        RefOr::T(p) => p.parameter_in == ParameterIn::Path,
        RefOr::Ref(_) => false,
    });
    let body = operation.request_body.is_some();
    if keyed {
        statuses.push((
            401,
            "`unauthorized`: no `Authorization: Bearer <key>` header, a malformed one, or an unknown or revoked key",
        ));
        statuses.push((
            403,
            "`forbidden`: the other kind of key (the operator key on a workspace route, a workspace key on an operator route)",
        ));
        statuses.push((503, "`store_failed`: the store did not answer; nothing was changed, try again later"));
    }
    if path_id && body {
        statuses.push((
            400,
            "`invalid_json`: the body is not JSON or not UTF-8; `invalid_request`: a path id is not UTF-8 once decoded",
        ));
    } else if path_id {
        statuses.push((400, "`invalid_request`: a path id is not UTF-8 once decoded"));
    } else if body {
        statuses.push((400, "`invalid_json`: the body is not JSON or not UTF-8"));
    }
    if path_id {
        statuses.push((
            404,
            "`not_found`: no such object in the caller's workspace (another workspace's objects are not found either)",
        ));
    }
    if body {
        statuses.push((
            408,
            "`request_timeout`: the body did not arrive within `http.body_read_timeout` of the headers; the connection is closed",
        ));
        statuses.push((413, "`payload_too_large`: the body is larger than this host accepts (16 MiB by default)"));
        statuses
            .push((415, "`unsupported_media_type`: the body is not sent as `Content-Type: application/json` (UTF-8)"));
    }
    if path_id || body {
        statuses.push((
            422,
            "`invalid_request`: every problem, by field: a missing field or one of the wrong type, a value out of its limits, \
             a control character in a string or a path id",
        ));
    }
    statuses
}

/// An answer in the API's error shape.
fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
        .build()
        .into()
}
