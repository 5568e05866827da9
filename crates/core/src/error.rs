//! Errors at the boundaries of the bus and the store. Each says whether trying
//! again may help, so that the pipeline's one retry policy can tell an outage
//! (wait and retry) from a fatal error (stop before committing anything past it).

/// Whether an operation may succeed if tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// The service is unreachable, busy, throttling or locked for now.
    Transient,
    /// Anything else: trying again gives the same answer.
    Fatal,
}

macro_rules! backend_error {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, thiserror::Error)]
        #[error("{message}")]
        pub struct $name {
            /// Whether trying again may help.
            pub retry: Retry,
            /// What failed, naming the file, table, topic or address.
            pub message: String,
            /// The library's error underneath, where it is safe to keep (an
            /// error that may quote credentials is left out).
            #[source]
            pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
        }

        impl $name {
            /// An outage, a lock or throttling: trying again may succeed.
            pub fn transient(message: impl Into<String>) -> Self {
                $name { retry: Retry::Transient, message: message.into(), source: None }
            }

            /// A failure that trying again does not mend.
            pub fn fatal(message: impl Into<String>) -> Self {
                $name { retry: Retry::Fatal, message: message.into(), source: None }
            }

            /// The same error, keeping `cause` as its source.
            pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
                self.source = Some(Box::new(cause));
                self
            }

            /// True when trying again may help.
            pub fn is_transient(&self) -> bool {
                self.retry == Retry::Transient
            }
        }
    };
}

backend_error!(
    /// A store (SQLite, DynamoDB) or dead-letter write or read that failed.
    StoreError
);
backend_error!(
    /// A bus (in-process, Kafka) operation that failed.
    BusError
);

impl From<BusError> for StoreError {
    /// Dead letters kept on the bus fail as the bus does.
    fn from(e: BusError) -> Self {
        StoreError { retry: e.retry, message: e.message, source: e.source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_says_whether_to_retry() {
        let e = StoreError::transient("SQLite database x.db: database is locked");
        assert!(e.is_transient());
        assert_eq!(e.to_string(), "SQLite database x.db: database is locked");
        assert!(!BusError::fatal("unknown topic").is_transient());
        assert!(StoreError::from(BusError::transient("broker down")).is_transient());
    }

    #[test]
    fn an_error_keeps_its_cause() {
        use std::error::Error;
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "read-only file system");
        let e = StoreError::fatal("SQLite database x.db: cannot write").caused_by(io);
        let cause = e.source().expect("a source");
        assert_eq!(
            cause.downcast_ref::<std::io::Error>().map(|c| c.kind()),
            Some(std::io::ErrorKind::PermissionDenied)
        );
        let through = StoreError::from(BusError::fatal("dead letters").caused_by(std::fmt::Error));
        assert!(through.source().is_some_and(|c| c.is::<std::fmt::Error>()), "the cause survives the conversion");
    }
}
