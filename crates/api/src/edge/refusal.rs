//! The JSON shape for what hyper refuses by itself.
//!
//! A request hyper cannot parse (a malformed request line or header, a head over its own size
//! or header-count limit, a URI of about 64 KiB) never reaches a handler: hyper writes a bare
//! status with `content-length: 0` and closes the connection. A client then sees the only
//! answers of this API without the `{"error": {...}}` shape. Rather than re-implement HTTP
//! parsing in front of hyper, the edge recognises hyper's own refusal on its way out
//! ([`json_refusal`]) and writes the same status with a JSON body instead.
//!
//! What is recognised is narrow on purpose: a whole response head and nothing else, with one
//! of the statuses hyper answers parse errors with, `content-length: 0` and no
//! `content-type`. Every answer the API itself makes for those statuses carries a JSON body,
//! so none of them can be taken for hyper's.

use axum::http::StatusCode;

use crate::error::ApiError;

/// hyper's answer to a head it could not parse, rewritten as the API's JSON error with the same
/// status; `None` for anything else (every response the API makes).
pub(super) fn json_refusal(written: &[u8]) -> Option<Vec<u8>> {
    let head = std::str::from_utf8(written).ok()?.strip_suffix("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse::<u16>().ok()?;
    let mut empty = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let name = name.trim().to_ascii_lowercase();
        match name.as_str() {
            "content-length" => empty = value.trim() == "0",
            "content-type" | "transfer-encoding" => return None,
            _ => {}
        }
    }
    if !empty {
        return None;
    }
    let error = match status {
        400 => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_request",
            "the request line or a header is not valid HTTP/1.1 (method, target and version separated by single \
             spaces; `Name: value` headers of visible characters); the connection is closed",
        ),
        414 => ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            "the request target is too long for this host; ids and query parameters of this API fit in a few \
             hundred bytes",
        ),
        431 => ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            "the request head is over 64 KiB or has more than 200 headers; send fewer or shorter headers (this \
             API needs only Authorization and Content-Type)",
        ),
        505 => ApiError::new(
            StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            "http_version_not_supported",
            "this host speaks HTTP/1.1 (and 1.0) on this port",
        ),
        _ => return None,
    };
    Some(raw_answer(&error))
}

/// `error` as a whole HTTP/1.1 response that closes the connection, for answers written to the
/// socket directly rather than through hyper.
pub(super) fn raw_answer(error: &ApiError) -> Vec<u8> {
    let body = serde_json::to_vec(&error.body()).unwrap_or_default();
    let status = error.status;
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(answer: &[u8]) -> (u16, serde_json::Value) {
        let text = std::str::from_utf8(answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head[9..12].parse().unwrap();
        let length: usize = head.lines().find_map(|l| l.strip_prefix("content-length: ")).unwrap().parse().unwrap();
        assert_eq!(length, body.len(), "{text}");
        assert!(head.contains("content-type: application/json\r\n"), "{text}");
        assert!(head.contains("connection: close"), "{text}");
        (status, serde_json::from_str(body).unwrap())
    }

    #[test]
    fn hypers_bare_refusals_become_the_json_shape_with_their_status() {
        let date = "date: Mon, 07 Dec 2026 12:00:00 GMT";
        for (status, code) in [
            (400, "malformed_request"),
            (414, "uri_too_long"),
            (431, "headers_too_large"),
            (505, "http_version_not_supported"),
        ] {
            let reason = StatusCode::from_u16(status).unwrap().canonical_reason().unwrap();
            for written in [
                format!("HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\n{date}\r\n\r\n"),
                format!("HTTP/1.1 {status} {reason}\r\nconnection: close\r\nContent-Length: 0\r\n\r\n"),
            ] {
                let answer = json_refusal(written.as_bytes()).unwrap_or_else(|| panic!("not recognised: {written:?}"));
                let (got, body) = parsed(&answer);
                assert_eq!(got, status);
                assert_eq!(body["error"]["code"], code);
                assert!(body["error"]["message"].as_str().unwrap().len() > 20);
            }
        }
    }

    #[test]
    fn what_the_api_answers_itself_is_never_taken_for_a_refusal() {
        let cases = [
            // The API's own 400 and 431 carry JSON bodies.
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 61\r\n\r\n",
            "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\ncontent-length: 90\r\n\r\n",
            // A head written with its body.
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}",
            // Statuses hyper never refuses with.
            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 204 No Content\r\n\r\n",
            // No length at all: chunked or unknown.
            "HTTP/1.1 400 Bad Request\r\ntransfer-encoding: chunked\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 400 Bad Request\r\n\r\n",
            // Not a whole head, or not a head.
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            "{\"error\": {}}",
            "",
        ];
        for written in cases {
            assert_eq!(json_refusal(written.as_bytes()), None, "{written:?}");
        }
    }
}
