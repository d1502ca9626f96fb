//! Error kinds a model call can end with; the server maps each kind, once, to an
//! HTTP status and to the AWS or OpenAI error body.

use std::fmt;

/// What went wrong, in terms a client can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or out of range; retrying it unchanged fails again.
    Validation,
    /// The named model (or other resource) does not exist.
    NotFound,
    /// The service is at capacity; retry later.
    Throttling,
    /// The resource is in a state that does not allow the call (a name already
    /// taken, an ingestion job already running).
    Conflict,
    /// The model did not finish in time.
    ModelTimeout,
    /// The model is not available (it failed to load, or is shutting down).
    ServiceUnavailable,
    /// The caller is not authenticated or not allowed.
    AccessDenied,
    /// A bug or an unexpected failure inside basalt.
    Internal,
}

impl ErrorKind {
    /// A stable lower-case label, used in metrics and the usage store.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Validation => "validation_error",
            Self::NotFound => "not_found",
            Self::Throttling => "throttled",
            Self::Conflict => "conflict",
            Self::ModelTimeout => "timeout",
            Self::ServiceUnavailable => "unavailable",
            Self::AccessDenied => "access_denied",
            Self::Internal => "internal_error",
        }
    }
}

/// A domain error: a kind plus a message meant for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl fmt::Display) -> Self {
        Self {
            kind,
            message: message.to_string(),
        }
    }
    pub fn validation(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Validation, message)
    }
    pub fn not_found(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn conflict(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    pub fn throttling(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Throttling, message)
    }
    pub fn unavailable(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::ServiceUnavailable, message)
    }
    pub fn timeout(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::ModelTimeout, message)
    }
    pub fn internal(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
