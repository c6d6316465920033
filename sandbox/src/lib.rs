//! Local stand-ins for ad partner APIs.
