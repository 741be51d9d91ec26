//! Errors of the library and how the command line reports them.
//!
//! This module owns [`Error`], the one error type every public function returns.
//! Errors caused by the user's input (a bad file, a bad parameter) are
//! [`Error::Input`] or [`Error::Parse`] and make the CLI exit with code 2;
//! anything else (an I/O failure while writing, a broken internal promise)
//! exits with code 1.

use std::path::{Path, PathBuf};

/// The error type of `spillover`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A problem at a known place of an input file: file, line, what was expected.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file that was being read.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A problem with the user's input that has no line: a missing file, an
    /// empty file, a parameter out of range.
    #[error("{0}")]
    Input(String),
    /// A parameter outside its range: which one, the value given and what
    /// was expected.
    #[error("{name} = {value}: expected {expected}")]
    Parameter {
        /// The parameter, as the user wrote it (e.g. `[outcome] icc`).
        name: String,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: String,
    },
    /// A key that is missing, or present where it does not apply: which key
    /// and what was expected.
    #[error("{message}")]
    Key {
        /// The key, as the user wrote it (e.g. `partition parts`).
        key: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// A size over a limit: what it is, the size the input implies, the
    /// limit, and what to change.
    #[error("{what} = {size}: expected at most {limit}{advice}")]
    TooLarge {
        /// What is too large (a key, or a quantity the input implies).
        what: String,
        /// The size the input implies.
        size: u64,
        /// The largest size accepted.
        limit: u64,
        /// What to change, starting with its separator (may be empty).
        advice: String,
    },
    /// An error with the context it happened in (e.g. which design), chained
    /// to its source; the exit code is the source's.
    #[error("{context}: {source}")]
    Context {
        /// Where it happened.
        context: String,
        /// What happened.
        #[source]
        source: Box<Error>,
    },
    /// A partitioner broke its own promise on this graph (e.g. METIS left a
    /// part empty or missed its balance at a very fine granularity).
    #[error("{method} {message}")]
    PartitionFailed {
        /// The method, e.g. `METIS`.
        method: String,
        /// What went wrong.
        message: String,
    },
    /// An input file that cannot be opened or read (exit code 2): which file
    /// and the operating system's reason.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The run was stopped by its caller (Ctrl-C in Python) before it
    /// finished; nothing was written.
    #[error("stopped before the end: nothing was written")]
    Cancelled,
    /// An I/O failure outside the user's control (e.g. while writing output).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A result failed a check the library makes on itself.
    #[error("internal check failed: {0}")]
    Internal(String),
}

impl Error {
    /// Build an [`Error::Parse`].
    pub fn parse(path: &Path, line: usize, message: impl Into<String>) -> Self {
        Error::Parse {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// Build an [`Error::Input`].
    pub fn input(message: impl Into<String>) -> Self {
        Error::Input(message.into())
    }

    /// Build an [`Error::Read`] for a file that cannot be opened or read.
    pub fn read(path: &Path, source: std::io::Error) -> Self {
        Error::Read {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Build an [`Error::Io`] with a description of what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Build an [`Error::Parameter`].
    pub fn parameter(
        name: impl Into<String>,
        value: impl std::fmt::Display,
        expected: impl Into<String>,
    ) -> Self {
        Error::Parameter {
            name: name.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// Build an [`Error::Key`].
    pub fn key(key: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Key {
            key: key.into(),
            message: message.into(),
        }
    }

    /// Build an [`Error::TooLarge`]; `advice` (may be empty) follows the limit.
    pub fn too_large(
        what: impl Into<String>,
        size: u64,
        limit: u64,
        advice: impl Into<String>,
    ) -> Self {
        Error::TooLarge {
            what: what.into(),
            size,
            limit,
            advice: advice.into(),
        }
    }

    /// Wrap this error with the context it happened in.
    pub fn context(self, context: impl Into<String>) -> Self {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// Whether the user's input caused it (exit code 2).
    pub fn is_input(&self) -> bool {
        self.exit_code() == 2
    }

    /// The process exit code the CLI uses for this error: 2 for bad input
    /// (a parse error, a bad or too large parameter, a partitioner that
    /// cannot honour the requested granularity), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Parse { .. }
            | Error::Input(_)
            | Error::Parameter { .. }
            | Error::Key { .. }
            | Error::TooLarge { .. }
            | Error::Read { .. }
            | Error::PartitionFailed { .. } => 2,
            Error::Cancelled => 130,
            Error::Context { source, .. } => source.exit_code(),
            Error::Io { .. } | Error::Internal(_) => 1,
        }
    }
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_errors_keep_what_a_caller_needs() {
        let e = Error::too_large("replicates", 2_000_000, 1_000_000, " per design");
        assert_eq!(
            e.to_string(),
            "replicates = 2000000: expected at most 1000000 per design"
        );
        assert!(matches!(
            e,
            Error::TooLarge {
                size: 2_000_000,
                limit: 1_000_000,
                ..
            }
        ));
        let e =
            Error::parameter("[outcome] icc", 1.5, "a number in [0, 1)").context("scenario.toml");
        assert_eq!(
            e.to_string(),
            "scenario.toml: [outcome] icc = 1.5: expected a number in [0, 1)"
        );
        assert_eq!(e.exit_code(), 2);
        // The chain is walkable with std's `source`.
        let src = std::error::Error::source(&e).expect("a source");
        assert!(src.to_string().starts_with("[outcome] icc"));
        let e = Error::Internal("x".into()).context("design \"a\"");
        assert_eq!(e.exit_code(), 1);
        assert!(!e.is_input());
    }
}
