//! `inspect` reports.
